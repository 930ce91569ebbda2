//! Folders a stock mail app makes, renames and deletes, against a real
//! provider (Dovecot, through the mailbox service) and against the
//! platform's own store (a forwarded account): pyactivesync (PyPI) is the
//! phone. Python's imaplib sees the folders on the server; the phone's
//! next FolderSync tells it only what it did not do itself (a rename, as
//! a folder's id is its name, as the old folder gone and the new one
//! added); special folders stay; names in any script travel in IMAP's
//! modified UTF-7.

#![allow(
    clippy::too_many_lines,
    reason = "a test reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use pushmail_integration_tests::activesync::{
    Front, Phone, basic, phone, phone_of, post, provisioned, pyactivesync, wbxml2xml,
};
use pushmail_integration_tests::dovecot::{Dovecot, ImapProfile};
use pushmail_integration_tests::mailbox::{MailboxNode, USER, bound};
use pushmail_integration_tests::nodes::BindingNode;
use pushmail_wbxml::{Element, tag};
use serde_json::{Value, json};

/// Makes, renames and deletes folders, printing each refusal's status
/// and the tree as a FolderSync from the key the edits left tells it.
const SESSION: &str = r#"
import sys, json
from pyactivesync import Client
from pyactivesync.models import FolderType
from pyactivesync.exceptions import StatusError
from pyactivesync._wbxml import WBXMLWriter, WBXMLReader, find, find_all, text_of, wtag
server, user, password, device = sys.argv[1:5]
out = {}

def status(edit):
    try:
        edit()
        return "1"
    except StatusError as e:
        return e.code

def post(c, command, *children):
    w = WBXMLWriter()
    w.tag("FolderHierarchy", command, children=list(children))
    return WBXMLReader(c._post(command, w.render())).parse()

MAIL = FolderType(12)  # a user-created mail folder (MS-ASCMD 2.2.3.186.3)
with Client(server=server, username=user, password=password, device_id=device) as c:
    c.provision()
    before = c.list_folders()
    inbox = next(f for f in before if f.type == FolderType.INBOX)
    receipts = c.create_folder("Receipts", type=MAIL)
    year = c.create_folder("2024", parent_id=receipts.id, type=MAIL)
    kept = c.create_folder("已归档", type=MAIL)
    gone = c.create_folder("Old", type=MAIL)
    out["refused"] = {
        "duplicate": status(lambda: c.create_folder("Receipts", type=MAIL)),
        "no_parent": status(lambda: c.create_folder("x", parent_id="bm9wZQ", type=MAIL)),
        "calendar": status(lambda: c.create_folder("Dates", type=FolderType(13))),
        "empty_name": status(lambda: c.create_folder("  ", type=MAIL)),
        "into_itself": status(lambda: c.update_folder(receipts.id, "Receipts", parent_id=year.id)),
        "rename_inbox": status(lambda: c.update_folder(inbox.id, "Renamed")),
        "delete_inbox": status(lambda: c.delete_folder(inbox.id)),
    }
    c.delete_folder(gone.id)
    out["refused"]["delete_gone"] = status(lambda: c.delete_folder(gone.id))
    out["refused"]["stale_key"] = text_of(find(post(c, "FolderDelete",
        wtag("FolderHierarchy", "SyncKey", text="not-a-key"),
        wtag("FolderHierarchy", "ServerId", text=kept.id)), "FolderHierarchy.Status"))

    # The key a create answers already holds the new folder: a FolderSync
    # from it tells nothing.
    made = post(c, "FolderCreate",
        wtag("FolderHierarchy", "SyncKey", text=c._folder_sync_key()),
        wtag("FolderHierarchy", "ParentId", text="0"),
        wtag("FolderHierarchy", "DisplayName", text="Travel"),
        wtag("FolderHierarchy", "Type", text="12"))
    key = text_of(find(made, "FolderHierarchy.SyncKey"))
    travel = text_of(find(made, "FolderHierarchy.ServerId"))
    synced = post(c, "FolderSync", wtag("FolderHierarchy", "SyncKey", text=key))
    out["after_create"] = text_of(find(synced, "FolderHierarchy.Count"))
    # A rename from that key: the next FolderSync replaces the folder.
    renamed = post(c, "FolderUpdate",
        wtag("FolderHierarchy", "SyncKey", text=key),
        wtag("FolderHierarchy", "ServerId", text=receipts.id),
        wtag("FolderHierarchy", "ParentId", text="0"),
        wtag("FolderHierarchy", "DisplayName", text="Invoices"))
    key = text_of(find(renamed, "FolderHierarchy.SyncKey"))
    synced = post(c, "FolderSync", wtag("FolderHierarchy", "SyncKey", text=key))
    out["after_rename"] = {
        "deleted": [text_of(find(ch, "FolderHierarchy.ServerId"))
                    for _, _, ch in find_all(synced, "FolderHierarchy.Delete")],
        "added": sorted(text_of(find(ch, "FolderHierarchy.DisplayName"))
                        for _, _, ch in find_all(synced, "FolderHierarchy.Add")),
    }
    out["ids"] = {"receipts": receipts.id, "year": year.id, "travel": travel}
    after = c.list_folders()
    names = {f.id: f.name for f in after}
    out["folders"] = sorted(
        [f.name, names.get(f.parent_id, "")] for f in after
        if f.type in (FolderType(1), FolderType(12)) and f.name not in ("Junk", "Archive"))
