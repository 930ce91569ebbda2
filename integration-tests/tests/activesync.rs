//! The ActiveSync front door against real binding (PostgreSQL, the
//! broker), answering an independent client: pyactivesync (PyPI, an EAS
//! 16.1 client) provisions over TLS with an app password, and every
//! answer is read back by libwbxml's `wbxml2xml`. Refusals are checked at
//! the HTTP level: no credentials, a wrong password, another phone, a
//! malformed request line or body, bodies past the decoder's bounds, a
//! command not served yet, guessing past the lockout budget.

#![allow(
    clippy::too_many_lines,
    reason = "a test reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::process::Command;

use pushmail_activesync::policy::PolicyConfig;
use pushmail_common::service_identity::Service;
use pushmail_integration_tests::activesync::{
    Front, app_passwords, basic, phone, post, provision_request, provision_request_applied,
    provisioned, text_at, wbxml2xml,
};
use pushmail_integration_tests::authed;
use pushmail_integration_tests::http::{Response, call};
use pushmail_integration_tests::nodes::BindingNode;
use pushmail_proto::binding::v1 as pb;
use pushmail_wbxml::{Element, tag};

/// Python's own XML parser's reading of a mobilesync answer: server
/// type, URL and the address it is for.
fn python_xml(answer: &str) -> String {
    let script = r#"
import sys, xml.etree.ElementTree as ET
ns = {"a": "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006",
      "m": "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"}
root = ET.fromstring(sys.stdin.read())
server = root.find("m:Response/m:Action/m:Settings/m:Server", ns)
user = root.find("m:Response/m:User/m:EMailAddress", ns)
print(server.find("m:Type", ns).text, server.find("m:Url", ns).text, user.text)
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), answer.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "not the mobilesync schema: {answer}"
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn a_phone_provisions_with_its_app_password_and_bad_requests_are_refused() {
    let mut binding = BindingNode::start().await.unwrap();
    let phone = phone(&mut binding).await;
    let front = Front::start(binding.addr, None).await;
    let auth = basic(&phone.address, &phone.password);
    let query = format!(
        "Cmd=Provision&User={}&DeviceId=ApplF17XK0XXHG7F&DeviceType=iPhone",
        phone.address
    );

    // OPTIONS: versions and the commands served, without credentials.
    let options = call(
        front.addr,
        "OPTIONS",
        "/Microsoft-Server-ActiveSync",
        &[],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(options.status, 200);
    assert_eq!(
        options.header("ms-asprotocolversions"),
        Some("14.1,16.0,16.1")
    );
    assert_eq!(
        options.header("ms-asprotocolcommands"),
        Some(
            "Provision,Settings,FolderSync,FolderCreate,FolderUpdate,FolderDelete,Sync,\
             GetItemEstimate,ItemOperations,MoveItems,SendMail,SmartReply,SmartForward,Ping,\
             Search,Find,ResolveRecipients"
        )
    );

    // Autodiscover: the XML form at any casing, the JSON forms; the same
    // URL for any address, an error code for another schema.
    let ask = |address: &str, schema: &str| {
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Autodiscover \
             xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006\">\
             <Request><EMailAddress>{address}</EMailAddress><AcceptableResponseSchema>{schema}\
             </AcceptableResponseSchema></Request></Autodiscover>"
        )
    };
    let mobilesync =
        "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006";
    for path in [
        "/autodiscover/autodiscover.xml",
        "/Autodiscover/Autodiscover.xml",
    ] {
        let found = call(
            front.addr,
            "POST",
            path,
            &[("Content-Type", "text/xml")],
            ask(&phone.address, mobilesync).as_bytes(),
        )
        .await
        .unwrap();
        assert_eq!(found.status, 200, "{path}");
        let parsed = python_xml(&found.text());
        assert_eq!(
            parsed,
            format!(
                "MobileSync https://eas.carrier.example/Microsoft-Server-ActiveSync {}",
                phone.address
            )
        );
    }
    let outlook = call(
        front.addr,
        "POST",
        "/autodiscover/autodiscover.xml",
        &[],
        ask(
            &phone.address,
            "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a",
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    assert!(
        outlook.text().contains("<ErrorCode>601</ErrorCode>"),
        "{}",
        outlook.text()
    );
    for path in [
        format!(
            "/autodiscover/autodiscover.json?Email={}&Protocol=ActiveSync",
            phone.address
        ),
        format!(
            "/autodiscover/autodiscover.json/v1.0/{}?Protocol=activesync",
            phone.address
        ),
    ] {
        let json = call(front.addr, "GET", &path, &[], b"")
            .await
            .unwrap()
            .json();
        assert_eq!(
            json["Url"], "https://eas.carrier.example/Microsoft-Server-ActiveSync",
            "{path}: {json}"
        );
    }
    let rest = call(
        front.addr,
        "GET",
        "/autodiscover/autodiscover.json?Email=a@b.example&Protocol=Rest",
        &[],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(
        (rest.status, rest.json()["ErrorCode"].as_str()),
        (400, Some("InvalidProtocol"))
    );

    // Refusals a phone acts on.
    let none = call(
        front.addr,
        "POST",
        &format!("/Microsoft-Server-ActiveSync?{query}"),
        &[("MS-ASProtocolVersion", "16.1")],
        b"x",
    )
    .await
    .unwrap();
    assert_eq!(none.status, 401);
    assert!(
        none.header("www-authenticate")
            .unwrap()
            .starts_with("Basic")
    );
    let wrong = post(
        front.addr,
        &query,
        &basic(&phone.address, "abcd-efgh-jkmn-pqrs"),
        None,
        b"x",
    )
    .await;
    assert_eq!(wrong.status, 401, "{}", wrong.text());
    let bad_line = post(front.addr, "Cmd=Launch&DeviceId=a", &auth, None, b"x").await;
    assert_eq!(
        (bad_line.status, bad_line.text().contains("Launch")),
        (400, true)
    );
    let not_yet = post(
        front.addr,
        &query.replace("Provision", "ValidateCert"),
        &auth,
        None,
        b"x",
    )
    .await;
    assert_eq!(not_yet.status, 501, "{}", not_yet.text());
    let garbage = post(front.addr, &query, &auth, None, b"\x03\x01\x6a\x00\x45\xff").await;
    assert_eq!(garbage.status, 400, "{}", garbage.text());
    // Bodies past the bounds: nested deeper than 32 (decoded: 400), or
    // over the 1 MiB the commands served so far may be (a Ping of
    // 300,000 folders: 413, read no further once the login is checked).
    let mut deep = Element::of(tag("Provision", "Data"));
    for _ in 0..40 {
        deep = Element::of(tag("Provision", "Data")).with(deep);
    }
    let deep = Element::of(tag("Provision", "Provision")).with(deep);
    let refused = post(
        front.addr,
        &query,
        &auth,
        None,
        &pushmail_wbxml::encode(&deep).unwrap(),
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(refused.text().contains("deeper"), "{}", refused.text());
    let mut wide = Element::of(tag("Ping", "Folders"));
    for i in 0..300_000 {
        wide = wide.with(
            Element::of(tag("Ping", "Folder"))
                .with(Element::text_of(tag("Ping", "Id"), i.to_string())),
        );
    }
    let wide = Element::of(tag("Provision", "Provision")).with(wide);
    let refused = post(
        front.addr,
        &query,
        &auth,
        None,
        &pushmail_wbxml::encode(&wide).unwrap(),
    )
    .await;
    assert_eq!(refused.status, 413, "{}", refused.text());
    assert!(refused.text().contains("1048576"), "{}", refused.text());

    // A front door whose own credential binding refuses is an outage
    // (503), not a wrong password the user would be asked to retype.
    let misconfigured = Front::start_as(binding.addr, None, Service::Gateway).await;
    let outage = post(
        misconfigured.addr,
        &query,
        &auth,
        None,
        &provision_request(None),
    )
    .await;
    assert_eq!(outage.status, 503, "{}", outage.text());
    assert!(outage.header("retry-after").is_some());
    assert!(outage.header("www-authenticate").is_none());
    misconfigured.stop().await;

    // A 16.1 phone that does not say what it is gets status 165.
    let bare = Element::of(tag("Provision", "Provision")).with(
        Element::of(tag("Provision", "Policies")).with(
            Element::of(tag("Provision", "Policy")).with(Element::text_of(
                tag("Provision", "PolicyType"),
                "MS-EAS-Provisioning-WBXML",
            )),
        ),
    );
    let answer = post(
        front.addr,
        &query,
        &auth,
        None,
        &pushmail_wbxml::encode(&bare).unwrap(),
    )
    .await;
    let tree = pushmail_wbxml::decode(&answer.body).unwrap();
    assert_eq!(
        text_at(&tree, &[("Provision", "Status")]).as_deref(),
        Some("165")
    );

    // Step one: the policy and a key to acknowledge.
    let offered = post(front.addr, &query, &auth, None, &provision_request(None)).await;
    assert_eq!(offered.status, 200, "{}", offered.text());
    assert_eq!(
        offered.header("content-type"),
        Some("application/vnd.ms-sync.wbxml")
    );
    let xml = wbxml2xml(&offered.body);
    assert!(
        xml.contains("EASProvisionDoc") && xml.contains("DevicePasswordEnabled"),
        "{xml}"
    );
    let tree = pushmail_wbxml::decode(&offered.body).unwrap();
    let policy = [("Provision", "Policies"), ("Provision", "Policy")];
    let key_at = [policy[0], policy[1], ("Provision", "PolicyKey")];
    let status_at = [policy[0], policy[1], ("Provision", "Status")];
    let temporary = text_at(&tree, &key_at).unwrap();
    assert_eq!(text_at(&tree, &status_at).as_deref(), Some("1"));
    assert_eq!(
        text_at(
            &tree,
            &[("Settings", "DeviceInformation"), ("Settings", "Status")]
        )
        .as_deref(),
        Some("1")
    );

    // A wrong acknowledgement is policy status 5; the right one gives
    // the phone its key.
    let wrong_key = post(
        front.addr,
        &query,
        &auth,
        None,
        &provision_request(Some("12345")),
    )
    .await;
    let tree = pushmail_wbxml::decode(&wrong_key.body).unwrap();
    assert_eq!(text_at(&tree, &status_at).as_deref(), Some("5"));
    let acknowledged = post(
        front.addr,
        &query,
        &auth,
        Some(&temporary),
        &provision_request(Some(&temporary)),
    )
    .await;
    wbxml2xml(&acknowledged.body);
    let tree = pushmail_wbxml::decode(&acknowledged.body).unwrap();
    let key = text_at(&tree, &key_at).unwrap();
    assert_ne!(key, temporary);
    assert_eq!(text_at(&tree, &status_at).as_deref(), Some("1"));

    // The password is this phone's now: another DeviceId is 403.
    let other = post(
        front.addr,
        &query.replace("ApplF17XK0XXHG7F", "ApplOTHERPHONE"),
        &auth,
        None,
        &provision_request(None),
    )
    .await;
    assert_eq!(other.status, 403, "{}", other.text());
    let listed = app_passwords(&mut binding, &phone).await;
    assert_eq!(listed.app_passwords[0].client_device_id, "ApplF17XK0XXHG7F");
    assert_eq!(
        listed.app_passwords[0].app_password_id,
        phone.app_password.app_password_id
    );

    // Settings: who the user is, what the phone is; auto-replies and a
    // recovery password are not the platform's to set.
    let settings = Element::of(tag("Settings", "Settings"))
        .with(
            Element::of(tag("Settings", "UserInformation"))
                .with(Element::of(tag("Settings", "Get"))),
        )
        .with(
            Element::of(tag("Settings", "DeviceInformation")).with(
                Element::of(tag("Settings", "Set"))
                    .with(Element::text_of(tag("Settings", "Model"), "iPhone15,2"))
                    .with(Element::text_of(tag("Settings", "IMEI"), "356938035643809"))
                    .with(Element::text_of(tag("Settings", "OS"), "iOS 17.1")),
            ),
        )
        .with(
            Element::of(tag("Settings", "Oof")).with(
                Element::of(tag("Settings", "Set"))
                    .with(Element::text_of(tag("Settings", "OofState"), "1")),
            ),
        );
    let answered = post(
        front.addr,
        &query.replace("Provision", "Settings"),
        &auth,
        Some(key.as_str()),
        &pushmail_wbxml::encode(&settings).unwrap(),
    )
    .await;
    assert_eq!(answered.status, 200, "{}", answered.text());
    // Without the phone's key, or with another, it is told to provision.
    for (key, code) in [(None, "142"), (Some(temporary.as_str()), "144")] {
        let refused = post(
            front.addr,
            &query.replace("Provision", "Settings"),
            &auth,
            key,
            &pushmail_wbxml::encode(&settings).unwrap(),
        )
        .await;
        let tree = pushmail_wbxml::decode(&refused.body).unwrap();
        assert_eq!(
            text_at(&tree, &[("Settings", "Status")]).as_deref(),
            Some(code)
        );
    }
    let xml = wbxml2xml(&answered.body);
    assert!(xml.contains(&phone.address), "{xml}");
    let tree = pushmail_wbxml::decode(&answered.body).unwrap();
    let status_of =
        |name: &str| text_at(&tree, &[("Settings", name), ("Settings", "Status")]).unwrap();
    assert_eq!(
        (
            status_of("UserInformation"),
            status_of("DeviceInformation"),
            status_of("Oof")
        ),
        ("1".to_owned(), "1".to_owned(), "7".to_owned())
    );
    let listed = app_passwords(&mut binding, &phone).await;
    let said = listed.app_passwords[0].device_information.clone().unwrap();
    assert_eq!(
        (said.model.as_str(), said.os.as_str()),
        ("iPhone15,2", "iOS 17.1")
    );
    assert!(
        !format!("{said:?}").contains("356938035643809"),
        "no IMEI kept"
    );

    // A stricter policy reaches provisioned phones: their key is 144
    // until they provision again, and a phone that does not apply a policy
    // asking something of it gets no key (139).
    let strict = Front::start_with(
        binding.addr,
        None,
        Service::ActiveSync,
        PolicyConfig {
            require_device_password: true,
            ..PolicyConfig::default()
        },
    )
    .await;
    let settings_query = query.replace("Provision", "Settings");
    let settings_body = pushmail_wbxml::encode(&settings).unwrap();
    let settings_status = |answer: &Response| {
        let tree = pushmail_wbxml::decode(&answer.body).unwrap();
        text_at(&tree, &[("Settings", "Status")]).unwrap()
    };
    let stale = post(
        strict.addr,
        &settings_query,
        &auth,
        Some(key.as_str()),
        &settings_body,
    )
    .await;
    assert_eq!(settings_status(&stale), "144");
    let offered = post(strict.addr, &query, &auth, None, &provision_request(None)).await;
    let tree = pushmail_wbxml::decode(&offered.body).unwrap();
    let strict_temporary = text_at(&tree, &key_at).unwrap();
    let declined = post(
        strict.addr,
        &query,
        &auth,
        None,
        &provision_request_applied(Some(&strict_temporary), "3"),
    )
    .await;
    let tree = pushmail_wbxml::decode(&declined.body).unwrap();
    assert_eq!(
        text_at(&tree, &[("Provision", "Status")]).as_deref(),
        Some("139")
    );
    let complied = post(
        strict.addr,
        &query,
        &auth,
        None,
        &provision_request(Some(&strict_temporary)),
    )
    .await;
    let tree = pushmail_wbxml::decode(&complied.body).unwrap();
    let strict_key = text_at(&tree, &key_at).unwrap();
    let fresh = post(
        strict.addr,
        &settings_query,
        &auth,
        Some(&strict_key),
        &settings_body,
    )
    .await;
    assert_eq!(settings_status(&fresh), "1");
    // The key given with the strict policy is stale where the policy is
    // the old one (two policies at once: a rollout in progress).
    let elsewhere = post(
        front.addr,
        &settings_query,
        &auth,
        Some(&strict_key),
        &settings_body,
    )
    .await;
    assert_eq!(settings_status(&elsewhere), "144");
    strict.stop().await;

    // Guessing: past binding's budget for this client (10 failures; two
    // spent above: a wrong password, another phone) a guesser is told to
    // come back later; the phone itself, whose login binding verified
    // lately, is not locked out by him.
    let guess = basic(&phone.address, "zzzz-zzzz-zzzz-zzzz");
    for _ in 0..8 {
        let refused = post(front.addr, &query, &guess, None, &provision_request(None)).await;
        assert_eq!(refused.status, 401);
    }
    let locked = post(front.addr, &query, &guess, None, &provision_request(None)).await;
    assert_eq!(locked.status, 503, "{}", locked.text());
    let wait: u64 = locked.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    let still = post(front.addr, &query, &auth, None, &provision_request(None)).await;
    assert_eq!(still.status, 200, "{}", still.text());

    front.stop().await;
    binding.stop().await.unwrap();
}

#[tokio::test]
async fn pyactivesync_provisions_over_tls() {
    let mut binding = BindingNode::start().await.unwrap();
    let phone = phone(&mut binding).await;
    let certs = tempfile::tempdir().unwrap();
    let front = Front::start(binding.addr, Some(certs.path())).await;
    let python = pushmail_integration_tests::activesync::python();
    let script = r#"
import sys
from pyactivesync import Client
server, user, password = sys.argv[1:4]
with Client(server=server, username=user, password=password,
            device_id="pyas0001", device_type="pyactivesync") as client:
    key = client.provision()
    print(key, client.get_oof().state.name)
"#;
    // TLS verified against the service's own certificate, by name.
    let output = tokio::process::Command::new(&python)
        .env("REQUESTS_CA_BUNDLE", certs.path().join("cert.pem"))
        .args(["-c", script])
        .arg(format!("localhost:{}", front.addr.port()))
        .arg(format!("CORP\\{}", phone.address))
        .arg(&phone.password)
        .output()
        .await
        .expect("pyactivesync's Python (scripts/provision.sh makes it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "pyactivesync failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (key, oof) = stdout
        .trim()
        .split_once(' ')
        .unwrap_or_else(|| panic!("{stdout}"));
    let key: u32 = key.parse().unwrap_or_else(|_| panic!("{stdout}"));
    assert_ne!(key, 0);
    assert_eq!(
        oof, "DISABLED",
        "auto-replies are not the platform's to set"
    );
    // What pyactivesync said it is, at Provision, is in the listing.
    let listed = app_passwords(&mut binding, &phone).await;
    let said = listed.app_passwords[0].device_information.clone().unwrap();
    assert_eq!(
        (said.model.as_str(), said.os.as_str()),
        ("pyactivesync", "Linux")
    );
    assert_eq!(said.user_agent, "pyactivesync/0.1");
    // Binding holds the key the phone was given.
    let mut internal =
        pushmail_proto::binding::v1::binding_service_client::BindingServiceClient::connect(
            format!("http://{}", binding.addr),
        )
        .await
        .unwrap();
    let login = internal
        .authenticate_app_password(authed(
            &pushmail_integration_tests::credential(Service::ActiveSync),
            pb::AuthenticateAppPasswordRequest {
                username: phone.address.clone(),
                password: phone.password.clone(),
                peer_ip: "127.0.0.1".to_owned(),
                client_device_id: "pyas0001".to_owned(),
                client_device_type: "pyactivesync".to_owned(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(login.policy_key, key);
    front.stop().await;
    binding.stop().await.unwrap();
}

fn sync_of(collections: usize, key: &str) -> Vec<u8> {
    let mut all = Element::of(tag("AirSync", "Collections"));
    for i in 0..collections {
        all = all.with(
            Element::of(tag("AirSync", "Collection"))
                .with(Element::text_of(tag("AirSync", "SyncKey"), key))
                .with(Element::text_of(
                    tag("AirSync", "CollectionId"),
                    format!("folder{i}"),
                )),
        );
    }
    pushmail_wbxml::encode(&Element::of(tag("AirSync", "Sync")).with(all)).unwrap()
}

#[tokio::test]
async fn hostile_mail_commands_get_clear_statuses_and_a_mailbox_outage_asks_to_retry() {
    let mut binding = BindingNode::start().await.unwrap();
    let phone = phone(&mut binding).await;
    // No mailbox service answers where this front door looks for one.
    let front = Front::start(binding.addr, None).await;
    let auth = basic(&phone.address, &phone.password);
    let line = |command: &str| {
        format!(
            "Cmd={command}&User={}&DeviceId=hostile01&DeviceType=iPhone",
            phone.address
        )
    };
    let key = provisioned(&front, &line("Provision"), &auth).await;
    let status = |answer: &Response, path: &[(&str, &str)]| {
        wbxml2xml(&answer.body);
        text_at(&pushmail_wbxml::decode(&answer.body).unwrap(), path).unwrap_or_default()
    };
    let send = |command: &str, body: Vec<u8>| {
        let query = line(command);
        let (auth, key) = (auth.clone(), key.clone());
        async move { post(front.addr, &query, &auth, Some(&key), &body).await }
    };

    // A Sync of more collections than served: protocol error; a key never
    // issued: InvalidSyncKey with key 0; key 0: the first key, no mailbox
    // needed; the mailbox down: retry (16).
    let many = send("Sync", sync_of(101, "F")).await;
    assert_eq!(status(&many, &[("AirSync", "Status")]), "4");
    let collection = [
        ("AirSync", "Collections"),
        ("AirSync", "Collection"),
        ("AirSync", "Status"),
    ];
    let bogus = send("Sync", sync_of(1, "{stolen-key}")).await;
    assert_eq!(status(&bogus, &collection), "3");
    let first = send("Sync", sync_of(1, "0")).await;
    assert_eq!(status(&first, &collection), "1");
    let down = send("Sync", sync_of(1, "F")).await;
    assert_eq!(status(&down, &collection), "16");
    // A window of a million asks nothing more of anyone: still a retry.
    let collection_with_window = Element::of(tag("AirSync", "Sync")).with(
        Element::of(tag("AirSync", "Collections")).with(
            Element::of(tag("AirSync", "Collection"))
                .with(Element::text_of(tag("AirSync", "SyncKey"), "F"))
                .with(Element::text_of(tag("AirSync", "CollectionId"), "x"))
                .with(Element::text_of(tag("AirSync", "WindowSize"), "1000000")),
        ),
    );
    let huge = send(
        "Sync",
        pushmail_wbxml::encode(&collection_with_window).unwrap(),
    )
    .await;
    assert_eq!(status(&huge, &collection), "16");

    // FolderSync with a key never issued: 9; the mailbox down: 6.
    let folder_sync = |key: &str| {
        pushmail_wbxml::encode(
            &Element::of(tag("FolderHierarchy", "FolderSync"))
                .with(Element::text_of(tag("FolderHierarchy", "SyncKey"), key)),
        )
        .unwrap()
    };
    let hierarchy = [("FolderHierarchy", "Status")];
    let invalid = send("FolderSync", folder_sync("12")).await;
    assert_eq!(status(&invalid, &hierarchy), "9");
    let unavailable = send("FolderSync", folder_sync("0")).await;
    assert_eq!(status(&unavailable, &hierarchy), "6");

    // GetItemEstimate of key 0: not primed (3); the mailbox down: 503.
    let estimate = |key: &str| {
        pushmail_wbxml::encode(
            &Element::of(tag("GetItemEstimate", "GetItemEstimate")).with(
                Element::of(tag("GetItemEstimate", "Collections")).with(
                    Element::of(tag("GetItemEstimate", "Collection"))
                        .with(Element::text_of(tag("AirSync", "SyncKey"), key))
                        .with(Element::text_of(
                            tag("GetItemEstimate", "CollectionId"),
                            "x",
                        )),
                ),
            ),
        )
        .unwrap()
    };
    let unprimed = send("GetItemEstimate", estimate("0")).await;
    assert_eq!(
        status(
            &unprimed,
            &[
                ("GetItemEstimate", "Response"),
                ("GetItemEstimate", "Status")
            ]
        ),
        "3"
    );
    let outage = send("GetItemEstimate", estimate("F")).await;
    assert_eq!(outage.status, 503);
    assert!(outage.header("retry-after").is_some());

    // ItemOperations from another store (9), a range backwards (8), a
    // reference that names no part (15); a MoveItems that moves nothing
    // is 400; unknown code pages and garbage are 400.
    let fetch = |child: Element| {
        pushmail_wbxml::encode(
            &Element::of(tag("ItemOperations", "ItemOperations"))
                .with(Element::of(tag("ItemOperations", "Fetch")).with(child)),
        )
        .unwrap()
    };
    let operation = [
        ("ItemOperations", "Response"),
        ("ItemOperations", "Fetch"),
        ("ItemOperations", "Status"),
    ];
    let library = send(
        "ItemOperations",
        fetch(Element::text_of(
            tag("ItemOperations", "Store"),
            "DocumentLibrary",
        )),
    )
    .await;
    assert_eq!(status(&library, &operation), "9");
    let reference = Element::text_of(tag("AirSyncBase", "FileReference"), "no-part-here");
    let unnamed = send("ItemOperations", fetch(reference)).await;
    assert_eq!(status(&unnamed, &operation), "15");
    let backwards = pushmail_wbxml::encode(
        &Element::of(tag("ItemOperations", "ItemOperations")).with(
            Element::of(tag("ItemOperations", "Fetch"))
                .with(Element::text_of(
                    tag("AirSyncBase", "FileReference"),
                    "1.2.SU5CT1g:2",
                ))
                .with(
                    Element::of(tag("ItemOperations", "Options"))
                        .with(Element::text_of(tag("ItemOperations", "Range"), "9-1")),
                ),
        ),
    )
    .unwrap();
    let backwards = send("ItemOperations", backwards).await;
    assert_eq!(status(&backwards, &operation), "8");
    let nothing = send(
        "MoveItems",
        pushmail_wbxml::encode(&Element::of(tag("Move", "MoveItems"))).unwrap(),
    )
    .await;
    assert_eq!(nothing.status, 400, "{}", nothing.text());
    let unknown_page = send("Sync", b"\x03\x01\x6a\x00\x00\x63\x45\x01".to_vec()).await;
    assert_eq!(unknown_page.status, 400, "{}", unknown_page.text());
    // A SendMail with no message: status 101, nothing sent.
    let empty_send = send(
        "SendMail",
        pushmail_wbxml::encode(
            &Element::of(tag("ComposeMail", "SendMail"))
                .with(Element::text_of(tag("ComposeMail", "ClientId"), "c1")),
        )
        .unwrap(),
    )
    .await;
    assert_eq!(status(&empty_send, &[("ComposeMail", "Status")]), "101");

    front.stop().await;
    binding.stop().await.unwrap();
}
