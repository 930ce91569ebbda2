//! The per-device outbox, the same scenarios against Redis and memory:
//! sequences, idempotent appends, replay after a cursor, trim on ack,
//! coalescing by collapse key, the cap with its resync marker, isolation.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::sync::Arc;

use pushmail_common::outbox::{AppendState, MemoryOutbox, Outbox, OutboxSettings, RedisOutbox};
use pushmail_proto::session::v1::Notification;

async fn in_redis(settings: OutboxSettings) -> Arc<dyn Outbox> {
    let config = pushmail_integration_tests::redis_config();
    let connection = pushmail_common::redis::connect(&config).await.unwrap();
    Arc::new(RedisOutbox::new(connection, &config.key_prefix, settings))
}

fn memory(settings: OutboxSettings) -> Arc<dyn Outbox> {
    Arc::new(MemoryOutbox::new(settings))
}

fn settings(max: usize, coalesce_ms: u64) -> OutboxSettings {
    OutboxSettings {
        max_per_device: max,
        ttl_seconds: 60,
        coalesce_ms,
        ..Default::default()
    }
}

fn n(device: &str, key: &str, collapse: &str, subject: &str) -> Notification {
    Notification {
        tenant_id: "t1".to_owned(),
        device_id: device.to_owned(),
        idempotency_key: key.to_owned(),
        collapse_key: collapse.to_owned(),
        subject: subject.to_owned(),
        sequence: 99, // ignored: the outbox assigns it
        ..Default::default()
    }
}

fn seqs(replay: &pushmail_common::outbox::Replay) -> Vec<u64> {
    replay.notifications.iter().map(|n| n.sequence).collect()
}

async fn sequences_replay_and_ack(outbox: Arc<dyn Outbox>) {
    for i in 1..=4 {
        let appended = outbox
            .append(&n("d1", &format!("k{i}"), &format!("c{i}"), "s"))
            .await
            .unwrap();
        assert_eq!(
            (appended.seq, appended.state, appended.count),
            (i, AppendState::New, 1)
        );
    }
    // Another device and another tenant count on their own.
    assert_eq!(outbox.append(&n("d2", "k1", "", "s")).await.unwrap().seq, 1);
    let mut other = n("d1", "k1", "", "s");
    other.tenant_id = "t2".to_owned();
    assert_eq!(outbox.append(&other).await.unwrap().seq, 1);

    let replay = outbox.after("t1", "d1", 1, 10).await.unwrap();
    assert_eq!(seqs(&replay), [2, 3, 4]);
    assert!(!replay.resync);
    assert_eq!(replay.notifications[0].subject, "s");
    assert_eq!(seqs(&outbox.after("t1", "d1", 0, 2).await.unwrap()), [1, 2]);

    // The same key again: the same sequence, nothing new for the device.
    let again = outbox.append(&n("d1", "k2", "c2", "s")).await.unwrap();
    assert_eq!((again.seq, again.state), (2, AppendState::Pending));
    outbox.acked("t1", "d1", 3).await.unwrap();
    assert_eq!(seqs(&outbox.after("t1", "d1", 0, 10).await.unwrap()), [4]);
    let acked = outbox.append(&n("d1", "k2", "c2", "s")).await.unwrap();
    assert_eq!((acked.seq, acked.state), (2, AppendState::Acked));
    // An ack past the end acks only what exists; the next append goes on.
    outbox.acked("t1", "d1", 1_000).await.unwrap();
    assert!(
        outbox
            .after("t1", "d1", 0, 10)
            .await
            .unwrap()
            .notifications
            .is_empty()
    );
    assert_eq!(outbox.append(&n("d1", "k5", "", "s")).await.unwrap().seq, 5);
    assert!(
        outbox
            .after("nobody", "d1", 0, 10)
            .await
            .unwrap()
            .notifications
            .is_empty()
    );
}

async fn coalesces_unacked_notifications(outbox: Arc<dyn Outbox>) {
    outbox
        .append(&n("d1", "a1", "acct/INBOX", "first"))
        .await
        .unwrap();
    outbox
        .append(&n("d1", "b1", "other/INBOX", "other"))
        .await
        .unwrap();
    let second = outbox
        .append(&n("d1", "a2", "acct/INBOX", "second"))
        .await
        .unwrap();
    assert_eq!((second.seq, second.count), (3, 2));
    let third = outbox
        .append(&n("d1", "a3", "acct/INBOX", "third"))
        .await
        .unwrap();
    assert_eq!((third.seq, third.count), (4, 3));
    let replay = outbox.after("t1", "d1", 0, 10).await.unwrap();
    assert_eq!(seqs(&replay), [2, 4], "one notification per collapse key");
    assert_eq!(replay.notifications[1].subject, "third");
    assert_eq!(replay.notifications[1].digest_count, 3);
    assert_eq!(replay.notifications[0].digest_count, 0);
    // Redelivery of a coalesced mail stays coalesced.
    let redelivered = outbox
        .append(&n("d1", "a2", "acct/INBOX", "second"))
        .await
        .unwrap();
    assert_eq!(redelivered.state, AppendState::Pending);
    // Once acked, the next mail is a notification of its own.
    outbox.acked("t1", "d1", 4).await.unwrap();
    let fourth = outbox
        .append(&n("d1", "a4", "acct/INBOX", "fourth"))
        .await
        .unwrap();
    assert_eq!((fourth.seq, fourth.count), (5, 1));
}

