//! The webhook end to end: a Dovecot push_notification (OX driver) payload
//! sent with a tenant's credentials becomes one `MailArrived` on the real
//! broker; wrong credentials, another tenant's mailbox, bad JSON and huge
//! bodies are refused with a clear error and publish nothing. The payload
//! comes from Dovecot itself (its push_notification plugin, OX driver,
//! configured against ingest as a provider would), and the refusals from
//! hand-made requests that no Dovecot would send.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::time::Duration;

use base64::Engine as _;
use pushmail_integration_tests::dovecot::Dovecot;
use pushmail_integration_tests::http_request;
use pushmail_integration_tests::nodes::{BindingNode, IngestNode, TenantEvents, ingest_config};
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::events::v1::IngestSource;

fn basic(tenant: &str, key: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{tenant}:{key}"))
    )
}

#[tokio::test]
async fn a_dovecot_push_notification_becomes_one_event_for_its_tenant_only() {
    let mut binding = BindingNode::start().await.unwrap();
    let tenant = binding.tenant().await.unwrap();
    let other = binding.tenant().await.unwrap();
    let account = binding
        .account(&tenant, "push@corp.example", pb::AccountKind::Webhook, None)
        .await
        .unwrap();
    binding
        .account(
            &other,
            "theirs@other.example",
            pb::AccountKind::Webhook,
            None,
        )
        .await
        .unwrap();
    binding
        .forwarded(&tenant, "forwarded@corp.example")
        .await
        .unwrap();
    let mut events = TenantEvents::new(&tenant.tenant_id).await.unwrap();
    let blobs = tempfile::tempdir().unwrap();
    let ingest = IngestNode::on_test_broker(ingest_config(binding.addr, blobs.path()))
        .await
        .unwrap();
    let path = "/v1/webhook/dovecot";
    let payload = |user: &str| {
        format!(
            r#"{{"user":"{user}","event":"messageNew","folder":"INBOX","imap-uidvalidity":1700000000,
                "imap-uid":42,"from":"张伟 <zhang@example.cn>","subject":"季度报告","snippet":"请审阅","unseen":1}}"#
        )
    };
    let auth = basic(&tenant.tenant_id, &tenant.api_key);
    let send = async |auth: &str, body: &str| {
        http_request(
            ingest.webhook,
            "PUT",
            path,
            &[
                ("Authorization", auth),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
        .await
        .unwrap()
    };

    let (status, body) = send(&auth, &payload("push@corp.example")).await;
    assert_eq!(status, 204, "{body}");
    let event = events.next().await.unwrap();
    assert_eq!(event.account_id, account.account_id);
    assert_eq!(event.source(), IngestSource::Webhook);
    assert_eq!((event.uid_validity, event.uid), (1_700_000_000, 42));
    let summary = event.summary.unwrap();
    assert_eq!(summary.subject, "季度报告");
    assert_eq!(summary.from.unwrap().address, "zhang@example.cn");
    assert_eq!(summary.snippet, "请审阅");

    // The server resends the same notification: the same idempotency key.
    let (status, _) = send(&auth, &payload("push@corp.example")).await;
    assert_eq!(status, 204);
    let again = events.next().await.unwrap();
    assert_eq!(again.idempotency_key, event.idempotency_key);

    // Refusals, each with a machine-readable body, none publishing.
    let (status, body) = send("", &payload("push@corp.example")).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = send(
        &basic(&tenant.tenant_id, "pmk_wrong"),
        &payload("push@corp.example"),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("unauthenticated"), "{body}");
    let (status, _) = send(
        &basic(&other.tenant_id, &tenant.api_key),
        &payload("push@corp.example"),
    )
    .await;
    assert_eq!(status, 401, "a key works for its own tenant only");
    let (status, body) = send(&auth, &payload("theirs@other.example")).await;
    assert_eq!(status, 404, "another tenant's mailbox: {body}");
    let (status, body) = send(&auth, &payload("forwarded@corp.example")).await;
    assert_eq!(status, 409, "its mail arrives over SMTP: {body}");
    let (status, body) = send(&auth, "{not json").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid_json"), "{body}");
    let (status, _) = send(&auth, r#"{"user":"push@corp.example","event":"flagsSet"}"#).await;
    assert_eq!(status, 204, "other events are acknowledged and ignored");
    let huge = format!(
        r#"{{"user":"push@corp.example","event":"messageNew","snippet":"{}"}}"#,
        "x".repeat(100 * 1024)
    );
    let (status, _) = send(&auth, &huge).await;
    assert_eq!(status, 413);
    assert!(
        events
            .next_within(Duration::from_secs(2))
            .await
            .unwrap()
            .is_none(),
        "nothing refused was published"
    );

    ingest.stop().await.unwrap();
    binding.stop().await.unwrap();
}

/// Dovecot's own OX driver, configured against ingest with the tenant's
/// credentials in its URL: a mail delivered over LMTP becomes one
/// `MailArrived` with Dovecot's IMAP coordinates and the summary decoded
/// (Dovecot sends the From header as it is, encoded words and all).
#[tokio::test]
async fn dovecots_own_push_driver_reaches_ingest() {
    let mut binding = BindingNode::start().await.unwrap();
    let tenant = binding.tenant().await.unwrap();
    let account = binding
        .account(&tenant, "ox@corp.example", pb::AccountKind::Webhook, None)
        .await
        .unwrap();
    let mut events = TenantEvents::new(&tenant.tenant_id).await.unwrap();
    let blobs = tempfile::tempdir().unwrap();
    let ingest = IngestNode::on_test_broker(ingest_config(binding.addr, blobs.path()))
        .await
        .unwrap();
    let url = format!(
        "http://{}:{}@{}/v1/webhook/dovecot",
        tenant.tenant_id, tenant.api_key, ingest.webhook
    );
    let dovecot = Dovecot::start_with_push(&["ox@corp.example"], &url)
        .await
        .unwrap();
    dovecot.enable_push("ox@corp.example").await.unwrap();
    dovecot
        .deliver(
            "ox@corp.example",
            "From: =?UTF-8?B?5byg5Lyf?= <zhang@example.cn>\r\n\
             Subject: =?UTF-8?B?5a2j5bqm5oql5ZGK?=\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n\
             请审阅附件。\r\n"
                .as_bytes(),
        )
        .await
        .unwrap();

    let event = events
        .next_within(Duration::from_secs(20))
        .await
        .unwrap()
        .expect("Dovecot's push reached ingest and was published");
    assert_eq!(event.account_id, account.account_id);
    assert_eq!(event.source(), IngestSource::Webhook);
    assert_eq!(event.uid, 1, "Dovecot's IMAP UID of the first message");
    assert_ne!(event.uid_validity, 0);
    let summary = event.summary.unwrap();
    assert_eq!(summary.subject, "季度报告");
    let from = summary.from.unwrap();
    assert_eq!(
        (from.name.as_str(), from.address.as_str()),
        ("张伟", "zhang@example.cn")
    );
    assert!(summary.snippet.contains("请审阅"), "{}", summary.snippet);

    ingest.stop().await.unwrap();
    binding.stop().await.unwrap();
}
