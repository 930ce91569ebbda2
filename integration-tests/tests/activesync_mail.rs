//! ActiveSync mail against a real provider: binding (PostgreSQL), the
//! mailbox service (its own database) and Dovecot holding the mail.
//! pyactivesync (PyPI, an independent EAS 16.1 client) lists the folders,
//! syncs the inbox in windows, repeats a request and is answered the same,
//! estimates, marks read and flagged and deletes; Python's imaplib sees
//! those changes on the server and makes its own, which the phone's next
//! sync brings. FolderSync keys are followed at the HTTP level through a
//! second front door (any replica answers any key), every answer read by
//! libwbxml's `wbxml2xml`.

#![allow(
    clippy::too_many_lines,
    reason = "a test reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use pushmail_integration_tests::activesync::{
    Front, basic, phone_of, post, pyactivesync, wbxml2xml,
};
use pushmail_integration_tests::dovecot::{Dovecot, ImapProfile};
use pushmail_integration_tests::mailbox::{MailboxNode, USER, bound};
use pushmail_wbxml::{Element, tag};
use serde_json::{Value, json};

const DEVICE: &str = "pyasmail01";

fn plain(n: usize) -> Vec<u8> {
    format!(
        "From: Sender {n} <sender{n}@example.org>\r\nTo: {USER}\r\nSubject: message {n}\r\n\
         Message-ID: <eas{n}@example.org>\r\nDate: Mon, 7 Dec 2026 10:0{n}:00 +0000\r\n\r\n\
         body of message {n}\r\n"
    )
    .into_bytes()
}

fn html() -> Vec<u8> {
    format!(
        "From: =?UTF-8?B?5byg5LiJ?= <zhang@example.org>\r\nTo: {USER}\r\nSubject: \
         =?UTF-8?B?5Lya6K6u?=\r\nMessage-ID: <eas-html@example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; \
         charset=utf-8\r\n\r\n\u{4f60}\u{597d}, plain\r\n--b\r\nContent-Type: text/html; \
         charset=utf-8\r\n\r\n<p>\u{4f60}\u{597d}, html</p>\r\n--b--\r\n"
    )
    .into_bytes()
}

fn attached() -> Vec<u8> {
    format!(
        "From: files@example.org\r\nTo: {USER}\r\nSubject: report\r\nMessage-ID: \
         <eas-file@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; \
         boundary=m\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--m\r\n\
         Content-Type: application/pdf; name=\"q4.pdf\"\r\nContent-Disposition: attachment; \
         filename=\"q4.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--m--\r\n"
    )
    .into_bytes()
}

/// The phone's first session: folders, the inbox in two windows, a repeat
/// of the first window's key, estimates, and its own changes.
const FIRST_SESSION: &str = r#"
import sys, json
from pyactivesync import Client
from pyactivesync.exceptions import StatusError
from pyactivesync.models import EmailChange, FolderType
server, user, password, device = sys.argv[1:5]
out = {}
with Client(server=server, username=user, password=password, device_id=device) as c:
    out["policy"] = c.provision()
    folders = c.list_folders()
    out["folders"] = sorted([f.name, int(f.type), f.parent_id] for f in folders)
    inbox = next(f for f in folders if f.type == FolderType.INBOX)
    out["inbox"] = inbox.id
    first = c.sync_folder(inbox.id)
    out["first"] = [first.sync_key, len(first.added)]
    page1 = c.sync_folder(inbox.id, first.sync_key, window_size=2)
    page2 = c.sync_folder(inbox.id, page1.sync_key, window_size=25)
    again = c.sync_folder(inbox.id, page1.sync_key, window_size=25)
    items = page1.added + page2.added
    out["items"] = [i.fields | {"id": i.server_id} for i in items]
    out["more"] = [page1.more_available, page2.more_available]
    out["page2"] = [i.server_id for i in page2.added]
    out["again"] = [i.server_id for i in again.added]
    out["estimate_from_page1"] = c.get_item_estimate(inbox.id, page1.sync_key)
    out["estimate_now"] = c.get_item_estimate(inbox.id, page2.sync_key)
    by_subject = {i.fields.get("Email.Subject"): i.server_id for i in items}
    read = by_subject["message 1"]
    gone = by_subject["report"]
    out["read"], out["gone"] = read, gone
    applied = c.apply_email_changes(inbox.id, page2.sync_key, [
        EmailChange(server_id=read, read=True, flagged=True),
        EmailChange(server_id=gone, delete=True),
    ])
    out["applied"] = applied.statuses
    after = c.sync_folder(inbox.id, applied.sync_key)
    out["echo"] = [len(after.added), len(after.changed), len(after.deleted)]
    out["key"] = after.sync_key
    try:
        c.sync_folder(inbox.id, "0123456789abcdef0123456789abcdef")
        out["bogus"] = "accepted"
    except StatusError as e:
        out["bogus"] = e.code
print(json.dumps(out))
"#;