async fn cap_drops_oldest_and_asks_for_resync(outbox: Arc<dyn Outbox>) {
    for i in 1..=5 {
        outbox
            .append(&n("d1", &format!("k{i}"), "", "s"))
            .await
            .unwrap();
    }
    let replay = outbox.after("t1", "d1", 0, 10).await.unwrap();
    assert_eq!(seqs(&replay), [3, 4, 5]);
    assert!(replay.resync, "1 and 2 were dropped unacked");
    let caught_up = outbox.after("t1", "d1", 2, 10).await.unwrap();
    assert!(
        !caught_up.resync,
        "a device past the dropped ones replays normally"
    );
}

#[tokio::test]
async fn redis_sequences_replay_and_ack() {
    sequences_replay_and_ack(in_redis(settings(100, 0)).await).await;
}

#[tokio::test]
async fn memory_sequences_replay_and_ack() {
    sequences_replay_and_ack(memory(settings(100, 0))).await;
}

#[tokio::test]
async fn redis_coalesces_unacked_notifications() {
    coalesces_unacked_notifications(in_redis(settings(100, 60_000)).await).await;
}

#[tokio::test]
async fn memory_coalesces_unacked_notifications() {
    coalesces_unacked_notifications(memory(settings(100, 60_000))).await;
}

#[tokio::test]
async fn redis_cap_drops_oldest_and_asks_for_resync() {
    cap_drops_oldest_and_asks_for_resync(in_redis(settings(3, 0)).await).await;
}

#[tokio::test]
async fn memory_cap_drops_oldest_and_asks_for_resync() {
    cap_drops_oldest_and_asks_for_resync(memory(settings(3, 0))).await;
}

#[tokio::test]
async fn redis_outbox_expires_with_its_ttl() {
    let config = pushmail_integration_tests::redis_config();
    let connection = pushmail_common::redis::connect(&config).await.unwrap();
    let outbox = RedisOutbox::new(connection.clone(), &config.key_prefix, settings(10, 0));
    outbox.append(&n("d1", "k1", "c", "s")).await.unwrap();
    let mut redis = connection;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", config.key_prefix))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(keys.len(), 4, "{keys:?}");
    for key in keys {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .unwrap();
        assert!(ttl > 0 && ttl <= 60_000, "{key}: {ttl}");
    }
}

#[tokio::test]
async fn an_unreadable_entry_is_skipped_not_fatal() {
    let config = pushmail_integration_tests::redis_config();
    let connection = pushmail_common::redis::connect(&config).await.unwrap();
    let outbox = RedisOutbox::new(connection.clone(), &config.key_prefix, settings(10, 0));
    outbox.append(&n("d1", "k1", "", "first")).await.unwrap();
    outbox.append(&n("d1", "k2", "", "second")).await.unwrap();
    // Something else wrote garbage into the device's stream.
    let stream = format!("{}outbox:{{t1/d1}}:s", config.key_prefix);
    let mut redis = connection;
    let _: String = redis::cmd("XADD")
        .arg(&stream)
        .arg("3-0")
        .arg("n")
        .arg(b"\xff\xff\xff".as_slice())
        .query_async(&mut redis)
        .await
        .unwrap();
    let replay = outbox.after("t1", "d1", 0, 10).await.unwrap();
    assert_eq!(seqs(&replay), [1, 2], "the readable ones still come");
}

#[test]
fn settings_refuse_an_empty_cap_or_no_ttl() {
    assert!(OutboxSettings::default().validate("outbox.").is_ok());
    let err = OutboxSettings {
        max_per_device: 0,
        ..Default::default()
    }
    .validate("outbox.")
    .unwrap_err()
    .to_string();
    assert!(err.contains("outbox.max_per_device"), "{err}");
    assert!(
        OutboxSettings {
            ttl_seconds: 0,
            ..Default::default()
        }
        .validate("outbox.")
        .is_err()
    );
}
