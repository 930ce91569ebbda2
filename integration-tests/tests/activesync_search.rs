//! Search on a stock mail app. Address completion: pyactivesync (PyPI)
//! searches the global address list of its tenant through the front
//! door, which asks binding (PostgreSQL) for the tenant's directory.
//! Colleagues in the tenant's domains are found, sorted and paged by the
//! phone's range; a colleague's private mailbox elsewhere and another
//! tenant's accounts are not; a hostile range is refused with the store's
//! status, which libwbxml reads. Mailbox search: the phone's dates and
//! words find mail in its Dovecot mailbox through the mailbox service,
//! and a result opens by the `LongId` the search gave; a forwarded
//! account's phone finds the same in the platform's own store, filled by
//! ingest from SMTP.

#![allow(
    clippy::too_many_lines,
    reason = "a test reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use pushmail_integration_tests::activesync::{
    Forwarded, Front, basic, phone_of, phone_of_sending, post, provisioned, pyactivesync, wbxml2xml,
};
use pushmail_integration_tests::mailbox::{Sending, USER};
use pushmail_integration_tests::nodes::BindingNode;
use pushmail_integration_tests::{OPERATOR_TOKEN, authed, unique};
use pushmail_proto::binding::v1 as pb;
use pushmail_wbxml::{Element, tag};
use serde_json::Value;

const DEVICE: &str = "galsearch01";

/// Searches the GAL for each query given, printing the addresses found
/// per query.
const SEARCH: &str = r#"
import sys, json
from pyactivesync import Client
server, user, password, device, limit = sys.argv[1:6]
out = {}
with Client(server=server, username=user, password=password, device_id=device) as c:
    c.provision()
    for query in sys.argv[6:]:
        found = c.search_gal(query, max_results=int(limit))
        out[query] = [e.email_address for e in found if e.email_address]
        out[query + "/names"] = [e.display_name for e in found if e.display_name]
print(json.dumps(out))
"#;

/// Resolves each name given, printing who each is.
const RESOLVE: &str = r#"
import sys, json
from pyactivesync import Client
server, user, password, device = sys.argv[1:5]
out = {}
with Client(server=server, username=user, password=password, device_id=device) as c:
    c.provision()
    for name in sys.argv[5:]:
        out[name] = [[r.type, r.email_address] for r in c.resolve_recipients(name)]
print(json.dumps(out))
"#;

/// Finds in the GAL (EAS 16.1's Find).
const FIND_GAL: &str = r#"
import sys, json
from pyactivesync import Client
server, user, password, device, query = sys.argv[1:6]
with Client(server=server, username=user, password=password, device_id=device) as c:
    c.provision()
    found = c.find_gal(query)
    print(json.dumps([i.fields.get("GAL.EmailAddress") for i in found.items]))
"#;

fn gal_search(query: &str, range: &str) -> Vec<u8> {
    let store = Element::of(tag("Search", "Store"))
        .with(Element::text_of(tag("Search", "Name"), "GAL"))
        .with(Element::text_of(tag("Search", "Query"), query))
        .with(
            Element::of(tag("Search", "Options"))
                .with(Element::text_of(tag("Search", "Range"), range)),
        );
    pushmail_wbxml::encode(&Element::of(tag("Search", "Search")).with(store)).unwrap()
}

