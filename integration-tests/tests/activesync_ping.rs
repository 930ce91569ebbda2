//! Ping against a real session node (Redis directory and outbox) and real
//! binding: a held Ping is a connection of the device in the directory,
//! answered with the folder mail came to once dispatch's delivery reaches
//! it, answered when the replica stops, and refused with the spec's
//! statuses when it asks for too little, too much or a folder never given.
//! A Sync that asks to wait, against Dovecot through the mailbox service,
//! is held the same way and answered with the mail that came. Every
//! answer is read back by libwbxml's `wbxml2xml`.

#![allow(
    clippy::too_many_lines,
    reason = "a test reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use pushmail_integration_tests::activesync::{
    Front, Sessions, Upstreams, basic, phone, phone_of_sending, post, provisioned, text_at,
    wbxml2xml,
};
use pushmail_integration_tests::mailbox::{Sending, USER};
use pushmail_integration_tests::nodes::BindingNode;
use pushmail_proto::session::v1::DeliverStatus;
use pushmail_wbxml::{Element, tag};

/// A folder id as the mailbox service gives it (base64url of the name).
fn folder_id(name: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(name)
}

fn ping_of(heartbeat: &str, folders: &[&str]) -> Vec<u8> {
    let mut listed = Element::of(tag("Ping", "Folders"));
    for id in folders {
        listed = listed.with(
            Element::of(tag("Ping", "Folder"))
                .with(Element::text_of(tag("Ping", "Id"), *id))
                .with(Element::text_of(tag("Ping", "Class"), "Email")),
        );
    }
    pushmail_wbxml::encode(
        &Element::of(tag("Ping", "Ping"))
            .with(Element::text_of(
                tag("Ping", "HeartbeatInterval"),
                heartbeat,
            ))
            .with(listed),
    )
    .unwrap()
}

/// The answer's status, its one other value (HeartbeatInterval or
/// MaxFolders) and the folders it lists, once libwbxml has read it.
fn read(body: &[u8]) -> (String, Option<String>, Vec<String>) {
    let xml = wbxml2xml(body);
    assert!(xml.contains("<Ping"), "{xml}");
    let root = pushmail_wbxml::decode(body).unwrap();
    let status = text_at(&root, &[("Ping", "Status")]).unwrap();
    let value = text_at(&root, &[("Ping", "HeartbeatInterval")])
        .or_else(|| text_at(&root, &[("Ping", "MaxFolders")]));
    let folders = root
        .get(tag("Ping", "Folders"))
        .map(|f| f.all(tag("Ping", "Folder")).map(Element::text).collect())
        .unwrap_or_default();
    (status, value, folders)
}

#[tokio::test]
async fn a_held_ping_is_answered_by_mail_to_a_watched_folder_and_bad_pings_get_their_statuses() {
    let mut binding = BindingNode::start().await.unwrap();
    let sessions = Sessions::start().await;
    let phone = phone(&mut binding).await;
    let front = Front::with_upstreams(
        binding.addr,
        Upstreams {
            mailbox: None,
            session: Some(sessions.grpc),
        },
        None,
    )
    .await;
    let auth = basic(&phone.address, &phone.password);
    let line = |command: &str| {
        format!(
            "Cmd={command}&User={}&DeviceId=pinger01&DeviceType=iPhone",
            phone.address
        )
    };
    let key = provisioned(&front, &line("Provision"), &auth).await;
    let ping = |body: Vec<u8>| {
        let (query, auth, key, addr) = (line("Ping"), auth.clone(), key.clone(), front.addr);
        async move { post(addr, &query, &auth, Some(&key), &body).await }
    };
    let (tenant, device) = (
        phone.tenant.tenant_id.clone(),
        phone.app_password.device_id.clone(),
    );
    let (inbox, work) = (folder_id("INBOX"), folder_id("Work"));

    // Without a body the phone asks for the last Ping's folders, which a
    // stateless replica does not keep: 3, and it sends them again.
    let empty = ping(Vec::new()).await;
    assert_eq!(empty.status, 200);
    assert_eq!(read(&empty.body).0, "3");
    // Not a Ping: 4. No folders: 3.
    let folder_sync = pushmail_wbxml::encode(
        &Element::of(tag("FolderHierarchy", "FolderSync"))
            .with(Element::text_of(tag("FolderHierarchy", "SyncKey"), "0")),
    )
    .unwrap();
    assert_eq!(read(&ping(folder_sync).await.body).0, "4");
    assert_eq!(read(&ping(ping_of("480", &[])).await.body).0, "3");
    assert_eq!(read(&ping(ping_of("soon", &[&inbox])).await.body).0, "4");
    // Heartbeats out of 60..=3540 are told the bound they passed.
    let short = read(&ping(ping_of("30", &[&inbox])).await.body);
    assert_eq!((short.0.as_str(), short.1.as_deref()), ("5", Some("60")));
    let long = read(&ping(ping_of("4000", &[&inbox])).await.body);
    assert_eq!((long.0.as_str(), long.1.as_deref()), ("5", Some("3540")));
    // Ten thousand folders: 6 with the most a Ping watches, nothing held.
    let many: Vec<String> = (0..10_000).map(|i| folder_id(&format!("f{i}"))).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let hostile = ping(ping_of("480", &many)).await;
    let hostile = read(&hostile.body);
    assert_eq!(
        (hostile.0.as_str(), hostile.1.as_deref()),
        ("6", Some("300"))
    );
    // A folder id never given: the phone's hierarchy is stale (7).
    let stale = read(&ping(ping_of("480", &["not base64!"])).await.body);
    assert_eq!(stale.0, "7");

    // Held: mail to a folder not watched does not answer it; mail to a
    // watched one does, naming that folder only.
    let held = tokio::spawn(ping(ping_of("480", &[&inbox, &work])));
    assert_eq!(sessions.held(&tenant, &device).await, 480);
    assert_eq!(
        sessions.notify(&tenant, &device, "Archive").await,
        DeliverStatus::Acked
    );
    assert!(!held.is_finished(), "an unwatched folder answered the Ping");
    assert_eq!(
        sessions.notify(&tenant, &device, "Work").await,
        DeliverStatus::Acked
    );
    let answer = held.await.unwrap();
    assert_eq!(answer.status, 200);
    let (status, _, folders) = read(&answer.body);
    assert_eq!((status.as_str(), folders), ("2", vec![work.clone()]));

    // Mail between two Pings answers the next one at once.
    assert_eq!(
        sessions.notify(&tenant, &device, "INBOX").await,
        DeliverStatus::NotConnectedHere
    );
    let next = ping(ping_of("480", &[&inbox, &work])).await;
    let (status, _, folders) = read(&next.body);
    assert_eq!((status.as_str(), folders), ("2", vec![inbox.clone()]));

    // The replica stops: the held Ping is answered (1) so the phone pings
    // another, and the device is let go.
    let held = tokio::spawn(ping(ping_of("900", &[&inbox])));
    assert_eq!(sessions.held(&tenant, &device).await, 900);
    front.stop().await;
    let answer = held.await.unwrap();
    assert_eq!(read(&answer.body).0, "1");

    // With the session service gone, a Ping is told to retry (503).
    sessions.stop().await;
    let orphan = Front::with_upstreams(
        binding.addr,
        Upstreams {
            mailbox: None,
            session: Some(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                pushmail_integration_tests::free_port(),
            ))),
        },
        None,
    )
    .await;
    let key = provisioned(&orphan, &line("Provision"), &auth).await;
    let refused = post(
        orphan.addr,
        &line("Ping"),
        &auth,
        Some(&key),
        &ping_of("480", &[&inbox]),
    )
    .await;
    assert_eq!(refused.status, 503);
    assert!(refused.header("retry-after").is_some());
    orphan.stop().await;
    binding.stop().await.unwrap();
}