/// A later session: what changed since `key`.
const NEXT_SESSION: &str = r#"
import sys, json
from pyactivesync import Client
server, user, password, device, inbox, key = sys.argv[1:7]
with Client(server=server, username=user, password=password, device_id=device) as c:
    policy = c.provision()
    r = c.sync_folder(inbox, key)
    print(json.dumps({
        "policy": policy,
        "added": [i.fields | {"id": i.server_id} for i in r.added],
        "changed": [i.fields | {"id": i.server_id} for i in r.changed],
        "deleted": r.deleted,
    }))
"#;

fn uid(server_id: &str) -> u64 {
    server_id.split('.').nth(1).unwrap().parse().unwrap()
}

/// A FolderSync with `key` through `front`; its status, key and changes
/// as libwbxml reads them.
async fn folder_sync(
    front: &Front,
    auth: &str,
    policy: &str,
    key: &str,
) -> (String, String, String) {
    let body = Element::of(tag("FolderHierarchy", "FolderSync"))
        .with(Element::text_of(tag("FolderHierarchy", "SyncKey"), key));
    let answer = post(
        front.addr,
        &format!("Cmd=FolderSync&User={USER}&DeviceId={DEVICE}&DeviceType=pyactivesync"),
        auth,
        Some(policy),
        &pushmail_wbxml::encode(&body).unwrap(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let xml = wbxml2xml(&answer.body);
    let tree = pushmail_wbxml::decode(&answer.body).unwrap();
    let text = |name| {
        tree.get(tag("FolderHierarchy", name))
            .map(Element::text)
            .unwrap_or_default()
    };
    (text("Status"), text("SyncKey"), xml)
}

#[tokio::test]
async fn a_stock_client_syncs_and_changes_a_dovecot_inbox() {
    let dovecot = Dovecot::start_provider(&[USER], ImapProfile::Modern)
        .await
        .unwrap();
    let user = dovecot.users[0].clone();
    dovecot.deliver(USER, &plain(1)).await.unwrap();
    dovecot.deliver(USER, &html()).await.unwrap();
    dovecot.deliver(USER, &attached()).await.unwrap();
    let (mut binding, tenant, account) = bound(&dovecot).await;
    let phone = phone_of(&mut binding, tenant, account, USER.to_owned()).await;
    let mailbox = MailboxNode::start(binding.addr).await;
    let certs = tempfile::tempdir().unwrap();
    let front = Front::with_mailbox(binding.addr, mailbox.addr, Some(certs.path())).await;
    // A second replica, plain HTTP: the keys one issues, the other honours.
    let replica = Front::with_mailbox(binding.addr, mailbox.addr, None).await;

    let out: Value = serde_json::from_str(
        &pyactivesync(&front, certs.path(), &phone, FIRST_SESSION, &[DEVICE]).await,
    )
    .unwrap();
    let folders = out["folders"].as_array().unwrap();
    assert!(folders.contains(&json!(["INBOX", 2, "0"])), "{folders:?}");
    for kind in [3, 4, 5] {
        assert!(
            folders.iter().any(|f| f[1] == kind),
            "drafts, trash and sent have their types: {folders:?}"
        );
    }
    // Key 0 gives the first key and nothing else; then the inbox newest
    // first in a window of 2 and the rest.
    assert_eq!(out["first"], json!(["F", 0]));
    assert_eq!(out["more"], json!([true, false]));
    let items = out["items"].as_array().unwrap();
    let subjects: Vec<&str> = items
        .iter()
        .map(|i| i["Email.Subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["report", "会议", "message 1"]);
    let meeting = &items[1];
    assert_eq!(meeting["Email.From"], "\"张三\" <zhang@example.org>");
    assert_eq!(meeting["Email.Read"], "0");
    assert_eq!(meeting["Email.MessageClass"], "IPM.Note");
    // No body preference: plain text, whole.
    assert_eq!(meeting["AirSyncBase.Type"], "1");
    assert!(
        meeting["AirSyncBase.Data"]
            .as_str()
            .unwrap()
            .starts_with("你好, plain"),
        "{meeting}"
    );
    assert_eq!(items[0]["AirSyncBase.DisplayName"], "q4.pdf");
    assert_eq!(items[2]["Email.DateReceived"].as_str().unwrap().len(), 24);
    // A repeated request with an earlier key is answered again, the same.
    assert_eq!(out["again"], out["page2"]);
    assert_eq!(out["estimate_from_page1"], 1);
    assert_eq!(out["estimate_now"], 0);
    assert_eq!(
        out["applied"]
            .as_object()
            .unwrap()
            .values()
            .collect::<Vec<_>>(),
        [&json!("1"), &json!("1")]
    );
    // The phone's own changes are not echoed back to it.
    assert_eq!(out["echo"], json!([0, 0, 0]));
    assert_eq!(out["bogus"], "3", "an unknown key: InvalidSyncKey");

    // Python's imaplib sees them on the server.
    let read_uid = uid(out["read"].as_str().unwrap());
    let gone_uid = uid(out["gone"].as_str().unwrap());
    let seen = dovecot
        .imap_peer(
            &user,
            &json!([
                ["flags", "INBOX", read_uid.to_string()],
                ["uids", "INBOX"],
                ["uids", "Trash"]
            ]),
        )
        .await
        .unwrap();
    let flags = seen[0]["flags"].as_array().unwrap();
    assert!(flags.contains(&json!("\\Seen")), "{flags:?}");
    assert!(flags.contains(&json!("\\Flagged")), "{flags:?}");
    assert!(
        !seen[1].as_array().unwrap().contains(&json!(gone_uid)),
        "{seen:?}"
    );
    assert_eq!(seen[2].as_array().unwrap().len(), 1, "moved to the trash");

    // The desktop marks the meeting read, new mail comes: the phone's next
    // session brings both from the key it kept.
    let meeting_uid = uid(meeting["id"].as_str().unwrap());
    dovecot
        .imap_peer(
            &user,
            &json!([[
                "store",
                "INBOX",
                meeting_uid.to_string(),
                "+FLAGS",
                "(\\Seen)"
            ]]),
        )
        .await
        .unwrap();
    dovecot.deliver(USER, &plain(4)).await.unwrap();
    let inbox = out["inbox"].as_str().unwrap();
    let key = out["key"].as_str().unwrap();
    let next: Value = serde_json::from_str(
        &pyactivesync(
            &front,
            certs.path(),
            &phone,
            NEXT_SESSION,
            &[DEVICE, inbox, key],
        )
        .await,
    )
    .unwrap();
    let added = next["added"].as_array().unwrap();
    assert_eq!(added.len(), 1, "{next}");
    assert_eq!(added[0]["Email.Subject"], "message 4");
    let changed = next["changed"].as_array().unwrap();
    assert_eq!(changed.len(), 1, "{next}");
    assert_eq!(changed[0]["id"], meeting["id"]);
    assert_eq!(changed[0]["Email.Read"], "1");

    // FolderSync keys through the other replica: the tree, a folder the
    // desktop makes, the same answer again for a repeated key, and the
    // key kept when nothing changed.
    let auth = basic(USER, &phone.password);
    let policy = next["policy"].as_str().unwrap();
    let (status, tree_key, xml) = folder_sync(&replica, &auth, policy, "0").await;
    assert_eq!(status, "1");
    assert!(xml.contains("<DisplayName>INBOX</DisplayName>"), "{xml}");
    dovecot
        .imap_peer(&user, &json!([["create", "Projects"]]))
        .await
        .unwrap();
    let (status, newer, xml) = folder_sync(&replica, &auth, policy, &tree_key).await;
    assert_eq!(status, "1");
    assert!(xml.contains("<Count>1</Count>"), "{xml}");
    assert!(xml.contains("<DisplayName>Projects</DisplayName>"), "{xml}");
    assert!(xml.contains("<Type>12</Type>"), "{xml}");
    let (_, repeated, again) = folder_sync(&replica, &auth, policy, &tree_key).await;
    assert!(
        again.contains("<DisplayName>Projects</DisplayName>"),
        "{again}"
    );
    assert_ne!(repeated, tree_key);
    let (status, same, xml) = folder_sync(&replica, &auth, policy, &newer).await;
    assert_eq!((status.as_str(), same.as_str()), ("1", newer.as_str()));
    assert!(xml.contains("<Count>0</Count>"), "{xml}");
    let (status, _, _) = folder_sync(&replica, &auth, policy, "not-a-key").await;
    assert_eq!(status, "9");

    // A Sync asking for HTML cut to 10 bytes, as libwbxml reads it; and
    // one naming no collection (repeat the last), which is not kept.
    let collection = Element::of(tag("AirSync", "Collection"))
        .with(Element::text_of(tag("AirSync", "SyncKey"), "F"))
        .with(Element::text_of(tag("AirSync", "CollectionId"), inbox))
        .with(Element::text_of(tag("AirSync", "WindowSize"), "1000000"))
        .with(
            Element::of(tag("AirSync", "Options")).with(
                Element::of(tag("AirSyncBase", "BodyPreference"))
                    .with(Element::text_of(tag("AirSyncBase", "Type"), "2"))
                    .with(Element::text_of(tag("AirSyncBase", "TruncationSize"), "10")),
            ),
        );
    let sync = Element::of(tag("AirSync", "Sync"))
        .with(Element::of(tag("AirSync", "Collections")).with(collection));
    let query = format!("Cmd=Sync&User={USER}&DeviceId={DEVICE}&DeviceType=pyactivesync");
    let answer = post(
        replica.addr,
        &query,
        &auth,
        Some(policy),
        &pushmail_wbxml::encode(&sync).unwrap(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let xml = wbxml2xml(&answer.body);
    assert_eq!(xml.matches("<Add>").count(), 3, "{xml}");
    assert!(xml.contains("&lt;p&gt;你好,</Data>"), "{xml}");
    assert!(xml.contains("<Truncated>1</Truncated>"), "{xml}");
    let empty = post(replica.addr, &query, &auth, Some(policy), b"").await;
    assert_eq!(empty.status, 200);
    assert!(wbxml2xml(&empty.body).contains("<Status>13</Status>"));

    replica.stop().await;
    front.stop().await;
    mailbox.stop().await;
    binding.stop().await.unwrap();
}