#[tokio::test]
async fn a_stock_mail_app_completes_addresses_from_its_tenants_directory() {
    let mut binding = BindingNode::start().await.unwrap();
    let tenant = binding.tenant().await.unwrap();
    let other = binding.tenant().await.unwrap();
    let domain = format!("{}.example", unique("gal"));
    binding
        .admin
        .set_tenant_domains(authed(
            OPERATOR_TOKEN,
            pb::SetTenantDomainsRequest {
                tenant_id: tenant.tenant_id.clone(),
                domains: vec![domain.clone()],
            },
        ))
        .await
        .unwrap();
    let me = format!("me@{domain}");
    let account = binding.forwarded(&tenant, &me).await.unwrap();
    for colleague in ["anna.li", "andrew", "bob"] {
        binding
            .forwarded(&tenant, &format!("{colleague}@{domain}"))
            .await
            .unwrap();
    }
    // A subscriber's own mailbox elsewhere, and another tenant's account
    // at a name that matches: neither is anyone's to complete.
    binding
        .account(
            &tenant,
            "anne.private@public-mail.example",
            pb::AccountKind::EnterpriseForwarded,
            None,
        )
        .await
        .unwrap();
    binding
        .forwarded(&other, &format!("{}@rival.example", unique("anders")))
        .await
        .unwrap();
    let phone = phone_of(&mut binding.api, tenant, account, me.clone()).await;
    let certs = tempfile::tempdir().unwrap();
    let front = Front::start(binding.addr, Some(certs.path())).await;
    // Plain HTTP, for the requests written by hand.
    let replica = Front::start(binding.addr, None).await;

    let out = pyactivesync(
        &front,
        certs.path(),
        &phone,
        SEARCH,
        &[DEVICE, "10", "an", "AND", "zz-nobody"],
    )
    .await;
    let out: Value = serde_json::from_str(&out).unwrap();
    let an = [format!("andrew@{domain}"), format!("anna.li@{domain}")];
    assert_eq!(out["an"], serde_json::json!(an), "{out}");
    assert_eq!(out["AND"], serde_json::json!([&an[0]]), "any case: {out}");
    assert_eq!(out["an/names"], serde_json::json!(an), "{out}");
    assert_eq!(out["zz-nobody"], serde_json::json!([]), "{out}");
    // Resolved: an exact address to itself, a name matching two to both
    // (suggestions), an outsider to no one.
    let exact = format!("ANNA.LI@{domain}");
    let resolved = pyactivesync(
        &front,
        certs.path(),
        &phone,
        RESOLVE,
        &[DEVICE, &exact, "an", "mole@rival.example"],
    )
    .await;
    let resolved: Value = serde_json::from_str(&resolved).unwrap();
    assert_eq!(
        resolved[&exact],
        serde_json::json!([["1", &an[1]]]),
        "{resolved}"
    );
    assert_eq!(
        resolved["an"],
        serde_json::json!([["1", &an[0]], ["1", &an[1]]]),
        "{resolved}"
    );
    assert_eq!(
        resolved["mole@rival.example"],
        serde_json::json!([]),
        "{resolved}"
    );
    let found = pyactivesync(&front, certs.path(), &phone, FIND_GAL, &[DEVICE, "anna"]).await;
    let found: Value = serde_json::from_str(&found).unwrap();
    assert_eq!(found, serde_json::json!([&an[1]]), "Find: {found}");
    // The phone's range pages: one result asked, one given.
    let first = pyactivesync(&front, certs.path(), &phone, SEARCH, &[DEVICE, "1", "an"]).await;
    let first: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["an"], serde_json::json!([&an[0]]), "{first}");

    // By hand, read by libwbxml: the second page, and a window of a
    // million refused by the store's status, the request understood.
    let auth = basic(&phone.address, &phone.password);
    let line = format!(
        "Cmd=Search&User={}&DeviceId={DEVICE}&DeviceType=iPhone",
        phone.address
    );
    let key = provisioned(&replica, &line.replace("Search", "Provision"), &auth).await;
    let second = post(
        replica.addr,
        &line,
        &auth,
        Some(&key),
        &gal_search("an", "1-1"),
    )
    .await;
    assert_eq!(second.status, 200);
    let xml = wbxml2xml(&second.body);
    assert!(
        xml.contains(&format!(">anna.li@{domain}</EmailAddress>")),
        "{xml}"
    );
    assert!(xml.contains("<Range>1-1</Range>"), "{xml}");
    assert!(xml.contains("<Total>2</Total>"), "{xml}");
    assert!(!xml.contains("andrew"), "{xml}");
    let hostile = post(
        replica.addr,
        &line,
        &auth,
        Some(&key),
        &gal_search("an", "0-999999"),
    )
    .await;
    let xml = wbxml2xml(&hostile.body);
    let tree = pushmail_wbxml::decode(&hostile.body).unwrap();
    let store_status = tree
        .get(tag("Search", "Response"))
        .and_then(|r| r.get(tag("Search", "Store")))
        .and_then(|s| s.get(tag("Search", "Status")))
        .map(Element::text);
    assert_eq!(store_status.as_deref(), Some("2"), "{xml}");
    assert_eq!(
        tree.get(tag("Search", "Status"))
            .map(Element::text)
            .as_deref(),
        Some("1"),
        "{xml}"
    );

    // ResolveRecipients asking for certificates: none are held (7);
    // libwbxml reads it.
    let resolve = Element::of(tag("ResolveRecipients", "ResolveRecipients"))
        .with(Element::text_of(tag("ResolveRecipients", "To"), "andrew"))
        .with(
            Element::of(tag("ResolveRecipients", "Options")).with(Element::text_of(
                tag("ResolveRecipients", "CertificateRetrieval"),
                "2",
            )),
        );
    let resolved = post(
        replica.addr,
        &line.replace("Search", "ResolveRecipients"),
        &auth,
        Some(&key),
        &pushmail_wbxml::encode(&resolve).unwrap(),
    )
    .await;
    let xml = wbxml2xml(&resolved.body);
    assert!(
        xml.contains(&format!(">andrew@{domain}</EmailAddress>")),
        "{xml}"
    );
    assert!(
        xml.contains("<CertificateCount>0</CertificateCount>"),
        "{xml}"
    );
    // A Find without its SearchId, or with a range of a million: the
    // request is invalid (2). libwbxml does not know Find's page; ours
    // reads the answer.
    let find = |search_id: bool, range: &str| {
        let criterion = Element::of(tag("Find", "GALSearchCriterion"))
            .with(Element::text_of(tag("Find", "Query"), "anna"))
            .with(
                Element::of(tag("Find", "Options"))
                    .with(Element::text_of(tag("Find", "Range"), range)),
            );
        let mut root = Element::of(tag("Find", "Find"));
        if search_id {
            root = root.with(Element::text_of(
                tag("Find", "SearchId"),
                "6e5f1a4e-4c2b-4f0e-9a53-0d1c2b3a4f5e",
            ));
        }
        let root = root.with(Element::of(tag("Find", "ExecuteSearch")).with(criterion));
        pushmail_wbxml::encode(&root).unwrap()
    };
    for body in [find(false, "0-9"), find(true, "0-999999")] {
        let refused = post(
            replica.addr,
            &line.replace("Search", "Find"),
            &auth,
            Some(&key),
            &body,
        )
        .await;
        let tree = pushmail_wbxml::decode(&refused.body).unwrap();
        assert_eq!(
            tree.get(tag("Find", "Status"))
                .map(Element::text)
                .as_deref(),
            Some("2")
        );
    }

    front.stop().await;
    replica.stop().await;
    binding.stop().await.unwrap();
}

