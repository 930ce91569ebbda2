//! ActiveSync mail against a real provider: binding (PostgreSQL), the
//! mailbox service (its own database) and Dovecot holding the mail.
//! pyactivesync (PyPI, an independent EAS 16.1 client) lists the folders,
//! syncs the inbox in windows, repeats a request and is answered the same,
//! estimates, marks read and flagged and deletes; Python's imaplib sees
//! those changes on the server and makes its own, which the phone's next
//! sync brings; it fetches whole messages (HTML, MIME) and an attachment
//! and files a message into another folder. FolderSync keys, attachment
//! byte ranges and emptying the trash are followed at the HTTP level
//! through a second front door (any replica answers any key), every
//! answer read by libwbxml's `wbxml2xml`. With Postfix in front of
//! Dovecot, pyactivesync sends a message (once for a repeated ClientId)
//! and a SmartReply quotes the original; both arrive in the recipient's
//! mailbox and in the Sent folder.

#![allow(
    clippy::too_many_lines,
    reason = "a test reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use pushmail_integration_tests::activesync::{
    Front, basic, phone_of, phone_of_sending, post, pyactivesync, wbxml2xml,
};
use pushmail_integration_tests::dovecot::{Dovecot, ImapProfile};
use pushmail_integration_tests::mailbox::{BOB, MailboxNode, Sending, USER, bobs_inbox, bound};
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
    read = by_subject["report"]
    gone = by_subject["message 1"]
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

/// Reading whole messages and attachments, and filing one.
const THIRD_SESSION: &str = r#"
import sys, json
from pyactivesync import Client
from pyactivesync.models import BodyType, FolderType
server, user, password, device, inbox, meeting, reference, filed = sys.argv[1:9]
with Client(server=server, username=user, password=password, device_id=device) as c:
    policy = c.provision()
    folders = c.list_folders()
    projects = next(f for f in folders if f.name == "Projects")
    trash = next(f for f in folders if f.type == FolderType.DELETED_ITEMS)
    html = c.fetch_item(inbox, meeting, body_type=BodyType.HTML)
    mime = c.fetch_item(inbox, meeting, body_type=BodyType.MIME)
    pdf = c.fetch_attachment(reference)
    moved = c.move_item(filed, inbox, projects.id)
    print(json.dumps({
        "html": [int(html.body.type), html.body.data],
        "mime": mime.body.data.decode("utf-8", "replace"),
        "subject": html.fields.get("Email.Subject"),
        "pdf": pdf.decode("latin-1"),
        "moved": moved,
        "projects": projects.id,
        "trash": trash.id,
        "policy": policy,
    }))
"#;

/// A phone of another tenant naming the first one's folder and message.
const OTHER_TENANT: &str = r#"
import sys, json
from pyactivesync import Client
from pyactivesync.exceptions import StatusError
server, user, password, device, inbox, meeting = sys.argv[1:7]
out = {}
with Client(server=server, username=user, password=password, device_id=device) as c:
    c.provision()
    try:
        out["fetch"] = c.fetch_item(inbox, meeting).fields.get("Email.Subject") or "empty"
    except StatusError as e:
        out["fetch"] = e.code
    try:
        first = c.sync_folder(inbox)
        out["sync"] = [i.fields.get("Email.Subject") for i in c.sync_folder(inbox, first.sync_key).added]
    except StatusError as e:
        out["sync"] = e.code
