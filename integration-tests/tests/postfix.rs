//! The test mail provider's submission server: a private Postfix that
//! authenticates through Dovecot and delivers into it over LMTP, driven by
//! swaks (an SMTP client independent of ours) and read back over IMAP with
//! Python's imaplib. The ground for the mailbox service sending mail from
//! the phone through the account's own server.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use pushmail_integration_tests::dovecot::{Dovecot, MailUser};
use pushmail_integration_tests::postfix::{HELD, Postfix};
use pushmail_integration_tests::unique;
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

const DELIVERED_WITHIN: Duration = Duration::from_secs(30);

/// A provider for example.net with two users, Postfix in front of Dovecot.
async fn provider() -> (Dovecot, Postfix) {
    let dovecot = Dovecot::start_with_sasl(&["alice@example.net", "bob@example.net"])
        .await
        .expect("dovecot starts");
    let postfix = Postfix::start(&dovecot, &["example.net"])
        .await
        .expect("postfix starts");
    (dovecot, postfix)
}

/// Runs swaks against `port` with `args`; returns whether it succeeded and
/// its whole transcript (replies and errors).
async fn swaks(port: std::net::SocketAddr, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new("swaks")
        .arg("--server")
        .arg(port.to_string())
        .args(["--timeout", "20"])
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("swaks (installed by scripts/provision.sh)");
    let transcript = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), transcript)
}

