//! The webhook end to end: a Dovecot push_notification (OX driver) payload
//! sent with a tenant's credentials becomes one `MailArrived` on the real
//! broker; wrong credentials, another tenant's mailbox, bad JSON and huge
//! bodies are refused with a clear error and publish nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::time::Duration;

use base64::Engine as _;
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
        .account(
            &tenant,
            "forwarded@corp.example",
            pb::AccountKind::EnterpriseForwarded,
            None,
        )
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
