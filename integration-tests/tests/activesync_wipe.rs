//! Remote wipe of a lost phone, ordered through binding's admin API as the
//! portal orders it, against real binding (PostgreSQL, the broker) and the
//! front door: every command of the phone is answered 140 until it
//! provisions; Provision hands it the wipe (the whole phone, or the
//! account's data only on a 16.1 phone); its acknowledgement revokes the
//! password. pyactivesync cannot wipe, so the phone's requests are built
//! here with our encoder, and every answer is read by libwbxml's
//! `wbxml2xml` as well as by our decoder.

#![allow(
    clippy::too_many_lines,
    reason = "a test reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::time::Duration;

use pushmail_integration_tests::activesync::{
    Front, Phone, Sessions, Upstreams, app_passwords, basic, phone, post, provisioned, text_at,
    wbxml2xml,
};
use pushmail_integration_tests::authed;
use pushmail_integration_tests::http::{Response, call};
use pushmail_integration_tests::nodes::BindingNode;
use pushmail_proto::binding::v1 as pb;
use pushmail_wbxml::{Element, tag};

async fn order(binding: &mut BindingNode, phone: &Phone, kind: pb::WipeKind) -> pb::AppPassword {
    binding
        .api
        .admin
        .wipe_app_password(authed(
            &phone.tenant.api_key,
            pb::WipeAppPasswordRequest {
                tenant_id: phone.tenant.tenant_id.clone(),
                app_password_id: phone.app_password.app_password_id.clone(),
                kind: kind.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

/// `<Provision>` holding `children`.
fn provision(children: Vec<Element>) -> Vec<u8> {
    let root = children
        .into_iter()
        .fold(Element::of(tag("Provision", "Provision")), Element::with);
    pushmail_wbxml::encode(&root).unwrap()
}

/// The phone's acknowledgement of a wipe of element `kind`, reporting
/// `status` (1: wiped; 2: failed).
fn acknowledgement(kind: &str, status: &str) -> Vec<u8> {
    provision(vec![
        Element::of(tag("Provision", kind))
            .with(Element::text_of(tag("Provision", "Status"), status)),
    ])
}

fn folder_sync() -> Vec<u8> {
    let root = Element::of(tag("FolderHierarchy", "FolderSync"))
        .with(Element::text_of(tag("FolderHierarchy", "SyncKey"), "0"));
    pushmail_wbxml::encode(&root).unwrap()
}

/// One phone's requests to the front door, as 16.1.
struct Caller<'a> {
    front: &'a Front,
    auth: String,
    address: String,
    device: &'static str,
}

impl Caller<'_> {
    fn query(&self, command: &str) -> String {
        format!(
            "Cmd={command}&User={}&DeviceId={}&DeviceType=iPhone",
            self.address, self.device
        )
    }

    async fn provisioned(&self) -> String {
        provisioned(self.front, &self.query("Provision"), &self.auth).await
    }

    async fn post(&self, command: &str, key: Option<&str>, body: &[u8]) -> Response {
        post(self.front.addr, &self.query(command), &self.auth, key, body).await
    }

    /// The status a FolderSync is answered with, once libwbxml has read
    /// the answer (and it lists no folder).
    async fn folder_sync_status(&self, key: Option<&str>) -> String {
        let told = self.post("FolderSync", key, &folder_sync()).await;
        assert_eq!(told.status, 200);
        let xml = wbxml2xml(&told.body);
        let tree = pushmail_wbxml::decode(&told.body).unwrap();
        assert!(
            tree.get(tag("FolderHierarchy", "Changes")).is_none(),
            "{xml}"
        );
        text_at(&tree, &[("FolderHierarchy", "Status")]).unwrap()
    }

    /// A Provision's answer: its status and the wipe element it names
    /// (`RemoteWipe`, `AccountOnlyRemoteWipe` or none), once libwbxml has
    /// read it too; it never carries a policy.
    async fn provision(&self, body: &[u8]) -> (String, Option<&'static str>) {
        let answered = self.post("Provision", None, body).await;
        assert_eq!(answered.status, 200);
        let xml = wbxml2xml(&answered.body);
        let tree = pushmail_wbxml::decode(&answered.body).unwrap();
        assert!(tree.get(tag("Provision", "Policies")).is_none(), "{xml}");
        let named = ["RemoteWipe", "AccountOnlyRemoteWipe"]
            .into_iter()
            .find(|name| tree.get(tag("Provision", name)).is_some());
        let status = text_at(&tree, &[("Provision", "Status")]).unwrap();
        (status, named)
    }
}

fn told(status: &str, wipe: &'static str) -> (String, Option<&'static str>) {
    (status.to_owned(), Some(wipe))
}

#[tokio::test]
async fn a_lost_phone_is_wiped_at_its_next_request_and_then_shut_out() {
    let mut binding = BindingNode::start().await.unwrap();
    let front = Front::start(binding.addr, None).await;

    // A provisioned phone; then the portal orders a full wipe.
    let lost = phone(&mut binding).await;
    let phone_of_lost = Caller {
        front: &front,
        auth: basic(&lost.address, &lost.password),
        address: lost.address.clone(),
        device: "LostPhone01",
    };
    let key = phone_of_lost.provisioned().await;
    // Run, not stopped: 6 only because no mailbox service answers here.
    assert_eq!(phone_of_lost.folder_sync_status(Some(&key)).await, "6");
    let ordered = order(&mut binding, &lost, pb::WipeKind::Device).await;
    assert!(ordered.wipe_done_at.is_none());

    // Every command is told 140, in its own status, key or no key; an
    // empty Ping (the phone's "as before") too.
    for key in [Some(key.as_str()), None] {
        assert_eq!(phone_of_lost.folder_sync_status(key).await, "140");
    }
    let ping = phone_of_lost.post("Ping", Some(&key), b"").await;
    let tree = pushmail_wbxml::decode(&ping.body).unwrap();
    assert_eq!(
        text_at(&tree, &[("Ping", "Status")]).as_deref(),
        Some("140")
    );

    // Provision (the empty form the spec says to send) is handed the
    // wipe and no policy. A phone that failed, or an acknowledgement
    // without its status, is answered 2 and asked again; the password
    // still works.
    let empty = provision(Vec::new());
    assert_eq!(
        phone_of_lost.provision(&empty).await,
        told("1", "RemoteWipe")
    );
    for wrong in [
        acknowledgement("RemoteWipe", "2"),
        provision(vec![Element::of(tag("Provision", "RemoteWipe"))]),
    ] {
        assert_eq!(
            phone_of_lost.provision(&wrong).await,
            told("2", "RemoteWipe")
        );
    }
    let listed = app_passwords(&mut binding, &lost).await;
    assert!(listed.app_passwords[0].revoked_at.is_none());

    // Wiped: acknowledged, answered 1, and the password is void.
    assert_eq!(
        phone_of_lost
            .provision(&acknowledgement("RemoteWipe", "1"))
            .await,
        told("1", "RemoteWipe")
    );
    let after = phone_of_lost
        .post("FolderSync", Some(&key), &folder_sync())
        .await;
    assert_eq!(after.status, 401);
    let listed = app_passwords(&mut binding, &lost).await;
    let row = &listed.app_passwords[0];
    assert_eq!(row.wipe(), pb::WipeKind::Device);
    assert!(row.wipe_done_at.is_some() && row.revoked_at.is_some());

    // A leaver's own phone: only the account's data. A 16.1 phone is
    // handed AccountOnlyRemoteWipe; a 14.1 phone cannot be told one and
    // is shut out instead (403), never wiped whole.
    let leaver = phone(&mut binding).await;
    let phone_of_leaver = Caller {
        front: &front,
        auth: basic(&leaver.address, &leaver.password),
        address: leaver.address.clone(),
        device: "LeaverPhone01",
    };
    let key = phone_of_leaver.provisioned().await;
    order(&mut binding, &leaver, pb::WipeKind::Account).await;
    let older = call(
        front.addr,
        "POST",
        &format!(
            "/Microsoft-Server-ActiveSync?{}",
            phone_of_leaver.query("FolderSync")
        ),
        &[
            ("Authorization", phone_of_leaver.auth.as_str()),
            ("MS-ASProtocolVersion", "14.1"),
            ("X-MS-PolicyKey", key.as_str()),
            ("Content-Type", "application/vnd.ms-sync.wbxml"),
        ],
        &folder_sync(),
    )
    .await
    .unwrap();
    assert_eq!(older.status, 403);
    let reason = String::from_utf8_lossy(&older.body);
    assert!(reason.contains("account-only wipe"), "{reason}");
    assert_eq!(phone_of_leaver.folder_sync_status(Some(&key)).await, "140");
    assert_eq!(
        phone_of_leaver.provision(&empty).await,
        told("1", "AccountOnlyRemoteWipe")
    );
    // The portal makes it a full wipe once the phone was handed the
    // account-only one: the phone, which does not wait, did what it was
    // handed, and that is what is recorded.
    order(&mut binding, &leaver, pb::WipeKind::Device).await;
    assert_eq!(
        phone_of_leaver
            .provision(&acknowledgement("AccountOnlyRemoteWipe", "1"))
            .await,
        told("1", "AccountOnlyRemoteWipe")
    );
    let after = phone_of_leaver.post("Provision", None, &empty).await;
    assert_eq!(after.status, 401);
    let listed = app_passwords(&mut binding, &leaver).await;
    assert_eq!(listed.app_passwords[0].wipe(), pb::WipeKind::Account);
    front.stop().await;
}

#[tokio::test]
async fn a_held_ping_is_let_go_when_a_wipe_is_ordered() {
    use base64::Engine as _;
    let mut binding = BindingNode::start().await.unwrap();
    let sessions = Sessions::start().await;
    let lost = phone(&mut binding).await;
    let front = Front::with_upstreams(
        binding.addr,
        Upstreams {
            mailbox: None,
            session: Some(sessions.grpc),
        },
        None,
    )
    .await;
    let held_phone = Caller {
        front: &front,
        auth: basic(&lost.address, &lost.password),
        address: lost.address.clone(),
        device: "HeldPhone01",
    };
    let key = held_phone.provisioned().await;
    let inbox = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("INBOX");
    let ping = pushmail_wbxml::encode(
        &Element::of(tag("Ping", "Ping"))
            .with(Element::text_of(tag("Ping", "HeartbeatInterval"), "3540"))
            .with(
                Element::of(tag("Ping", "Folders")).with(
                    Element::of(tag("Ping", "Folder"))
                        .with(Element::text_of(tag("Ping", "Id"), inbox))
                        .with(Element::text_of(tag("Ping", "Class"), "Email")),
                ),
            ),
    )
    .unwrap();
    let held = tokio::spawn({
        let (addr, query, auth, key, ping) = (
            front.addr,
            held_phone.query("Ping"),
            held_phone.auth.clone(),
            key.clone(),
            ping.clone(),
        );
        async move { post(addr, &query, &auth, Some(&key), &ping).await }
    });
    sessions
        .held(&lost.tenant.tenant_id, &lost.app_password.device_id)
        .await;
    order(&mut binding, &lost, pb::WipeKind::Device).await;

    // Let go long before its hour is up: status 1, as at a heartbeat's end.
    let answered = tokio::time::timeout(Duration::from_secs(120), held)
        .await
        .expect("the held Ping was not let go")
        .unwrap();
    assert_eq!(answered.status, 200);
    wbxml2xml(&answered.body);
    let tree = pushmail_wbxml::decode(&answered.body).unwrap();
    assert_eq!(text_at(&tree, &[("Ping", "Status")]).as_deref(), Some("1"));
    // The phone pings again and is told to provision.
    let again = held_phone.post("Ping", Some(&key), &ping).await;
    let tree = pushmail_wbxml::decode(&again.body).unwrap();
    assert_eq!(
        text_at(&tree, &[("Ping", "Status")]).as_deref(),
        Some("140")
    );
    front.stop().await;
    sessions.stop().await;
}
