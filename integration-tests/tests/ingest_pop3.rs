//! The ingest service end to end for POP3: an account created through
//! binding's API, mail delivered to Dovecot, exactly one `MailArrived` per
//! mail on the real broker, across a restart of ingest.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::time::Duration;

use pushmail_integration_tests::dovecot::Dovecot;
use pushmail_integration_tests::nodes::{BindingNode, IngestNode, TenantEvents, ingest_config};
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::events::v1::MailArrived;

#[tokio::test]
async fn pop3_mail_is_announced_once_across_an_ingest_restart() {
    let dovecot = Dovecot::start(&["pop-e2e@example.net"])
        .await
        .expect("dovecot");
    let user = dovecot.users[0].clone();
    let mut binding = BindingNode::start().await.unwrap();
    let tenant = binding.tenant().await.unwrap();
    let account = binding
        .mailbox_account(
            &tenant,
            &user,
            dovecot.pop3.port(),
            pb::AccountKind::ExternalPop3,
        )
        .await
        .unwrap();

    let mut events = TenantEvents::new(&tenant.tenant_id).await.unwrap();

    let blobs = tempfile::tempdir().unwrap();
    // One config for both runs: the restarted ingest reads the same marks.
    let config = ingest_config(binding.addr, blobs.path());
    let start = async || IngestNode::on_test_broker(config.clone()).await.unwrap();
    let ingest = start().await;
    let mail = |n: u32| {
        format!(
            "From: x@example.net\r\nSubject: e2e {n}\r\nMessage-ID: <e2e-{n}-{}@x>\r\n\r\nhello {n}\r\n",
            tenant.tenant_id
        )
    };
    // The first poll takes the (empty) mailbox as its baseline; mail
    // delivered after it is new.
    let marks = pushmail_ingest::marks::RedisMarks::new(
        pushmail_common::redis::connect(&config.marks.redis)
            .await
            .unwrap(),
        &config.marks.redis.key_prefix,
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while pushmail_ingest::marks::Pop3Marks::seen(&marks, &account.account_id)
        .await
        .unwrap()
        .is_none()
    {
        assert!(tokio::time::Instant::now() < deadline, "never polled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    dovecot
        .deliver(&user.address, mail(1).as_bytes())
        .await
        .unwrap();
    let first: MailArrived = events.next().await.unwrap();
    assert_eq!(first.account_id, account.account_id);
    assert_eq!(first.summary.as_ref().unwrap().subject, "e2e 1");

    // Restart ingest between deliveries.
    ingest.stop().await.unwrap();
    dovecot
        .deliver(&user.address, mail(2).as_bytes())
        .await
        .unwrap();
    let ingest = start().await;
    let second: MailArrived = events.next().await.unwrap();
    assert_eq!(
        second.summary.as_ref().unwrap().subject,
        "e2e 2",
        "the first mail is not announced again"
    );
    // A few more polls: nothing else arrives.
    let quiet = events.next_within(Duration::from_secs(3)).await.unwrap();
    assert!(quiet.is_none(), "exactly one event per mail: {quiet:?}");

    ingest.stop().await.unwrap();
    binding.stop().await.unwrap();
}

#[tokio::test]
async fn pop3_marks_lost_announce_nothing_and_ask_devices_to_sync() {
    let dovecot = Dovecot::start(&["pop-lost@example.net"])
        .await
        .expect("dovecot");
    let user = dovecot.users[0].clone();
    for n in 0..50 {
        let mail = format!(
            "From: x@example.net\r\nSubject: old {n}\r\nMessage-ID: <old-{n}-{}@x>\r\n\r\nold\r\n",
            uuid::Uuid::now_v7()
        );
        dovecot
            .deliver(&user.address, mail.as_bytes())
            .await
            .unwrap();
    }
    let mut binding = BindingNode::start().await.unwrap();
    let tenant = binding.tenant().await.unwrap();
    let account = binding
        .mailbox_account(
            &tenant,
            &user,
            dovecot.pop3.port(),
            pb::AccountKind::ExternalPop3,
        )
        .await
        .unwrap();
    let mut events = TenantEvents::new(&tenant.tenant_id).await.unwrap();
    let blobs = tempfile::tempdir().unwrap();
    let config = ingest_config(binding.addr, blobs.path());
    let ingest = IngestNode::on_test_broker(config.clone()).await.unwrap();
    let mut redis = pushmail_common::redis::connect(&config.marks.redis)
        .await
        .unwrap();
    let marks =
        pushmail_ingest::marks::RedisMarks::new(redis.clone(), &config.marks.redis.key_prefix);
    let baselined = async || {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while pushmail_ingest::marks::Pop3Marks::seen(&marks, &account.account_id)
            .await
            .unwrap()
            .is_none()
        {
            assert!(tokio::time::Instant::now() < deadline, "never polled");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    baselined().await;
    // The first poll announces nothing: the 50 are filed for the phone
    // to read (backfill), none as new mail.
    let filed = drain(&mut events).await;
    assert_eq!(filed.len(), 50);
    assert!(
        filed.iter().all(|e| e.backfill && !e.mailbox_sync),
        "{filed:?}"
    );

    // Redis loses the marks (a restart without persistence).
    let key = format!(
        "{}ingest:pop3:{}",
        config.marks.redis.key_prefix, account.account_id
    );
    let deleted: usize = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    baselined().await;
    // The same 50 filed again under the same keys (the store files them
    // once), then the devices are asked to sync.
    let mut again = drain(&mut events).await;
    let sync = again.pop().unwrap();
    assert_eq!(
        again.iter().map(|e| &e.idempotency_key).collect::<Vec<_>>(),
        filed.iter().map(|e| &e.idempotency_key).collect::<Vec<_>>()
    );
    assert!(again.iter().all(|e| e.backfill));
    assert!(sync.mailbox_sync, "{sync:?}");
    assert_eq!(sync.account_id, account.account_id);
    assert_eq!(sync.mailbox, "INBOX");
    assert!(
        sync.summary.is_none() && sync.blob_ref.is_empty(),
        "{sync:?}"
    );
    assert!(sync.idempotency_key.starts_with("sync:"), "{sync:?}");

    // New mail after the new baseline: one announcement.
    dovecot
        .deliver(
            &user.address,
            b"From: x@example.net\r\nSubject: after the loss\r\nMessage-ID: <after-loss@x>\r\n\r\nnew\r\n",
        )
        .await
        .unwrap();
    let new = events.next().await.unwrap();
    assert!(!new.mailbox_sync && !new.backfill);
    assert_eq!(new.summary.unwrap().subject, "after the loss");
    let extra = events.next_within(Duration::from_secs(3)).await.unwrap();
    assert!(extra.is_none(), "exactly one event: {extra:?}");

    ingest.stop().await.unwrap();
    binding.stop().await.unwrap();
}

/// Every event until none comes for 3 s.
async fn drain(events: &mut TenantEvents) -> Vec<pushmail_proto::events::v1::MailArrived> {
    let mut all = Vec::new();
    while let Some(event) = events.next_within(Duration::from_secs(3)).await.unwrap() {
        all.push(event);
    }
    all
}
