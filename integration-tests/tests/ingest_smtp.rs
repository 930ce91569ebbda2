//! The SMTP and LMTP receivers end to end: accounts created through
//! binding's API, mail sent with a standard client (swaks), `MailArrived`
//! read from the real broker. A broker outage answers 4xx and the sender's
//! retry lands: nothing acknowledged is lost.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pushmail_common::bus::{EventBus, KafkaBus};
use pushmail_integration_tests::broker::PrivateBroker;
use pushmail_integration_tests::kafka_config;
use pushmail_integration_tests::nodes::{BindingNode, IngestNode, TenantEvents, ingest_config};
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::events::v1::IngestSource;

fn corpus(name: &str) -> String {
    format!(
        "@{}/../services/ingest/tests/corpus/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Runs swaks; returns whether it succeeded and its transcript.
async fn swaks(server: SocketAddr, to: &str, extra: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new("swaks")
        .args([
            "--server",
            &server.to_string(),
            "--from",
            "relay@partner.example",
        ])
        .args([
            "--to",
            to,
            "--timeout",
            "30",
            "--helo",
            "relay.partner.example",
        ])
        .args(extra)
        .kill_on_drop(true)
        .output()
        .await
        .expect("swaks is installed by scripts/provision.sh");
    let transcript = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), transcript)
}

#[tokio::test]
async fn smtp_and_lmtp_mail_reaches_the_broker_once_per_account() {
    let mut binding = BindingNode::start().await.unwrap();
    let tenant = binding.tenant().await.unwrap();
    let kind = pb::AccountKind::EnterpriseForwarded;
    let li = binding
        .account(&tenant, "li@corp.example.cn", kind, None)
        .await
        .unwrap();
    let wang = binding
        .account(&tenant, "wang@corp.example.tw", kind, None)
        .await
        .unwrap();
    let mut events = TenantEvents::new(&tenant.tenant_id).await.unwrap();
    let blobs = tempfile::tempdir().unwrap();
    let ingest = IngestNode::on_test_broker(ingest_config(binding.addr, blobs.path()))
        .await
        .unwrap();

    // SMTP, one unknown recipient among known ones: 550 for it alone.
    let (ok, transcript) = swaks(
        ingest.smtp,
        "li@corp.example.cn,nobody@corp.example.cn",
        &["--data", &corpus("gb2312-subject.eml")],
    )
    .await;
    assert!(transcript.contains("550 5.1.1"), "{transcript}");
    assert!(ok, "{transcript}");
    assert!(
        transcript.contains("250 2.0.0 Ok: published"),
        "{transcript}"
    );
    let event = events.next().await.unwrap();
    assert_eq!(event.account_id, li.account_id);
    assert_eq!(event.source(), IngestSource::Smtp);
    let summary = event.summary.unwrap();
    assert_eq!(summary.subject, "季度报告：请审阅");
    assert_eq!(summary.from.unwrap().name, "张伟");
    assert_eq!(event.message_id, "gb2312-1@example.cn");

    // LMTP, a Big5 subject, two accounts: a reply and an event for each.
    let (ok, transcript) = swaks(
        ingest.lmtp,
        "wang@corp.example.tw,li@corp.example.cn",
        &["--protocol", "LMTP", "--data", &corpus("big5-subject.eml")],
    )
    .await;
    assert!(ok, "{transcript}");
    assert_eq!(
        transcript.matches("250 2.0.0 Ok: published").count(),
        2,
        "{transcript}"
    );
    let mut got = vec![events.next().await.unwrap(), events.next().await.unwrap()];
    got.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    let mut want = vec![li.account_id.clone(), wang.account_id.clone()];
    want.sort();
    assert_eq!(
        got.iter().map(|e| e.account_id.clone()).collect::<Vec<_>>(),
        want
    );
    for event in &got {
        assert_eq!(event.source(), IngestSource::Lmtp);
        assert_eq!(event.summary.as_ref().unwrap().subject, "會議通知");
    }
    assert!(
        events
            .next_within(Duration::from_secs(2))
            .await
            .unwrap()
            .is_none(),
        "one event per account"
    );

    // Nobody known: the message is never taken.
    let (ok, transcript) = swaks(ingest.smtp, "ghost@corp.example.cn", &[]).await;
    assert!(!ok && transcript.contains("550 5.1.1"), "{transcript}");

    ingest.stop().await.unwrap();
    binding.stop().await.unwrap();
}