print(json.dumps(out))
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
    let phone = phone_of(&mut binding.api, tenant, account, USER.to_owned()).await;
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

    // A phone of another tenant naming this account's folder and message
    // reads its own (empty) mailbox, never this one.
    let stranger = pushmail_integration_tests::activesync::phone(&mut binding).await;
    let other: Value = serde_json::from_str(
        &pyactivesync(
            &front,
            certs.path(),
            &stranger,
            OTHER_TENANT,
            &[
                "pyasother1",
                out["inbox"].as_str().unwrap(),
                meeting["id"].as_str().unwrap(),
            ],
        )
        .await,
    )
    .unwrap();
    assert_eq!(other["fetch"], "6", "{other}");
    assert!(
        other["sync"] == json!([]) || other["sync"] == "12",
        "{other}"
    );

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

    // Whole messages as HTML and as mailed, the attachment by its
    // reference, and message 4 filed into Projects.
    let reference = items[0]["AirSyncBase.FileReference"].as_str().unwrap();
    let filed = added[0]["id"].as_str().unwrap();
    let third: Value = serde_json::from_str(
        &pyactivesync(
            &front,
            certs.path(),
            &phone,
            THIRD_SESSION,
            &[
                DEVICE,
                inbox,
                meeting["id"].as_str().unwrap(),
                reference,
                filed,
            ],
        )
        .await,
    )
    .unwrap();
    assert_eq!(third["html"][0], 2);
    assert!(
        third["html"][1]
            .as_str()
            .unwrap()
            .contains("<p>你好, html</p>"),
        "{third}"
    );
    assert!(
        third["mime"]
            .as_str()
            .unwrap()
            .contains("multipart/alternative"),
        "{third}"
    );
    assert_eq!(third["subject"], "会议");
    assert_eq!(third["pdf"], "%PDF-1.4\n");
    let projects = dovecot
        .imap_peer(&user, &json!([["uids", "Projects"], ["uids", "INBOX"]]))
        .await
        .unwrap();
    assert_eq!(
        projects[0],
        json!([uid(third["moved"].as_str().unwrap())]),
        "{third}"
    );
    assert!(!projects[1].as_array().unwrap().contains(&json!(uid(filed))));

    // A byte range of the attachment, and emptying the trash, through the
    // other replica; a range past the end is refused per item.
    let policy = third["policy"].as_str().unwrap();
    let item_operations =
        |fetch: Element| Element::of(tag("ItemOperations", "ItemOperations")).with(fetch);
    let ranged = |range: &str| {
        item_operations(
            Element::of(tag("ItemOperations", "Fetch"))
                .with(Element::text_of(tag("ItemOperations", "Store"), "Mailbox"))
                .with(Element::text_of(
                    tag("AirSyncBase", "FileReference"),
                    reference,
                ))
                .with(
                    Element::of(tag("ItemOperations", "Options"))
                        .with(Element::text_of(tag("ItemOperations", "Range"), range)),
                ),
        )
    };
    let query = format!("Cmd=ItemOperations&User={USER}&DeviceId={DEVICE}&DeviceType=pyactivesync");
    let answer = post(
        replica.addr,
        &query,
        &auth,
        Some(policy),
        &pushmail_wbxml::encode(&ranged("1-3")).unwrap(),
    )
    .await;
    let xml = wbxml2xml(&answer.body);
    assert!(xml.contains("<Range>1-3</Range>"), "{xml}");
    assert!(xml.contains("<Total>9</Total>"), "{xml}");
    assert!(xml.contains("<Data>UERG</Data>"), "PDF in base64: {xml}");
    let past = post(
        replica.addr,
        &query,
        &auth,
        Some(policy),
        &pushmail_wbxml::encode(&ranged("100-200")).unwrap(),
    )
    .await;
    assert!(wbxml2xml(&past.body).contains("<Status>8</Status>"));
    let trash = third["trash"].as_str().unwrap();
    let empty = item_operations(
        Element::of(tag("ItemOperations", "EmptyFolderContents"))
            .with(Element::text_of(tag("AirSync", "CollectionId"), trash)),
    );
    let emptied = post(
        replica.addr,
        &query,
        &auth,
        Some(policy),
        &pushmail_wbxml::encode(&empty).unwrap(),
    )
    .await;
    let xml = wbxml2xml(&emptied.body);
    assert_eq!(xml.matches("<Status>1</Status>").count(), 2, "{xml}");
    let trash_now = dovecot
        .imap_peer(&user, &json!([["uids", "Trash"]]))
        .await
        .unwrap();
    assert_eq!(trash_now[0], json!([]));

    replica.stop().await;
    front.stop().await;
    mailbox.stop().await;
    binding.stop().await.unwrap();
}

