//! A forwarded account's phone reads and changes its mail in the
//! platform's own store, through the front door: three mails forwarded to
//! ingest over SMTP; pyactivesync (PyPI) lists the folders, syncs the
//! inbox, marks one read and flagged, deletes one (to the trash) and
//! files one into Archive; the mailbox service's own listing shows each
//! change, and the phone's next Sync does not echo its own changes back
//! (the move shows as the message leaving the inbox, as MoveItems is not
//! tied to a key). Its phone also sends: through the tenant's relay (a
//! Debian Postfix with SMTP AUTH against Dovecot), arriving in the
//! recipient's Dovecot mailbox from the account's address, once for a
//! repeated ClientId, with one copy in the platform's own Sent folder.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use pushmail_integration_tests::activesync::{Forwarded, Front, pyactivesync};
use pushmail_integration_tests::authed;
use pushmail_integration_tests::mailbox::{BOB, bobs_inbox, pem_file, sending_provider};
use pushmail_integration_tests::unique;
use pushmail_proto::binding::v1 as binding;
use pushmail_proto::mailbox::v1 as mailbox;
use serde_json::{Value, json};

const SESSION: &str = r#"
import sys, json
from pyactivesync import Client
from pyactivesync.models import EmailChange, FolderType
server, user, password, device = sys.argv[1:5]
out = {}
with Client(server=server, username=user, password=password, device_id=device) as c:
    c.provision()
    folders = c.list_folders()
    out["folders"] = sorted([f.name, int(f.type)] for f in folders)
    inbox = next(f for f in folders if f.type == FolderType.INBOX)
    archive = next(f for f in folders if f.name == "Archive")
    first = c.sync_folder(inbox.id)
    page = c.sync_folder(inbox.id, first.sync_key)
    by_subject = {i.fields.get("Email.Subject"): i.server_id for i in page.added}
    out["subjects"] = sorted(by_subject)
    applied = c.apply_email_changes(inbox.id, page.sync_key, [
        EmailChange(server_id=by_subject["report"], read=True, flagged=True),
        EmailChange(server_id=by_subject["message 1"], delete=True),
    ])
    out["applied"] = sorted(applied.statuses.values())
    out["moved"] = bool(c.move_item(by_subject["message 2"], inbox.id, archive.id))
    after = c.sync_folder(inbox.id, applied.sync_key)
    out["after"] = [len(after.added), len(after.changed), len(after.deleted)]
print(json.dumps(out))
"#;

fn mail(subject: &str, to: &str) -> Vec<u8> {
    format!(
        "From: Sender <sender@example.org>\r\nTo: {to}\r\nSubject: {subject}\r\n\
         Message-ID: <{}@example.org>\r\n\r\nbody of {subject}\r\n",
        unique("local")
    )
    .into_bytes()
}

/// (total, unread) of the folder named `name`.
fn counts(folders: &[mailbox::Folder], name: &str) -> (u32, u32) {
    let folder = folders.iter().find(|f| f.name == name).unwrap();
    (folder.total, folder.unread)
}

