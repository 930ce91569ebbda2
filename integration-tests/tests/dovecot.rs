//! The test Dovecot itself: mail delivered over LMTP is seen over IMAP and
//! POP3, and what IMAP returns parses as ingest will parse it. The ground
//! the IMAP/POP3/LMTP work of [4/9] stands on.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use pushmail_ingest::mail::{Limits, parse};
use pushmail_integration_tests::dovecot::Dovecot;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../services/ingest/tests/corpus/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Sends one command and reads up to the line starting with `until`.
async fn exchange(stream: &mut BufReader<TcpStream>, command: &str, until: &str) -> String {
    if !command.is_empty() {
        stream
            .get_mut()
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .unwrap();
    }
    let mut out = String::new();
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_line(&mut line),
        )
        .await
        .expect("an answer within 10 s")
        .unwrap();
        assert!(n > 0, "connection closed; got so far: {out}");
        out.push_str(&line);
        if line.starts_with(until) {
            return out;
        }
    }
}

#[tokio::test]
async fn mail_delivered_over_lmtp_is_served_over_imap_and_pop3() {
    let dovecot = Dovecot::start(&["alice@example.net"])
        .await
        .expect("dovecot starts");
    let user = &dovecot.users[0];
    dovecot
        .deliver(&user.address, &corpus("gb2312-subject.eml"))
        .await
        .unwrap();

    let mut imap = BufReader::new(TcpStream::connect(dovecot.imap).await.unwrap());
    exchange(&mut imap, "", "* OK").await;
    let login = exchange(
        &mut imap,
        &format!("a LOGIN {} {}", user.address, user.password),
        "a ",
    )
    .await;
    assert!(login.contains("a OK"), "{login}");
    let select = exchange(&mut imap, "b SELECT INBOX", "b ").await;
    assert!(
        select.contains("* 1 EXISTS") && select.contains("UIDVALIDITY"),
        "{select}"
    );
    let fetch = exchange(&mut imap, "c UID FETCH 1:* (UID RFC822.SIZE)", "c ").await;
    assert!(fetch.contains("UID 1 "), "{fetch}");
    imap.get_mut()
        .write_all(b"d UID FETCH 1 (BODY.PEEK[])\r\n")
        .await
        .unwrap();
    let mut header = String::new();
    imap.read_line(&mut header).await.unwrap();
    let size: usize = header[header.rfind('{').unwrap() + 1..header.rfind('}').unwrap()]
        .parse()
        .unwrap();
    let mut raw = vec![0; size];
    imap.read_exact(&mut raw).await.unwrap();
    exchange(&mut imap, "", "d OK").await;
    let parsed = parse(&raw, &Limits::default()).unwrap();
    assert_eq!(
        parsed.subject, "季度报告：请审阅",
        "the message survives the round trip"
    );

    let mut pop3 = BufReader::new(TcpStream::connect(dovecot.pop3).await.unwrap());
    exchange(&mut pop3, "", "+OK").await;
    exchange(&mut pop3, &format!("USER {}", user.address), "+OK").await;
    exchange(&mut pop3, &format!("PASS {}", user.password), "+OK").await;
    let stat = exchange(&mut pop3, "STAT", "+OK").await;
    assert!(stat.starts_with("+OK 1 "), "{stat}");
    let uidl = exchange(&mut pop3, "UIDL", ".").await;
    assert!(
        uidl.lines().nth(1).is_some_and(|l| l.starts_with("1 ")),
        "{uidl}"
    );

    let refused = dovecot
        .deliver("nobody@example.net", b"Subject: x\r\n\r\nx\r\n")
        .await;
    assert!(refused.is_err(), "an unknown recipient is refused");
}