/// A new message with an attachment, sent twice with one ClientId, then
/// the inbox's first item (Bob's) for the reply.
const SEND_SESSION: &str = r#"
import sys, json
from email.message import EmailMessage
from pyactivesync import Client
from pyactivesync.models import FolderType
server, user, password, device = sys.argv[1:5]
msg = EmailMessage()
msg["From"] = user
msg["To"] = "Bob <bob@example.net>"
msg["Subject"] = "from the phone"
msg.set_content("sent with the stock mail app\n")
msg.add_attachment(b"%PDF-1.4\n", maintype="application", subtype="pdf", filename="plan.pdf")
with Client(server=server, username=user, password=password, device_id=device) as c:
    policy = c.provision()
    c.send_mail(msg, client_id="phone-send-1")
    c.send_mail(msg, client_id="phone-send-1")
    inbox = next(f for f in c.list_folders() if f.type == FolderType.INBOX)
    first = c.sync_folder(inbox.id)
    items = c.sync_folder(inbox.id, first.sync_key).added
    print(json.dumps({"policy": policy, "inbox": inbox.id, "item": items[0].server_id}))
"#;

fn smart(command: &str, folder: &str, item: &str, mime: &[u8], client: &str) -> Vec<u8> {
    let mut data = Element::of(tag("ComposeMail", "Mime"));
    data.children
        .push(pushmail_wbxml::Node::Opaque(mime.to_vec()));
    let body = Element::of(tag("ComposeMail", command))
        .with(Element::text_of(tag("ComposeMail", "ClientId"), client))
        .with(
            Element::of(tag("ComposeMail", "Source"))
                .with(Element::text_of(tag("ComposeMail", "FolderId"), folder))
                .with(Element::text_of(tag("ComposeMail", "ItemId"), item)),
        )
        .with(Element::of(tag("ComposeMail", "SaveInSentItems")))
        .with(data);
    pushmail_wbxml::encode(&body).unwrap()
}

