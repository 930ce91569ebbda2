//! The number's preferences reach a stock mail app, against a real
//! provider (Dovecot, Postfix), binding (PostgreSQL) and the mailbox
//! service: with attachments turned off in the portal's preferences a
//! Sync lists none and an attachment fetch is refused (status 16); the
//! size preference cuts the bodies a Sync brings (a message opened with
//! ItemOperations comes whole); the signature goes on what the phone
//! sends. pyactivesync (PyPI) is the phone; libwbxml reads the refusal.

#![allow(
    clippy::too_many_lines,
    reason = "a test reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use pushmail_integration_tests::activesync::{
    Front, basic, phone_of_sending, post, pyactivesync, wbxml2xml,
};
use pushmail_integration_tests::mailbox::{Sending, USER, bobs_inbox};
use pushmail_wbxml::{Element, tag};
use serde_json::{Value, json};

const DEVICE: &str = "pyasprefs01";

/// A message whose text is far longer than the size preference.
fn long() -> Vec<u8> {
    format!(
        "From: news@example.org\r\nTo: {USER}\r\nSubject: long read\r\n\
         Message-ID: <eas-long@example.org>\r\n\r\n{}\r\n",
        "All work and no play. ".repeat(100)
    )
    .into_bytes()
}

fn attached() -> Vec<u8> {
    format!(
        "From: files@example.org\r\nTo: {USER}\r\nSubject: report\r\nMessage-ID: \
         <eas-prefs-file@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; \
         boundary=m\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--m\r\n\
         Content-Type: application/pdf; name=\"q4.pdf\"\r\nContent-Disposition: attachment; \
         filename=\"q4.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--m--\r\n"
    )
    .into_bytes()
}

/// Syncs the inbox (no body preference: plain text, as the service cuts
/// it) and prints each item's subject, body, truncation and attachment
/// references; with `fetch`, opens the long message whole and tries the
/// attachment reference given; with `send`, sends a message to Bob.
const SESSION: &str = r#"
import sys, json
from email.message import EmailMessage
from pyactivesync import Client
from pyactivesync.models import FolderType
server, user, password, device, mode, reference = sys.argv[1:7]
out = {}
with Client(server=server, username=user, password=password, device_id=device) as c:
    out["policy"] = c.provision()
    inbox = next(f for f in c.list_folders() if f.type == FolderType.INBOX)
    out["inbox"] = inbox.id
    first = c.sync_folder(inbox.id)
    items = c.sync_folder(inbox.id, first.sync_key).added
    out["items"] = {i.fields.get("Email.Subject"): i.fields | {"id": i.server_id} for i in items}
    if mode == "fetch":
        opened = c.fetch_item(inbox.id, out["items"]["long read"]["id"])
        out["opened"] = opened.body.data if opened.body else ""
    if mode == "send":
        msg = EmailMessage()
        msg["From"] = user
        msg["To"] = "Bob <bob@example.net>"
        msg["Subject"] = "signed on the server"
        msg.set_content("typed on the phone\n")
        c.send_mail(msg, client_id="prefs-send-1")
print(json.dumps(out))
"#;

#[tokio::test]
async fn the_numbers_preferences_reach_the_stock_mail_app() {
    let mut sending = Sending::start().await;
    for message in [long(), attached()] {
        sending.dovecot.deliver(USER, &message).await.unwrap();
    }
    let phone = phone_of_sending(&mut sending).await;
    let certs = tempfile::tempdir().unwrap();
    let front =
        Front::with_mailbox(sending.binding.addr, sending.node.addr, Some(certs.path())).await;
    // Plain HTTP, for the requests written by hand.
    let replica = Front::with_mailbox(sending.binding.addr, sending.node.addr, None).await;
    let run = |mode: &'static str, reference: String| {
        let (front, certs, phone) = (&front, certs.path(), &phone);
        async move {
            let out = pyactivesync(front, certs, phone, SESSION, &[DEVICE, mode, &reference]).await;
            serde_json::from_str::<Value>(&out).unwrap()
        }
    };

    // The defaults (4 KiB, attachments on): the long body whole within
    // 4,096 bytes, the attachment listed.
    let before = run("sync", String::new()).await;
    let items = &before["items"];
    let reference = items["report"]["AirSyncBase.FileReference"]
        .as_str()
        .unwrap_or_else(|| panic!("the attachment is listed: {items}"))
        .to_owned();
    assert_eq!(items["report"]["AirSyncBase.DisplayName"], "q4.pdf");
    let long_body = items["long read"]["AirSyncBase.Data"].as_str().unwrap();
    assert!(long_body.len() > 2_000, "{long_body}");

    // The tenant admin turns attachments off, bodies down to 64 bytes
    // and adds a signature.
    sending
        .binding
        .set_preferences(&phone.tenant, &phone.account, |p| {
            p.attachments = false;
            p.max_push_bytes = 64;
            p.signature = "Sent from the carrier's push mail".to_owned();
        })
        .await
        .unwrap();
    let after = run("fetch", reference.clone()).await;
    let items = &after["items"];
    assert!(
        items["report"].get("AirSyncBase.FileReference").is_none(),
        "no attachment listed: {items}"
    );
    let cut = &items["long read"];
    assert!(
        cut["AirSyncBase.Data"].as_str().unwrap().len() <= 64,
        "{cut}"
    );
    assert_eq!(cut["AirSyncBase.Truncated"], "1", "{cut}");
    // Opened, the message comes whole.
    assert!(
        after["opened"].as_str().unwrap().len() > 2_000,
        "{}",
        after["opened"]
    );
    // The attachment's reference from before is refused: access blocked.
    let fetch = pushmail_wbxml::encode(
        &Element::of(tag("ItemOperations", "ItemOperations")).with(
            Element::of(tag("ItemOperations", "Fetch"))
                .with(Element::text_of(tag("ItemOperations", "Store"), "Mailbox"))
                .with(Element::text_of(
                    tag("AirSyncBase", "FileReference"),
                    reference.as_str(),
                )),
        ),
    )
    .unwrap();
    let query = format!("Cmd=ItemOperations&User={USER}&DeviceId={DEVICE}&DeviceType=pyactivesync");
    let blocked = post(
        replica.addr,
        &query,
        &basic(USER, &phone.password),
        Some(after["policy"].as_str().unwrap()),
        &fetch,
    )
    .await;
    let xml = wbxml2xml(&blocked.body);
    assert!(xml.contains("<Status>16</Status>"), "{xml}");
    assert!(!xml.contains("<Data>"), "{xml}");

    // What the phone sends carries the signature.
    run("send", String::new()).await;
    let uids = bobs_inbox(&sending.dovecot, 1).await;
    let bob = sending.dovecot.users[1].clone();
    let got = sending
        .dovecot
        .imap_peer(
            &bob,
            &json!([["message", "INBOX", uids[0].as_u64().unwrap().to_string()]]),
        )
        .await
        .unwrap();
    assert_eq!(got[0]["subject"], "signed on the server");
    let text = got[0]["text"].as_str().unwrap();
    assert!(text.contains("typed on the phone"), "{text}");
    assert!(text.contains("Sent from the carrier's push mail"), "{text}");

    replica.stop().await;
    front.stop().await;
    sending.stop().await;
}