print(json.dumps(out))
"#;

/// The folders `user` has on Dovecot, as `LIST` names them.
fn imap_folders(dovecot: &Dovecot, user: &str) -> Vec<String> {
    let script = r#"
import imaplib, sys
host, port, user, password = sys.argv[1:5]
imap = imaplib.IMAP4(host, int(port))
imap.login(user, password)
typ, data = imap.list()
assert typ == "OK", data
for line in data:
    print(line.decode().rsplit(' ', 1)[1].strip('"'))
imap.logout()
"#;
    let output = std::process::Command::new("python3")
        .args(["-c", script, "127.0.0.1"])
        .arg(dovecot.imap.port().to_string())
        .args([user, &format!("pw-{user}")])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut names: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

/// The session's outcome, checked the same way whatever keeps the mail.
async fn edits(front: &Front, certs: &std::path::Path, phone: &Phone, device: &str) -> Value {
    let out: Value =
        serde_json::from_str(&pyactivesync(front, certs, phone, SESSION, &[device]).await).unwrap();
    // MS-ASCMD's statuses: 2 a name taken (FolderUpdate also for a special
    // folder), 3 a special folder (FolderDelete), 4 no such folder, 5 no
    // such parent (or the folder itself), 9 a key never issued, 10 a
    // malformed request (or a folder type not kept here).
    assert_eq!(
        out["refused"],
        json!({
            "duplicate": "2", "no_parent": "5", "calendar": "10", "empty_name": "10",
            "into_itself": "5", "rename_inbox": "2", "delete_inbox": "3",
            "delete_gone": "4", "stale_key": "9",
        }),
        "{out}"
    );
    assert_eq!(
        out["after_create"], "0",
        "the phone's own folder is not told back"
    );
    let ids = &out["ids"];
    assert_eq!(
        out["after_rename"]["deleted"],
        json!([ids["year"], ids["receipts"]]),
        "children first: {out}"
    );
    assert_eq!(out["after_rename"]["added"], json!(["2024", "Invoices"]));
    assert_eq!(
        out["folders"],
        json!([
            ["2024", "Invoices"],
            ["Invoices", ""],
            ["Travel", ""],
            ["已归档", ""]
        ]),
        "{out}"
    );
    out
}

#[tokio::test]
async fn a_stock_client_makes_renames_and_deletes_folders_on_dovecot() {
    let dovecot = Dovecot::start_provider(&[USER], ImapProfile::Modern)
        .await
        .unwrap();
    let (mut binding, tenant, account) = bound(&dovecot).await;
    let phone = phone_of(&mut binding.api, tenant, account, USER.to_owned()).await;
    let mailbox = MailboxNode::start(binding.addr).await;
    let certs = tempfile::tempdir().unwrap();
    let front = Front::with_mailbox(binding.addr, mailbox.addr, Some(certs.path())).await;
    edits(&front, certs.path(), &phone, "pyasfolders01").await;

    // On the server: renamed with its child, the Chinese name in
    // modified UTF-7, the deleted one gone.
    let names = imap_folders(&dovecot, USER);
    let user_folders: Vec<&String> = names
        .iter()
        .filter(|n| !["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"].contains(&n.as_str()))
        .collect();
    assert_eq!(user_folders.len(), 4, "{names:?}");
    assert!(names.contains(&"Invoices".to_owned()), "{names:?}");
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("Invoices") && n.ends_with("2024")),
        "{names:?}"
    );
    assert!(names.contains(&"&XfJfUmhj-".to_owned()), "{names:?}");
    assert!(names.contains(&"Travel".to_owned()), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("Receipts") || n == "Old")
    );
    front.stop().await;
}