#[tokio::test]
async fn a_stock_client_sends_and_replies_through_the_provider() {
    let mut sending = Sending::start().await;
    sending
        .dovecot
        .deliver(
            USER,
            format!(
                "From: Bob <{BOB}>\r\nTo: {USER}\r\nSubject: lunch\r\nMessage-ID: \
                 <lunch@example.net>\r\n\r\nlunch on friday?\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let phone = phone_of_sending(&mut sending).await;
    let certs = tempfile::tempdir().unwrap();
    let front =
        Front::with_mailbox(sending.binding.addr, sending.node.addr, Some(certs.path())).await;
    let replica = Front::with_mailbox(sending.binding.addr, sending.node.addr, None).await;

    // pyactivesync sends a new message twice with one ClientId: Bob gets
    // it once, from the account, with its attachment.
    let out: Value = serde_json::from_str(
        &pyactivesync(&front, certs.path(), &phone, SEND_SESSION, &[DEVICE]).await,
    )
    .unwrap();
    let uids = bobs_inbox(&sending.dovecot, 1).await;
    let bob = sending.dovecot.users[1].clone();
    let first = uids[0].as_u64().unwrap();
    let got = sending
        .dovecot
        .imap_peer(
            &bob,
            &json!([
                ["message", "INBOX", first.to_string()],
                ["attachments", "INBOX", first.to_string()]
            ]),
        )
        .await
        .unwrap();
    assert_eq!(got[0]["subject"], "from the phone");
    assert!(got[0]["from"].as_str().unwrap().contains(USER), "{got:?}");
    assert!(got[0]["text"].as_str().unwrap().contains("stock mail app"));
    assert_eq!(got[1][0]["name"], "plan.pdf", "{got:?}");

    // SmartReply through the other replica: the phone's text with the
    // original quoted, to Bob; an unknown original is status 150.
    let auth = basic(USER, &phone.password);
    let policy = out["policy"].as_str().unwrap();
    let query = format!("Cmd=SmartReply&User={USER}&DeviceId={DEVICE}&DeviceType=pyactivesync");
    let reply = format!("To: {BOB}\r\nSubject: Re: lunch\r\n\r\nyes, friday\r\n");
    let inbox = out["inbox"].as_str().unwrap();
    let answer = post(
        replica.addr,
        &query,
        &auth,
        Some(policy),
        &smart(
            "SmartReply",
            inbox,
            out["item"].as_str().unwrap(),
            reply.as_bytes(),
            "phone-reply-1",
        ),
    )
    .await;
    assert_eq!(
        (answer.status, answer.body.len()),
        (200, 0),
        "{}",
        answer.text()
    );
    let uids = bobs_inbox(&sending.dovecot, 2).await;
    let second = uids[1].as_u64().unwrap();
    let replied = sending
        .dovecot
        .imap_peer(&bob, &json!([["message", "INBOX", second.to_string()]]))
        .await
        .unwrap();
    assert_eq!(replied[0]["subject"], "Re: lunch");
    let text = replied[0]["text"].as_str().unwrap();
    assert!(text.contains("yes, friday"), "{text}");
    assert!(
        text.contains("lunch on friday?"),
        "the original quoted: {text}"
    );
    let gone = post(
        replica.addr,
        &query,
        &auth,
        Some(policy),
        &smart(
            "SmartReply",
            inbox,
            "1.999",
            reply.as_bytes(),
            "phone-reply-2",
        ),
    )
    .await;
    assert!(
        wbxml2xml(&gone.body).contains("<Status>150</Status>"),
        "{}",
        gone.text()
    );
    // Not a message at all: 107; nothing sent.
    let query = format!("Cmd=SendMail&User={USER}&DeviceId={DEVICE}&DeviceType=pyactivesync");
    let mut data = Element::of(tag("ComposeMail", "Mime"));
    data.children
        .push(pushmail_wbxml::Node::Opaque(b"\x00\x01 not mail".to_vec()));
    let garbage = Element::of(tag("ComposeMail", "SendMail"))
        .with(Element::text_of(
            tag("ComposeMail", "ClientId"),
            "phone-send-2",
        ))
        .with(data);
    let refused = post(
        replica.addr,
        &query,
        &auth,
        Some(policy),
        &pushmail_wbxml::encode(&garbage).unwrap(),
    )
    .await;
    let xml = wbxml2xml(&refused.body);
    assert!(xml.contains("<Status>107</Status>"), "{xml}");
    // Without SaveInSentItems the message goes, and no copy is kept.
    let mut mime = Element::of(tag("ComposeMail", "Mime"));
    mime.children.push(pushmail_wbxml::Node::Opaque(
        format!(
            "From: {USER}\r\nTo: bob@example.net\r\nSubject: no copy kept\r\n\r\nkept by the phone\r\n"
        )
        .into_bytes(),
    ));
    let uncopied = Element::of(tag("ComposeMail", "SendMail"))
        .with(Element::text_of(
            tag("ComposeMail", "ClientId"),
            "phone-send-3",
        ))
        .with(mime);
    let sent_alone = post(
        replica.addr,
        &query,
        &auth,
        Some(policy),
        &pushmail_wbxml::encode(&uncopied).unwrap(),
    )
    .await;
    assert_eq!(sent_alone.status, 200, "{}", sent_alone.text());
    assert!(
        sent_alone.body.is_empty(),
        "sent: {}",
        wbxml2xml(&sent_alone.body)
    );
    // The Sent folder holds the message and the reply, once each, and
    // not the message sent without SaveInSentItems.
    let sent = sending
        .dovecot
        .imap_peer(&sending.dovecot.users[0], &json!([["uids", "Sent"]]))
        .await
        .unwrap();
    assert_eq!(sent[0].as_array().unwrap().len(), 2, "{sent:?}");
    assert_eq!(
        bobs_inbox(&sending.dovecot, 3)
            .await
            .as_array()
            .unwrap()
            .len(),
        3
    );

    replica.stop().await;
    front.stop().await;
    sending.stop().await;
}