fn sync_of(key: &str, folder: &str, wait: Option<(&str, &str)>) -> Vec<u8> {
    let mut root = Element::of(tag("AirSync", "Sync")).with(
        Element::of(tag("AirSync", "Collections")).with(
            Element::of(tag("AirSync", "Collection"))
                .with(Element::text_of(tag("AirSync", "SyncKey"), key))
                .with(Element::text_of(tag("AirSync", "CollectionId"), folder)),
        ),
    );
    if let Some((name, value)) = wait {
        root = root.with(Element::text_of(tag("AirSync", name), value));
    }
    pushmail_wbxml::encode(&root).unwrap()
}

#[tokio::test]
async fn a_sync_that_asks_to_wait_is_held_until_mail_comes() {
    let mut sending = Sending::start().await;
    let sessions = Sessions::start().await;
    let phone = phone_of_sending(&mut sending).await;
    let front = Front::with_upstreams(
        sending.binding.addr,
        Upstreams {
            mailbox: Some(sending.node.addr),
            session: Some(sessions.grpc),
        },
        None,
    )
    .await;
    let auth = basic(&phone.address, &phone.password);
    let line = |command: &str| {
        format!(
            "Cmd={command}&User={}&DeviceId=waiter01&DeviceType=Android",
            phone.address
        )
    };
    let key = provisioned(&front, &line("Provision"), &auth).await;
    let sync = |body: Vec<u8>| {
        let (query, auth, key, addr) = (line("Sync"), auth.clone(), key.clone(), front.addr);
        async move { post(addr, &query, &auth, Some(&key), &body).await }
    };
    let inbox = folder_id("INBOX");
    let at = |answer: &[u8], what: &str| {
        let root = pushmail_wbxml::decode(answer).unwrap();
        let collection = [
            ("AirSync", "Collections"),
            ("AirSync", "Collection"),
            ("AirSync", what),
        ];
        text_at(&root, &collection).or_else(|| text_at(&root, &[("AirSync", what)]))
    };
    let first = sync(sync_of("0", &inbox, None)).await;
    let first_key = at(&first.body, "SyncKey").unwrap();
    let listed = sync(sync_of(&first_key, &inbox, None)).await;
    let key_now = at(&listed.body, "SyncKey").unwrap();

    // Out of bounds: 14 with the bound passed.
    let refused = sync(sync_of(&key_now, &inbox, Some(("Wait", "60")))).await;
    let xml = wbxml2xml(&refused.body);
    assert!(
        xml.contains("<Status>14</Status>") && xml.contains("<Limit>59</Limit>"),
        "{xml}"
    );

    // Nothing to tell: held; mail arrives and dispatch delivers: the
    // Sync answers with it.
    let held = tokio::spawn(sync(sync_of(
        &key_now,
        &inbox,
        Some(("HeartbeatInterval", "120")),
    )));
    let device = phone.app_password.device_id.clone();
    assert_eq!(sessions.held(&phone.tenant.tenant_id, &device).await, 120);
    sending
        .dovecot
        .deliver(
            USER,
            format!(
                "From: news@example.org\r\nTo: {USER}\r\nSubject: while you waited\r\n\
                 Message-ID: <waited@example.org>\r\n\r\nhello\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(
        sessions
            .notify(&phone.tenant.tenant_id, &device, "INBOX")
            .await,
        DeliverStatus::Acked
    );
    let answer = held.await.unwrap();
    let xml = wbxml2xml(&answer.body);
    assert!(xml.contains("while you waited"), "{xml}");
    assert!(xml.contains("<Add>"), "{xml}");

    front.stop().await;
    sessions.stop().await;
    sending.stop().await;
}