/// swaks arguments that submit a message from `from` to `to` with `subject`,
/// authenticated as `from` with `password`.
fn submit<'a>(from: &'a MailUser, password: &'a str, to: &'a str, subject: &'a str) -> Vec<String> {
    [
        "--auth",
        "PLAIN",
        "--auth-user",
        &from.address,
        "--auth-password",
        password,
        "--from",
        &from.address,
        "--to",
        to,
        "--header",
        &format!("Subject: {subject}"),
        "--body",
        "Sent from the phone.",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// The messages in `user`'s INBOX, read with Python's imaplib.
async fn inbox(dovecot: &Dovecot, user: &MailUser) -> Vec<String> {
    const SCRIPT: &str = r#"
import imaplib, json, sys
host, port, user, password = sys.argv[1:5]
imap = imaplib.IMAP4(host, int(port))
imap.login(user, password)
imap.select("INBOX", readonly=True)
typ, data = imap.uid("SEARCH", None, "ALL")
assert typ == "OK", data
messages = []
for uid in data[0].split():
    typ, fetched = imap.uid("FETCH", uid, "(BODY.PEEK[])")
    assert typ == "OK", fetched
    messages.append(fetched[0][1].decode("utf-8", "replace"))
imap.logout()
print(json.dumps(messages))
"#;
    let out = tokio::process::Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(dovecot.imap.ip().to_string())
        .arg(dovecot.imap.port().to_string())
        .arg(&user.address)
        .arg(&user.password)
        .output()
        .await
        .expect("python3");
    assert!(
        out.status.success(),
        "imaplib failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn args(list: &[String]) -> Vec<&str> {
    list.iter().map(String::as_str).collect()
}

#[tokio::test]
async fn starttls_submission_with_auth_lands_in_the_recipients_inbox() {
    let (dovecot, postfix) = provider().await;
    let (alice, bob) = (&dovecot.users[0], &dovecot.users[1]);
    let subject = unique("starttls");
    let mut list = submit(alice, &alice.password, &bob.address, &subject);
    list.push("--tls".to_owned());
    let (ok, transcript) = swaks(postfix.submission, &args(&list)).await;
    assert!(ok, "swaks failed:\n{transcript}");
    assert!(transcript.contains("235 2.7.0"), "{transcript}");
    assert!(transcript.contains("250 2.0.0 Ok: queued"), "{transcript}");

    postfix.wait_queue_empty(DELIVERED_WITHIN).await.unwrap();
    let messages = inbox(&dovecot, bob).await;
    assert_eq!(messages.len(), 1, "{messages:?}\n{}", postfix.log());
    let message = &messages[0];
    assert!(
        message.contains(&format!("Subject: {subject}")),
        "{message}"
    );
    assert!(message.contains("Sent from the phone."), "{message}");
    // Postfix's own record of how it was received: ESMTP, TLS, AUTH.
    assert!(message.contains("with ESMTPSA id"), "{message}");
    assert!(inbox(&dovecot, alice).await.is_empty());
    let log = postfix.log();
    assert!(
        log.contains(&format!("sasl_username={}", alice.address)),
        "{log}"
    );
    assert!(log.contains("status=sent"), "{log}");
}

#[tokio::test]
async fn implicit_tls_submission_with_auth_lands_in_the_recipients_inbox() {
    let (dovecot, postfix) = provider().await;
    let (alice, bob) = (&dovecot.users[0], &dovecot.users[1]);
    let subject = unique("implicit-tls");
    let mut list = submit(bob, &bob.password, &alice.address, &subject);
    list.push("--tlsc".to_owned());
    let (ok, transcript) = swaks(postfix.submissions, &args(&list)).await;
    assert!(ok, "swaks failed:\n{transcript}");
    assert!(transcript.contains("235 2.7.0"), "{transcript}");

    postfix.wait_queue_empty(DELIVERED_WITHIN).await.unwrap();
    let messages = inbox(&dovecot, alice).await;
    assert_eq!(messages.len(), 1, "{messages:?}\n{}", postfix.log());
    assert!(messages[0].contains(&format!("Subject: {subject}")));
    assert!(messages[0].contains("with ESMTPSA id"), "{}", messages[0]);
    assert!(
        postfix.log().contains("postfix/submissions/smtpd"),
        "{}",
        postfix.log()
    );
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_535() {
    let (dovecot, postfix) = provider().await;
    let (alice, bob) = (&dovecot.users[0], &dovecot.users[1]);
    for (port, tls) in [
        (postfix.submission, "--tls"),
        (postfix.submissions, "--tlsc"),
    ] {
        let mut list = submit(alice, "not-her-password", &bob.address, "wrong password");
        list.push(tls.to_owned());
        let (ok, transcript) = swaks(port, &args(&list)).await;
        assert!(!ok, "a wrong password was accepted:\n{transcript}");
        assert!(transcript.contains("535 5.7.8"), "{transcript}");
        assert!(!transcript.contains("250 2.0.0"), "{transcript}");
    }
    assert!(postfix.queue().await.unwrap().is_empty());
    assert!(inbox(&dovecot, bob).await.is_empty());
    assert!(
        postfix.log().contains("SASL PLAIN authentication failed"),
        "{}",
        postfix.log()
    );
}

#[tokio::test]
async fn without_auth_nothing_is_relayed_or_delivered() {
    let (dovecot, postfix) = provider().await;
    let (alice, bob) = (&dovecot.users[0], &dovecot.users[1]);
    let common = |to: &str| -> Vec<String> {
        [
            "--tls",
            "--from",
            &alice.address,
            "--to",
            to,
            "--header",
            "Subject: no auth",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect()
    };

    // An open relay: refused at RCPT.
    let (ok, transcript) =
        swaks(postfix.submission, &args(&common("someone@elsewhere.test"))).await;
    assert!(!ok, "relayed without AUTH:\n{transcript}");
    assert!(
        transcript.contains("554 5.7.1 <someone@elsewhere.test>: Relay access denied"),
        "{transcript}"
    );
    // Nor may an unauthenticated client write to the provider's own users
    // on the submission port.
    let (ok, transcript) = swaks(postfix.submission, &args(&common(&bob.address))).await;
    assert!(!ok, "accepted without AUTH:\n{transcript}");
    assert!(transcript.contains("554 5.7.1"), "{transcript}");
    let mut implicit = common(&bob.address);
    implicit[0] = "--tlsc".to_owned();
    let (ok, transcript) = swaks(postfix.submissions, &args(&implicit)).await;
    assert!(!ok, "accepted without AUTH:\n{transcript}");
    assert!(transcript.contains("554 5.7.1"), "{transcript}");

    assert!(postfix.queue().await.unwrap().is_empty());
    assert_eq!(
        postfix.log().matches("NOQUEUE: reject: RCPT").count(),
        3,
        "{}",
        postfix.log()
    );
    // A message sent properly afterwards is the only one Bob has.
    let mut list = submit(alice, &alice.password, &bob.address, "the only one");
    list.push("--tls".to_owned());
    let (ok, transcript) = swaks(postfix.submission, &args(&list)).await;
    assert!(ok, "{transcript}");
    postfix.wait_queue_empty(DELIVERED_WITHIN).await.unwrap();
    let messages = inbox(&dovecot, bob).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains("Subject: the only one"));
}

/// Reads one SMTP reply (all its lines): the code and the text.
async fn reply(stream: &mut (impl AsyncBufRead + Unpin)) -> (u16, String) {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read_line(&mut line))
            .await
            .expect("a reply within 10 s")
            .unwrap();
        assert!(n > 0, "connection closed; got so far: {text}");
        text.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return (line[..3].parse().unwrap(), text);
        }
    }
}