#[tokio::test]
async fn a_forwarded_accounts_phone_reads_and_files_its_mail_in_the_platforms_store() {
    let forwarded = Forwarded::start("fwdmail").await;
    for subject in ["message 1", "message 2", "report"] {
        forwarded
            .forward(&mail(subject, &forwarded.phone.address))
            .await;
    }
    forwarded.filed(3).await;

    let certs = tempfile::tempdir().unwrap();
    let front = Front::with_mailbox(
        forwarded.binding.addr,
        forwarded.mailbox.addr,
        Some(certs.path()),
    )
    .await;
    let out: Value = serde_json::from_str(
        &pyactivesync(
            &front,
            certs.path(),
            &forwarded.phone,
            SESSION,
            &["fwdmail01"],
        )
        .await,
    )
    .unwrap();
    // The store's standard folders, with the types phones show apart.
    for folder in [
        json!(["INBOX", 2]),
        json!(["Drafts", 3]),
        json!(["Trash", 4]),
        json!(["Sent", 5]),
        json!(["Archive", 12]),
    ] {
        assert!(
            out["folders"].as_array().unwrap().contains(&folder),
            "{out}"
        );
    }
    assert_eq!(
        out["subjects"],
        json!(["message 1", "message 2", "report"]),
        "{out}"
    );
    assert_eq!(out["applied"], json!(["1", "1"]), "{out}");
    assert_eq!(out["moved"], true, "{out}");
    // Its own read, flag and delete are not told back; the move is.
    assert_eq!(out["after"], json!([0, 0, 1]), "{out}");

    // In the store: the report read in the inbox, one in the trash, one
    // filed.
    let now = forwarded.folders().await;
    assert_eq!(counts(&now, "INBOX"), (1, 0), "{now:?}");
    assert_eq!(counts(&now, "Trash").0, 1, "{now:?}");
    assert_eq!(counts(&now, "Archive").0, 1, "{now:?}");
    front.stop().await;
    forwarded.stop().await;
}

const RELAY_USER: &str = "relay@example.net";

/// A message sent twice with one ClientId (a phone retrying).
const SEND_SESSION: &str = r#"
import sys, json
from email.message import EmailMessage
from pyactivesync import Client
server, user, password, device = sys.argv[1:5]
msg = EmailMessage()
msg["From"] = user
msg["To"] = "Bob <bob@example.net>"
msg["Subject"] = "从手机 through the relay"
msg.set_content("sent by a forwarded account's phone\n")
with Client(server=server, username=user, password=password, device_id=device) as c:
    c.provision()
    c.send_mail(msg, client_id="fwd-send-1")
    c.send_mail(msg, client_id="fwd-send-1")
print(json.dumps({"sent": True}))
"#;

#[tokio::test]
async fn a_forwarded_accounts_phone_sends_through_its_tenants_relay() {
    let (dovecot, postfix) = sending_provider(&[RELAY_USER, BOB]).await;
    let certs = tempfile::tempdir().unwrap();
    let ca = pem_file(certs.path(), &postfix.certificate);
    let mut forwarded = Forwarded::start_trusting("fwdsend", Some(ca)).await;
    let relay = binding::SetSubmissionRelayRequest {
        tenant_id: String::new(),
        server: Some(binding::ServerSettings {
            host: "localhost".to_owned(),
            port: u32::from(postfix.submission.port()),
            tls: binding::TlsMode::Starttls.into(),
            username: RELAY_USER.to_owned(),
        }),
        credentials: Some(binding::Credentials {
            password: dovecot.users[0].password.clone(),
        }),
    };
    forwarded
        .binding
        .admin
        .set_submission_relay(authed(&forwarded.phone.tenant.api_key, relay))
        .await
        .unwrap();
    let front = Front::with_mailbox(
        forwarded.binding.addr,
        forwarded.mailbox.addr,
        Some(certs.path()),
    )
    .await;
    let out: serde_json::Value = serde_json::from_str(
        &pyactivesync(
            &front,
            certs.path(),
            &forwarded.phone,
            SEND_SESSION,
            &["fwdsend01"],
        )
        .await,
    )
    .unwrap();
    assert_eq!(out["sent"], true, "{out}");

    // Bob has it once, from the account's own address.
    bobs_inbox(&dovecot, 1).await;
    postfix
        .wait_queue_empty(std::time::Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(bobs_inbox(&dovecot, 1).await, json!([1]), "sent once");
    let bob = dovecot.users[1].clone();
    let received = dovecot
        .imap_peer(&bob, &json!([["message", "INBOX", "1"]]))
        .await
        .unwrap()[0]
        .clone();
    assert!(
        received["from"]
            .as_str()
            .unwrap()
            .contains(&forwarded.phone.address),
        "{received}"
    );
    assert_eq!(received["subject"], "从手机 through the relay");
    // One copy in the platform's Sent folder, read.
    assert_eq!(counts(&forwarded.folders().await, "Sent"), (1, 0));
    front.stop().await;
    forwarded.stop().await;
}
