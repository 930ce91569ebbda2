//! The mailbox service's sending against a provider's real submission
//! server: Debian's Postfix, authenticating through Dovecot (SASL) and
//! delivering into it. A reply written by `compose` and submitted by
//! `Submitter` arrives in the recipient's mailbox with the signature, the
//! threading headers and the quoted original; a forward carries the
//! original's attachments byte for byte; a refused login or recipient
//! sends nothing.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::time::Duration;

use pushmail_common::egress::EgressConfig;
use pushmail_common::redact::Secret;
use pushmail_common::upstream::{Security, Tls};
use pushmail_integration_tests::dovecot::Dovecot;
use pushmail_integration_tests::mailbox::sending_provider;
use pushmail_integration_tests::postfix::Postfix;
use pushmail_mailbox::backend::Mailbox as _;
use pushmail_mailbox::compose::{Draft, Kind, Signature, compose};
use pushmail_mailbox::domain::{FolderId, Uid};
use pushmail_mailbox::imap::{ImapAccount, ImapConnector};
use pushmail_mailbox::submit::{SubmissionAccount, SubmitError, Submitter};
use pushmail_mime::{Limits, MailAddress, contents};

const ALICE: &str = "alice@example.net";
const BOB: &str = "bob@example.net";

const REPORT: &[u8] = b"From: Bob <bob@example.net>\r\nTo: alice@example.net\r\n\
Subject: =?GBK?B?vL62yLGouOY=?=\r\nMessage-ID: <report-1@example.net>\r\n\
Date: Mon, 7 Dec 2026 08:00:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain; charset=gbk\r\nContent-Transfer-Encoding: base64\r\n\r\n\
x+u/tLi9vP6how==\r\n\
--b1\r\nContent-Type: application/pdf; name=\"q3.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"q3.pdf\"\r\n\r\nJVBERi0xLjQKJcfsj6IK\r\n--b1--\r\n";

struct Provider {
    dovecot: Dovecot,
    postfix: Postfix,
}

async fn provider() -> Provider {
    let (dovecot, postfix) = sending_provider(&[ALICE, BOB]).await;
    Provider { dovecot, postfix }
}

fn tls(postfix: &Postfix) -> Tls {
    Tls::new(&[postfix.certificate.clone().into()])
        .unwrap()
        .with_egress(EgressConfig::loopback().policy().unwrap())
}

fn submission(postfix: &Postfix, security: Security, password: &str) -> SubmissionAccount {
    let port = match security {
        Security::Implicit => postfix.submissions.port(),
        _ => postfix.submission.port(),
    };
    SubmissionAccount {
        host: "localhost".to_owned(),
        port,
        security,
        username: ALICE.to_owned(),
        password: Secret::new(password),
    }
}

fn alice() -> MailAddress {
    MailAddress {
        name: "Alice".to_owned(),
        address: ALICE.to_owned(),
    }
}

fn imap(dovecot: &Dovecot, user: &str) -> ImapAccount {
    ImapAccount {
        host: "127.0.0.1".to_owned(),
        port: dovecot.imap.port(),
        security: Security::None,
        username: user.to_owned(),
        password: Secret::new(format!("pw-{user}")),
    }
}

