//! `pushmail device ls | read | reply | send`, the demo device's mailbox
//! commands, run as a newcomer would against a gateway, the mailbox
//! service, binding (a bound device), Dovecot and Postfix: the inbox is
//! listed, a message read (and so marked read), answered with a photo
//! uploaded in chunks, and a new message sent; a bad id is a clear error.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::process::{Command, Output};

use pushmail_integration_tests::mailbox::{BOB, Sending, USER, bobs_inbox};
use serde_json::json;

/// `pushmail device --gateway … <args>` with the device's token.
fn device(gateway: &str, token: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pushmail"))
        .args(["device", "--gateway", gateway])
        .args(args)
        .env("PUSHMAIL_DEVICE_TOKEN", token)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_device_lists_reads_replies_and_sends() {
    let mut sending = Sending::start().await;
    let question = format!(
        "From: Bob <{BOB}>\r\nTo: {USER}\r\nSubject: photos of the site\r\n\
         Message-ID: <photos@example.net>\r\n\r\nCould you send me the photos?\r\n"
    );
    sending
        .dovecot
        .deliver(USER, question.as_bytes())
        .await
        .unwrap();
    let (token, gateway_node) = sending.phone().await;
    let gateway = format!("http://{}", gateway_node.addr);
    let a = sending.a.clone();

    // ls: the question, unread.
    let listed = stdout(&device(&gateway, &token, &["ls", "--account", &a]));
    let line = listed
        .lines()
        .find(|l| l.contains("photos of the site"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(line.starts_with('*'), "unread: {line}");
    assert!(line.contains(&format!("Bob <{BOB}>")), "{line}");
    let id = line.split_whitespace().nth(1).unwrap().to_owned();

    // read: the text, and read everywhere afterwards.
    let read = stdout(&device(&gateway, &token, &["read", "--account", &a, &id]));
    assert!(read.contains("Subject: photos of the site"), "{read}");
    assert!(read.contains("Could you send me the photos?"), "{read}");
    let listed = stdout(&device(&gateway, &token, &["ls", "--account", &a]));
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("  ") && l.contains(&id)),
        "{listed}"
    );

    // reply with a photo of three chunks.
    let dir = tempfile::tempdir().unwrap();
    let photo: Vec<u8> = (0..600_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let path = dir.path().join("site.jpg");
    std::fs::write(&path, &photo).unwrap();
    let replied = stdout(&device(
        &gateway,
        &token,
        &[
            "reply",
            "--account",
            &a,
            &id,
            "--text",
            "Here they are.",
            "--attach",
            path.to_str().unwrap(),
        ],
    ));
    assert!(
        replied.contains("uploaded site.jpg (600000 bytes)"),
        "{replied}"
    );
    assert!(replied.contains("sent "), "{replied}");
    assert_eq!(bobs_inbox(&sending.dovecot, 1).await, json!([1]));
    let bob = sending.dovecot.users[1].clone();
    let attachments = sending
        .dovecot
        .imap_peer(&bob, &json!([["attachments", "INBOX", "1"]]))
        .await
        .unwrap();
    assert_eq!(attachments[0][0]["name"], "site.jpg");
    assert_eq!(attachments[0][0]["type"], "image/jpeg");
    assert_eq!(attachments[0][0]["size"], photo.len());

    // send: a new message.
    let sent = stdout(&device(
        &gateway,
        &token,
        &[
            "send",
            "--account",
            &a,
            "--to",
            BOB,
            "--subject",
            "and one more",
            "--text",
            "The last one is from today.",
        ],
    ));
    assert!(sent.contains("copy in Sent"), "{sent}");
    assert_eq!(bobs_inbox(&sending.dovecot, 2).await, json!([1, 2]));

    // A message that is not there: a clear error, non-zero exit.
    let bad = device(&gateway, &token, &["read", "--account", &a, "nonsense"]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("gateway: 400"), "{stderr}");

    gateway_node.stop().await.unwrap();
    sending.stop().await;
}