#[tokio::test]
async fn starttls_and_size_limit_with_a_standard_client() {
    let mut binding = BindingNode::start().await.unwrap();
    let tenant = binding.tenant().await.unwrap();
    binding
        .forwarded(&tenant, "secure@corp.example")
        .await
        .unwrap();
    let mut events = TenantEvents::new(&tenant.tenant_id).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["mx.test".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
    let mut config = ingest_config(binding.addr, dir.path());
    config.smtp.tls.enabled = true;
    config.smtp.tls.cert_path = dir.path().join("cert.pem");
    config.smtp.tls.key_path = dir.path().join("key.pem");
    config.smtp.require_tls = true;
    config.smtp.max_message_bytes = 64 * 1024;
    let ingest = IngestNode::on_test_broker(config).await.unwrap();

    let (ok, transcript) = swaks(ingest.smtp, "secure@corp.example", &[]).await;
    assert!(!ok && transcript.contains("530 5.7.0"), "{transcript}");

    let (ok, transcript) = swaks(
        ingest.smtp,
        "secure@corp.example",
        &["--tls", "--header", "Subject: over STARTTLS"],
    )
    .await;
    assert!(ok, "{transcript}");
    assert!(transcript.contains("TLS started"), "{transcript}");
    let event = events.next().await.unwrap();
    assert_eq!(event.summary.unwrap().subject, "over STARTTLS");

    let big = "x".repeat(70 * 1024);
    let (ok, transcript) = swaks(
        ingest.smtp,
        "secure@corp.example",
        &["--tls", "--body", &big],
    )
    .await;
    assert!(!ok && transcript.contains("552 5.3.4"), "{transcript}");
    assert!(
        events
            .next_within(Duration::from_secs(2))
            .await
            .unwrap()
            .is_none()
    );

    ingest.stop().await.unwrap();
    binding.stop().await.unwrap();
}

#[tokio::test]
async fn a_broker_outage_answers_4xx_and_the_retry_is_delivered() {
    let mut binding = BindingNode::start().await.unwrap();
    let tenant = binding.tenant().await.unwrap();
    let account = binding
        .forwarded(&tenant, "ops@corp.example")
        .await
        .unwrap();
    // This test's own broker, which it kills.
    let mut broker = PrivateBroker::start().await.unwrap();
    let mut kafka = kafka_config();
    kafka.brokers = broker.brokers();
    kafka.message_timeout_ms = 3_000;
    // tansu 0.6 (sqlite storage) panics in its idempotent-producer check
    // for a producer id issued before its restart ("more or less than one
    // row", tansu-storage lite.rs:503), failing every later produce of that
    // producer. Apache Kafka resumes the producer; here the producer runs
    // without idempotence (downstream dedupes by the idempotency key).
    kafka
        .extra
        .insert("enable.idempotence".into(), "false".into());
    let bus: Arc<dyn EventBus> = Arc::new(KafkaBus::new(&kafka, "ingest-outage").unwrap());
    let blobs = tempfile::tempdir().unwrap();
    let mut config = ingest_config(binding.addr, blobs.path());
    config.bus.kafka = kafka;
    let ingest = IngestNode::start(config, bus.clone()).await.unwrap();
    let mail = |n: u32| {
        let subject = format!("Subject: mail {n}");
        let id = format!("Message-ID: <outage-{n}@corp.example>");
        ["--header".to_owned(), subject, "--header".to_owned(), id]
    };
    let send = async |n: u32| {
        let args = mail(n);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        swaks(ingest.smtp, "ops@corp.example", &args).await
    };
    let (ok, transcript) = send(1).await;
    assert!(ok, "{transcript}");

    broker.kill().await.unwrap();
    let (ok, transcript) = send(2).await;
    assert!(!ok, "{transcript}");
    assert!(transcript.contains("451 4.3.0"), "{transcript}");

    // The broker is back; the sending server retries the same message.
    broker.restart().await.unwrap();
    let mut retried = None;
    for _ in 0..20 {
        let (ok, transcript) = send(2).await;
        if ok {
            retried = Some(transcript);
            break;
        }
        assert!(transcript.contains("451 4.3.0"), "{transcript}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        retried.is_some(),
        "the retry was never accepted; broker log:\n{}",
        broker.log()
    );

    // Exactly the two accepted mails are on the broker (the 451 published nothing).
    let mut events = TenantEvents::on(bus, &tenant.tenant_id).await.unwrap();
    let mut subjects = Vec::new();
    while let Some(event) = events.next_within(Duration::from_secs(15)).await.unwrap() {
        assert_eq!(event.account_id, account.account_id);
        subjects.push(event.summary.unwrap().subject);
        if subjects.len() == 2 {
            break;
        }
    }
    assert_eq!(subjects, ["mail 1", "mail 2"]);
    assert!(
        events
            .next_within(Duration::from_secs(2))
            .await
            .unwrap()
            .is_none()
    );

    ingest.stop().await.unwrap();
    binding.stop().await.unwrap();
}

/// A CA, a server certificate and a relay's client certificate signed by
/// the CA, written under `dir`; returns the client certificate's SHA-256.
fn certificates(dir: &std::path::Path) -> String {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(vec!["test ca".to_owned()]).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(vec!["mx.test".to_owned()])
        .unwrap()
        .self_signed(&server_key)
        .unwrap();
    let client_key = rcgen::KeyPair::generate().unwrap();
    let client = rcgen::CertificateParams::new(vec!["relay.partner.example".to_owned()])
        .unwrap()
        .signed_by(&client_key, &issuer)
        .unwrap();
    for (name, pem) in [
        ("ca.pem", ca_cert.pem()),
        ("cert.pem", server.pem()),
        ("key.pem", server_key.serialize_pem()),
        ("client.pem", client.pem()),
        ("client-key.pem", client_key.serialize_pem()),
    ] {
        std::fs::write(dir.join(name), pem).unwrap();
    }
    pushmail_common::tls::fingerprint(client.der())
}

/// `smtp.require_auth` as in production: a recipient is taken only from a
/// relay its tenant authorised by login (over STARTTLS), client
/// certificate or source network; every other answer is the same whether
/// the address exists or not.
#[tokio::test]
async fn relays_prove_their_tenant_by_login_certificate_or_network() {
    let mut binding = BindingNode::start().await.unwrap();
    let acme = binding.tenant().await.unwrap();
    let other = binding.tenant().await.unwrap();
    let kind = pb::AccountKind::EnterpriseForwarded;
    let ours = format!(
        "{}@corp.example",
        pushmail_integration_tests::unique("acme")
    );
    let theirs = format!(
        "{}@corp.example",
        pushmail_integration_tests::unique("other")
    );
    let nobody = format!(
        "{}@corp.example",
        pushmail_integration_tests::unique("nobody")
    );
    binding.account(&acme, &ours, kind, None).await.unwrap();
    binding.account(&other, &theirs, kind, None).await.unwrap();
    let relay = binding.relay_credential(&acme).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fingerprint = certificates(dir.path());
    binding
        .relay_policy(&acme, &["127.0.0.3/32"], &[&fingerprint])
        .await
        .unwrap();
    let mut events = TenantEvents::new(&acme.tenant_id).await.unwrap();
    let mut config = ingest_config(binding.addr, dir.path());
    config.smtp.require_auth = true;
    config.smtp.tls.enabled = true;
    config.smtp.tls.cert_path = dir.path().join("cert.pem");
    config.smtp.tls.key_path = dir.path().join("key.pem");
    config.smtp.tls.client_ca_path = dir.path().join("ca.pem");
    let ingest = IngestNode::on_test_broker(config).await.unwrap();
    let login = [
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        &relay.username,
        "--auth-password",
        &relay.password,
    ];

    // Nothing proven: one answer for ours, theirs and nobody's.
    for to in [&ours, &theirs, &nobody] {
        let (ok, transcript) = swaks(ingest.smtp, to, &[]).await;
        assert!(
            !ok && transcript.contains("530 5.7.0"),
            "{to}: {transcript}"
        );
    }
    // Credentials never cross a plain link: AUTH is offered after STARTTLS only.
    let (ok, transcript) = swaks(
        ingest.smtp,
        &ours,
        &[
            "--auth",
            "PLAIN",
            "--auth-user",
            &relay.username,
            "--auth-password",
            &relay.password,
        ],
    )
    .await;
    assert!(!ok && !transcript.contains("235 2.7.0"), "{transcript}");
    // A wrong password.
    let (ok, transcript) = swaks(
        ingest.smtp,
        &ours,
        &[
            "--tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            &relay.username,
            "--auth-password",
            "guess",
        ],
    )
    .await;
    assert!(!ok && transcript.contains("535 5.7.8"), "{transcript}");

    // Logged in as acme: acme's address is taken, another tenant's is as
    // unknown as no address at all.
    let (ok, transcript) = swaks(
        ingest.smtp,
        &ours,
        &[&login[..], &["--header", "Subject: by login"]].concat(),
    )
    .await;
    assert!(ok, "{transcript}");
    assert!(transcript.contains("235 2.7.0"), "{transcript}");
    let by_login = events.next().await.unwrap();
    assert_eq!(by_login.summary.unwrap().subject, "by login");
    for to in [&theirs, &nobody] {
        let (ok, transcript) = swaks(ingest.smtp, to, &login).await;
        assert!(
            !ok && transcript.contains("550 5.1.1 Recipient not accepted here"),
            "{to}: {transcript}"
        );
    }

    // The allowed network, without a login.
    let (ok, transcript) = swaks(
        ingest.smtp,
        &ours,
        &[
            "--local-interface",
            "127.0.0.3",
            "--header",
            "Subject: by network",
        ],
    )
    .await;
    assert!(ok, "{transcript}");
    assert_eq!(
        events.next().await.unwrap().summary.unwrap().subject,
        "by network"
    );

    // The client certificate the policy names, without a login.
    let client = dir.path().join("client.pem");
    let client_key = dir.path().join("client-key.pem");
    let (ok, transcript) = swaks(
        ingest.smtp,
        &ours,
        &[
            "--tls",
            "--tls-cert",
            client.to_str().unwrap(),
            "--tls-key",
            client_key.to_str().unwrap(),
            "--header",
            "Subject: by certificate",
        ],
    )
    .await;
    assert!(ok, "{transcript}");
    assert_eq!(
        events.next().await.unwrap().summary.unwrap().subject,
        "by certificate"
    );
    // Every event came in the order sent with the subject expected: no
    // refused mail was published between them.

    ingest.stop().await.unwrap();
    binding.stop().await.unwrap();
}