/// Searches the inbox for mail received after a date, printing each
/// result's fields.
const MAILBOX: &str = r#"
import sys, json
from pyactivesync import Client
from pyactivesync.models import FolderType
server, user, password, device, after = sys.argv[1:6]
with Client(server=server, username=user, password=password, device_id=device) as c:
    c.provision()
    inbox = next(f for f in c.list_folders() if f.type == FolderType.INBOX)
    found = c.search_mailbox(inbox.id, date_received_after=after, max_results=10)
    # Words go through Find (16.1), as pyactivesync sends them.
    words = c.search_mailbox(inbox.id, free_text="BUDGET", max_results=10)
    everywhere = c.find_mailbox("holiday")
    first = c.sync_folder(inbox.id)
    synced = c.sync_folder(inbox.id, first.sync_key).added
    print(json.dumps({
        "inbox": inbox.id,
        "found": found,
        "words": words,
        "everywhere": [[i.server_id, i.collection_id, i.fields] for i in everywhere.items],
        "range": everywhere.range,
        "synced": {i.server_id: i.fields.get("Email.Subject") for i in synced},
    }))
"#;

/// The three messages of [`mail`] as the MAILBOX session found them: by
/// date newest first, by words through Find (with the id a Sync of the
/// inbox gave), in every folder. The inbox's id.
fn found_in_inbox(out: &Value) -> &str {
    let subjects: Vec<&str> = out["found"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Email.Subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["holiday", "lunch", "budget draft"], "{out}");
    let inbox = out["inbox"].as_str().unwrap();
    // Find: words in a subject and a text; in every folder, with the id
    // a Sync of the inbox gave the same message.
    let words: Vec<&str> = out["words"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Email.Subject"].as_str().unwrap())
        .collect();
    assert_eq!(words, ["lunch", "budget draft"], "{out}");
    let holiday = &out["everywhere"][0];
    assert_eq!(holiday[1], inbox, "{out}");
    assert_eq!(holiday[2]["Email.Subject"], "holiday", "{out}");
    assert_eq!(holiday[2]["Find.Preview"], "nothing to see", "{out}");
    assert_eq!(
        out["synced"][holiday[0].as_str().unwrap()],
        "holiday",
        "{out}"
    );
    inbox
}

fn mail(n: usize, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Sender {n} <sender{n}@example.org>\r\nTo: {USER}\r\nSubject: {subject}\r\n\
         Message-ID: <eas-search{n}@example.org>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn mailbox_search(folder: &str, words: &str) -> Vec<u8> {
    let query = Element::of(tag("Search", "Query")).with(
        Element::of(tag("Search", "And"))
            .with(Element::text_of(tag("AirSync", "Class"), "Email"))
            .with(Element::text_of(tag("AirSync", "CollectionId"), folder))
            .with(Element::text_of(tag("Search", "FreeText"), words)),
    );
    let options = Element::of(tag("Search", "Options"))
        .with(Element::text_of(tag("Search", "Range"), "0-9"))
        .with(
            Element::of(tag("AirSyncBase", "BodyPreference"))
                .with(Element::text_of(tag("AirSyncBase", "Type"), "1")),
        );
    let store = Element::of(tag("Search", "Store"))
        .with(Element::text_of(tag("Search", "Name"), "Mailbox"))
        .with(query)
        .with(options);
    pushmail_wbxml::encode(&Element::of(tag("Search", "Search")).with(store)).unwrap()
}

fn fetch_long_id(long_id: &str) -> Vec<u8> {
    let fetch = Element::of(tag("ItemOperations", "Fetch"))
        .with(Element::text_of(tag("ItemOperations", "Store"), "Mailbox"))
        .with(Element::text_of(tag("Search", "LongId"), long_id));
    pushmail_wbxml::encode(&Element::of(tag("ItemOperations", "ItemOperations")).with(fetch))
        .unwrap()
}

#[tokio::test]
async fn a_stock_mail_app_searches_its_mailbox_and_opens_what_it_found() {
    let mut sending = Sending::start().await;
    for message in [
        mail(1, "budget draft", "numbers for the quarter"),
        mail(2, "lunch", "the budget is fine"),
        mail(3, "holiday", "nothing to see"),
    ] {
        sending.dovecot.deliver(USER, &message).await.unwrap();
    }
    let phone = phone_of_sending(&mut sending).await;
    let certs = tempfile::tempdir().unwrap();
    let front =
        Front::with_mailbox(sending.binding.addr, sending.node.addr, Some(certs.path())).await;
    let replica = Front::with_mailbox(sending.binding.addr, sending.node.addr, None).await;

    let out = pyactivesync(
        &front,
        certs.path(),
        &phone,
        MAILBOX,
        &["mailsearch01", "2000-01-01T00:00:00.000Z"],
    )
    .await;
    let out: Value = serde_json::from_str(&out).unwrap();
    let inbox = found_in_inbox(&out);
    assert_eq!(out["range"], "0-0", "{out}");
    let later = pyactivesync(
        &front,
        certs.path(),
        &phone,
        MAILBOX,
        &["mailsearch01", "2999-01-01T00:00:00.000Z"],
    )
    .await;
    // Nothing found is one empty Result (MS-ASCMD §2.2.3.142), which
    // pyactivesync reads as one empty entry.
    assert!(later.contains(r#""found": [{}]"#), "{later}");

    // Words, by hand: two found with their bodies, libwbxml reads it;
    // the first opens by its LongId.
    let auth = basic(&phone.address, &phone.password);
    let line = |command: &str| {
        format!(
            "Cmd={command}&User={}&DeviceId=mailsearch01&DeviceType=iPhone",
            phone.address
        )
    };
    let key = provisioned(&replica, &line("Provision"), &auth).await;
    let found = post(
        replica.addr,
        &line("Search"),
        &auth,
        Some(&key),
        &mailbox_search(inbox, "budget"),
    )
    .await;
    let xml = wbxml2xml(&found.body);
    assert!(xml.contains("<Total>2</Total>"), "{xml}");
    assert!(xml.contains("<Range>0-1</Range>"), "{xml}");
    assert!(xml.contains("the budget is fine"), "the body: {xml}");
    let tree = pushmail_wbxml::decode(&found.body).unwrap();
    let store = tree
        .get(tag("Search", "Response"))
        .and_then(|r| r.get(tag("Search", "Store")))
        .unwrap();
    let long_id = store
        .get(tag("Search", "Result"))
        .and_then(|r| r.get(tag("Search", "LongId")))
        .map(Element::text)
        .unwrap();
    let opened = post(
        replica.addr,
        &line("ItemOperations"),
        &auth,
        Some(&key),
        &fetch_long_id(&long_id),
    )
    .await;
    let xml = wbxml2xml(&opened.body);
    assert!(xml.contains(">lunch</Subject>"), "{xml}");
    let gone = post(
        replica.addr,
        &line("ItemOperations"),
        &auth,
        Some(&key),
        &fetch_long_id(&{
            // The same folder, a UID never given.
            let (validity, rest) = long_id.split_once('.').unwrap();
            let folder = rest.split_once('.').unwrap().1;
            format!("{validity}.999999.{folder}")
        }),
    )
    .await;
    let xml = wbxml2xml(&gone.body);
    assert!(xml.contains("<Status>6</Status>"), "not found: {xml}");

    front.stop().await;
    replica.stop().await;
    sending.stop().await;
}

#[tokio::test]
async fn a_forwarded_accounts_phone_searches_the_platforms_store() {
    // Mail forwarded to ingest over SMTP lands in the store the mailbox
    // service reads.
    let forwarded = Forwarded::start("fwdsearch").await;
    for message in [
        mail(1, "budget draft", "numbers for the quarter"),
        mail(2, "lunch", "the budget is fine"),
        mail(3, "holiday", "nothing to see"),
    ] {
        forwarded.forward(&message).await;
        // Received in this order: the search lists them newest first.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    forwarded.filed(3).await;
    let certs = tempfile::tempdir().unwrap();
    let front = Front::with_mailbox(
        forwarded.binding.addr,
        forwarded.mailbox.addr,
        Some(certs.path()),
    )
    .await;
    let out = pyactivesync(
        &front,
        certs.path(),
        &forwarded.phone,
        MAILBOX,
        &["fwdsearch01", "2000-01-01T00:00:00.000Z"],
    )
    .await;
    let out: Value = serde_json::from_str(&out).unwrap();
    found_in_inbox(&out);
    front.stop().await;
    forwarded.stop().await;
}