async fn command(
    stream: &mut (impl AsyncBufRead + AsyncWrite + Unpin),
    line: &str,
) -> (u16, String) {
    stream
        .write_all(format!("{line}\r\n").as_bytes())
        .await
        .unwrap();
    stream.flush().await.unwrap();
    reply(stream).await
}

#[tokio::test]
async fn auth_comes_only_after_starttls_with_the_exposed_certificate() {
    let (dovecot, postfix) = provider().await;
    let alice = &dovecot.users[0];

    // swaks: no STARTTLS, so the server offers no AUTH and swaks gives up.
    let list = submit(alice, &alice.password, &dovecot.users[1].address, "plain");
    let (ok, transcript) = swaks(postfix.submission, &args(&list)).await;
    assert!(!ok, "authenticated in the clear:\n{transcript}");
    assert!(!transcript.contains("235 2.7.0"), "{transcript}");
    assert!(!transcript.contains("250 2.0.0"), "{transcript}");

    // By hand: what the server says before and after STARTTLS.
    let mut clear = BufReader::new(TcpStream::connect(postfix.submission).await.unwrap());
    assert_eq!(reply(&mut clear).await.0, 220);
    let (code, ehlo) = command(&mut clear, "EHLO phone.test").await;
    assert_eq!(code, 250);
    assert!(ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(!ehlo.contains("AUTH"), "AUTH offered in the clear: {ehlo}");
    let plain = base64::engine::general_purpose::STANDARD
        .encode(format!("\0{}\0{}", alice.address, alice.password));
    let (code, text) = command(&mut clear, &format!("AUTH PLAIN {plain}")).await;
    assert_eq!(code, 530, "AUTH in the clear: {text}");
    assert!(text.contains("5.7.0"), "{text}");
    let (code, text) = command(&mut clear, &format!("MAIL FROM:<{}>", alice.address)).await;
    assert_eq!(code, 530, "mail in the clear: {text}");
    let (code, text) = command(&mut clear, "STARTTLS").await;
    assert_eq!(code, 220, "{text}");

    // Only the certificate Postfix exposes is trusted, for `localhost`.
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(postfix.certificate.clone()))
        .unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = clear.into_inner();
    let tls = TlsConnector::from(Arc::new(client))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .expect("TLS handshake against the exposed certificate");
    let mut tls = BufReader::new(tls);
    let (code, ehlo) = command(&mut tls, "EHLO phone.test").await;
    assert_eq!(code, 250);
    assert!(ehlo.contains("AUTH PLAIN LOGIN"), "{ehlo}");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    let (code, text) = command(&mut tls, &format!("AUTH PLAIN {plain}")).await;
    assert_eq!(code, 235, "{text}");
    let (code, _) = command(&mut tls, "QUIT").await;
    assert_eq!(code, 221);
}

#[tokio::test]
async fn mail_for_other_domains_stays_queued_and_unknown_users_are_refused() {
    let (dovecot, postfix) = provider().await;
    let alice = &dovecot.users[0];

    // A user of the provider may send anywhere: accepted, then held.
    let mut list = submit(alice, &alice.password, "friend@elsewhere.test", "outbound");
    list.push("--tls".to_owned());
    let (ok, transcript) = swaks(postfix.submission, &args(&list)).await;
    assert!(ok, "{transcript}");
    let held = postfix
        .wait_deferred("friend@elsewhere.test", DELIVERED_WITHIN)
        .await
        .unwrap();
    assert_eq!(held.sender, alice.address);
    let reason = held.recipients[0].delay_reason.as_deref().unwrap();
    assert!(reason.contains(HELD), "{reason}");
    let log = postfix.log();
    assert!(log.contains("status=deferred"), "{log}");
    assert!(!log.contains("status=sent"), "{log}");

    // An address of the provider's domain that Dovecot does not know.
    let mut list = submit(alice, &alice.password, "nobody@example.net", "unknown");
    list.push("--tls".to_owned());
    let (ok, transcript) = swaks(postfix.submission, &args(&list)).await;
    assert!(!ok, "{transcript}");
    assert!(transcript.contains("550 5.1.1"), "{transcript}");

    let queue = postfix.queue().await.unwrap();
    assert_eq!(queue.len(), 1, "{queue:#?}");
    for user in &dovecot.users {
        assert!(inbox(&dovecot, user).await.is_empty());
    }
}