/// The raw messages in `user`'s INBOX once there are `count`.
async fn inbox(dovecot: &Dovecot, user: &str, count: usize) -> Vec<Vec<u8>> {
    let connector = ImapConnector::new(
        Tls::new(&[])
            .unwrap()
            .with_egress(EgressConfig::loopback().policy().unwrap()),
        Duration::from_secs(10),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut mailbox = connector.open(&imap(dovecot, user)).await.unwrap();
        let listing = mailbox
            .listing(&FolderId::new("INBOX"), None)
            .await
            .unwrap();
        let uids: Vec<Uid> = match &listing.entries {
            pushmail_mailbox::sync::Entries::Full(all) => all.keys().copied().collect(),
            other => panic!("{other:?}"),
        };
        if uids.len() >= count {
            let mut out = Vec::new();
            for uid in uids {
                let key = pushmail_mailbox::domain::MessageKey {
                    folder: FolderId::new("INBOX"),
                    uid_validity: listing.uid_validity,
                    uid,
                };
                out.push(mailbox.raw(&key).await.unwrap());
            }
            Box::new(mailbox).close().await;
            return out;
        }
        Box::new(mailbox).close().await;
        assert!(
            tokio::time::Instant::now() < deadline,
            "{user} has {} of {count} messages",
            uids.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_reply_and_a_forward_arrive_as_written() {
    let Provider { dovecot, postfix } = provider().await;
    dovecot.deliver(ALICE, REPORT).await.unwrap();
    let original_raw = inbox(&dovecot, ALICE, 1).await.remove(0);
    let original = contents(&original_raw, &Limits::default()).unwrap();
    let submitter = Submitter::new(tls(&postfix), Duration::from_secs(20), "pushmail.test");

    // A reply over STARTTLS: to Bob, signed, threaded, quoting him.
    let reply = Draft {
        kind: Kind::Reply,
        to: Vec::new(),
        cc: Vec::new(),
        bcc: Vec::new(),
        subject: String::new(),
        text: "收到，谢谢。".to_owned(),
        html: None,
        files: Vec::new(),
        signature: Some(Signature {
            text: "Alice, from her phone".to_owned(),
            html: None,
        }),
        language: "zh-CN".to_owned(),
    };
    let composed = compose(
        &alice(),
        &reply,
        Some((&original, &original_raw)),
        1_800_000_000_000,
    )
    .unwrap();
    assert_eq!(composed.recipients, [BOB]);
    submitter
        .submit(
            &submission(&postfix, Security::StartTls, &format!("pw-{ALICE}")),
            ALICE,
            &composed.recipients,
            &composed.raw,
        )
        .await
        .unwrap();
    let arrived = inbox(&dovecot, BOB, 1).await.remove(0);
    let read = contents(&arrived, &Limits::default()).unwrap();
    assert_eq!(read.summary.subject, "Re: 季度报告");
    assert_eq!(read.summary.in_reply_to, ["report-1@example.net"]);
    assert_eq!(read.summary.references, ["report-1@example.net"]);
    assert_eq!(
        read.summary.message_id.as_deref(),
        Some(composed.message_id.as_str())
    );
    let text = read.text.replace("\r\n", "\n");
    assert!(
        text.starts_with("收到，谢谢。\n\n-- \nAlice, from her phone\n"),
        "{text}"
    );
    assert!(
        text.contains("Bob <bob@example.net> 写道：\n> 请看附件。"),
        "{text}"
    );
    // Through an authenticated, encrypted submission.
    assert!(String::from_utf8_lossy(&arrived).contains("ESMTPSA"));

    // A forward over implicit TLS carries the PDF byte for byte.
    let forward = Draft {
        kind: Kind::ForwardInline,
        to: vec![MailAddress {
            name: "Bob".to_owned(),
            address: BOB.to_owned(),
        }],
        text: "FYI".to_owned(),
        language: "en".to_owned(),
        ..reply.clone()
    };
    let composed = compose(
        &alice(),
        &forward,
        Some((&original, &original_raw)),
        1_800_000_000_000,
    )
    .unwrap();
    submitter
        .submit(
            &submission(&postfix, Security::Implicit, &format!("pw-{ALICE}")),
            ALICE,
            &composed.recipients,
            &composed.raw,
        )
        .await
        .unwrap();
    let arrived = inbox(&dovecot, BOB, 2).await.remove(1);
    let read = contents(&arrived, &Limits::default()).unwrap();
    assert_eq!(read.summary.subject, "Fwd: 季度报告");
    assert_eq!(read.attachments.len(), 1);
    assert_eq!(read.attachments[0].info.file_name, "q3.pdf");
    assert_eq!(read.attachments[0].bytes, original.attachments[0].bytes);
    assert!(
        read.text
            .contains("---------- Forwarded message ----------")
    );

    // Listed from the server's BODYSTRUCTURE: the body and the PDF.
    let connector = ImapConnector::new(
        Tls::new(&[])
            .unwrap()
            .with_egress(EgressConfig::loopback().policy().unwrap()),
        Duration::from_secs(10),
    );
    let mut bob = connector.open(&imap(&dovecot, BOB)).await.unwrap();
    let listing = bob.listing(&FolderId::new("INBOX"), None).await.unwrap();
    let listed = bob
        .summaries(&FolderId::new("INBOX"), listing.uid_validity, &[Uid(2)])
        .await
        .unwrap();
    let parts: Vec<(&str, &str, &str, bool)> = listed[0]
        .summary
        .parts
        .iter()
        .map(|p| {
            (
                p.part_id.as_str(),
                p.content_type.as_str(),
                p.file_name.as_str(),
                p.attachment,
            )
        })
        .collect();
    assert_eq!(
        parts,
        [
            ("1", "text/plain", "", false),
            ("2", "application/pdf", "q3.pdf", true)
        ]
    );
    assert_eq!(listed[0].summary.attachments.len(), 1);
    Box::new(bob).close().await;
}

#[tokio::test]
async fn a_refused_login_or_recipient_sends_nothing() {
    let Provider { dovecot, postfix } = provider().await;
    let submitter = Submitter::new(tls(&postfix), Duration::from_secs(30), "pushmail.test");
    let draft = Draft {
        kind: Kind::New,
        to: vec![
            MailAddress {
                name: String::new(),
                address: BOB.to_owned(),
            },
            MailAddress {
                name: String::new(),
                address: "nobody@example.net".to_owned(),
            },
        ],
        cc: Vec::new(),
        bcc: Vec::new(),
        subject: "hello".to_owned(),
        text: "hi".to_owned(),
        html: None,
        files: Vec::new(),
        signature: None,
        language: String::new(),
    };
    let composed = compose(&alice(), &draft, None, 0).unwrap();

    // One recipient the server refuses: nobody gets anything.
    let refused = submitter
        .submit(
            &submission(&postfix, Security::StartTls, &format!("pw-{ALICE}")),
            ALICE,
            &composed.recipients,
            &composed.raw,
        )
        .await;
    match refused {
        Err(SubmitError::Recipient { recipient, reply }) => {
            assert_eq!(recipient, "nobody@example.net");
            assert!(reply.starts_with("550"), "{reply}");
        }
        other => panic!("{other:?}"),
    }
    postfix
        .wait_queue_empty(Duration::from_secs(10))
        .await
        .unwrap();

    // A wrong password: the account's problem, said so.
    let wrong = submitter
        .submit(
            &submission(&postfix, Security::StartTls, "not-it"),
            ALICE,
            &[BOB.to_owned()],
            &composed.raw,
        )
        .await;
    assert!(
        matches!(wrong, Err(SubmitError::Credentials(_))),
        "{wrong:?}"
    );

    // A plain-text connection to a port that wants STARTTLS: refused
    // before any password is sent.
    let plain = submitter
        .submit(
            &submission(&postfix, Security::None, &format!("pw-{ALICE}")),
            ALICE,
            &[BOB.to_owned()],
            &composed.raw,
        )
        .await;
    assert!(plain.is_err(), "{plain:?}");

    // Then a good one arrives, alone.
    submitter
        .submit(
            &submission(&postfix, Security::StartTls, &format!("pw-{ALICE}")),
            ALICE,
            &[BOB.to_owned()],
            &composed.raw,
        )
        .await
        .unwrap();
    let bob = inbox(&dovecot, BOB, 1).await;
    assert_eq!(bob.len(), 1);
}