#[tokio::test]
async fn a_forwarded_accounts_phone_keeps_its_folders_in_the_platforms_store() {
    let mut binding = BindingNode::start().await.unwrap();
    let phone = phone(&mut binding).await;
    let mailbox = MailboxNode::start(binding.addr).await;
    let certs = tempfile::tempdir().unwrap();
    let front = Front::with_mailbox(binding.addr, mailbox.addr, Some(certs.path())).await;
    edits(&front, certs.path(), &phone, "pyasfolders02").await;

    // The three answers as libwbxml reads them, at the HTTP level.
    let plain = Front::with_mailbox(binding.addr, mailbox.addr, None).await;
    let auth = basic(&phone.address, &phone.password);
    let query = |command: &str| {
        format!(
            "Cmd={command}&User={}&DeviceId=pyasfolders02&DeviceType=iPhone",
            phone.address
        )
    };
    let key = provisioned(&plain, &query("Provision"), &auth).await;
    let ask = |command: &'static str, children: Vec<Element>| {
        let body = children
            .into_iter()
            .fold(Element::of(tag("FolderHierarchy", command)), Element::with);
        let (query, auth, key, addr) = (query(command), auth.clone(), key.clone(), plain.addr);
        async move {
            let answer = post(
                addr,
                &query,
                &auth,
                Some(&key),
                &pushmail_wbxml::encode(&body).unwrap(),
            )
            .await;
            assert_eq!(answer.status, 200);
            let xml = wbxml2xml(&answer.body);
            assert!(xml.contains(command), "{xml}");
            pushmail_wbxml::decode(&answer.body).unwrap()
        }
    };
    let field = |name: &str| tag("FolderHierarchy", name);
    let text = |tree: &Element, name: &str| tree.get(field(name)).map(Element::text);
    let synced = ask("FolderSync", vec![Element::text_of(field("SyncKey"), "0")]).await;
    let tree_key = text(&synced, "SyncKey").unwrap();
    let made = ask(
        "FolderCreate",
        vec![
            Element::text_of(field("SyncKey"), tree_key.clone()),
            Element::text_of(field("ParentId"), "0"),
            Element::text_of(field("DisplayName"), "Entwürfe alt"),
            Element::text_of(field("Type"), "12"),
        ],
    )
    .await;
    assert_eq!(text(&made, "Status").as_deref(), Some("1"));
    let id = text(&made, "ServerId").unwrap();
    let key_after = text(&made, "SyncKey").unwrap();
    let renamed = ask(
        "FolderUpdate",
        vec![
            Element::text_of(field("SyncKey"), key_after.clone()),
            Element::text_of(field("ServerId"), id.clone()),
            Element::text_of(field("ParentId"), "0"),
            Element::text_of(field("DisplayName"), "a/b"),
        ],
    )
    .await;
    assert_eq!(
        text(&renamed, "Status").as_deref(),
        Some("10"),
        "the store's separator is not a name's"
    );
    let deleted = ask(
        "FolderDelete",
        vec![
            Element::text_of(field("SyncKey"), key_after),
            Element::text_of(field("ServerId"), id),
        ],
    )
    .await;
    assert_eq!(text(&deleted, "Status").as_deref(), Some("1"));
    assert!(text(&deleted, "SyncKey").is_some());
    plain.stop().await;
    front.stop().await;
}
