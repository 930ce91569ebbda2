//! The per-device outbox, the same scenarios against Redis, SQLite and
//! memory:
//! sequences, idempotent appends, replay after a cursor, trim on ack,
//! coalescing by collapse key, the cap with its resync marker, isolation,
//! and generations: one per outbox, kept while it lives, new once it is
//! lost (keys deleted, TTL run out, a restarted process), so a cursor from
//! before is answered with a resync and everything held, and its acks trim
//! nothing. The SQLite outbox (standalone) also keeps everything across a
//! reopen of its file.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::sync::Arc;

use pushmail_common::redis::RedisConfig;
use pushmail_outbox::{
    AppendState, Cursor, MemoryOutbox, Outbox, OutboxSettings, RedisOutbox, SqliteOutbox,
};
use pushmail_proto::session::v1::Notification;

async fn in_redis(settings: OutboxSettings) -> Arc<dyn Outbox> {
    in_redis_at(&pushmail_integration_tests::redis_config(), settings).await
}

async fn in_redis_at(config: &RedisConfig, settings: OutboxSettings) -> Arc<dyn Outbox> {
    let connection = pushmail_common::redis::connect(config).await.unwrap();
    Arc::new(RedisOutbox::new(connection, &config.key_prefix, settings))
}

/// A cursor.
fn at(generation: u64, seq: u64) -> Cursor {
    Cursor { generation, seq }
}

/// What the device's outbox holds, whoever asks.
async fn held(outbox: &Arc<dyn Outbox>) -> Vec<u64> {
    seqs(&outbox.after("t1", "d1", at(0, 0), 100).await.unwrap())
}

fn memory(settings: OutboxSettings) -> Arc<dyn Outbox> {
    Arc::new(MemoryOutbox::new(settings))
}

/// A SQLite outbox in a fresh directory (kept as long as the guard).
async fn sqlite(settings: OutboxSettings) -> (Arc<dyn Outbox>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let outbox = SqliteOutbox::open(&dir.path().join("outbox.db"), settings)
        .await
        .unwrap();
    (Arc::new(outbox), dir)
}

fn settings(max: usize, coalesce_ms: u64) -> OutboxSettings {
    OutboxSettings {
        max_per_device: max,
        ttl_seconds: 60,
        coalesce_ms,
        ..Default::default()
    }
}

fn settings_with_ttl(ttl_seconds: u64) -> OutboxSettings {
    OutboxSettings {
        ttl_seconds,
        ..settings(100, 0)
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

fn seqs(replay: &pushmail_outbox::Replay) -> Vec<u64> {
    replay.notifications.iter().map(|n| n.sequence).collect()
}

async fn sequences_replay_and_ack(outbox: Arc<dyn Outbox>) {
    let mut generation = 0;
    for i in 1..=4 {
        let appended = outbox
            .append(&n("d1", &format!("k{i}"), &format!("c{i}"), "s"))
            .await
            .unwrap();
        assert_eq!(
            (appended.seq, appended.state, appended.count),
            (i, AppendState::New, 1)
        );
        generation = appended.generation;
    }
    let g = |seq| at(generation, seq);
    // Another device and another tenant count on their own.
    assert_eq!(outbox.append(&n("d2", "k1", "", "s")).await.unwrap().seq, 1);
    let mut other = n("d1", "k1", "", "s");
    other.tenant_id = "t2".to_owned();
    assert_eq!(outbox.append(&other).await.unwrap().seq, 1);

    let replay = outbox.after("t1", "d1", g(1), 10).await.unwrap();
    assert_eq!(seqs(&replay), [2, 3, 4]);
    assert_eq!((replay.generation, replay.from), (generation, 1));
    assert!(!replay.resync);
    assert_eq!(replay.notifications[0].subject, "s");
    assert_eq!(
        seqs(&outbox.after("t1", "d1", g(0), 2).await.unwrap()),
        [1, 2]
    );

    // The same key again: the same sequence, nothing new for the device.
    let again = outbox.append(&n("d1", "k2", "c2", "s")).await.unwrap();
    assert_eq!((again.seq, again.state), (2, AppendState::Pending));
    // What the ack trimmed comes back, for the session's receipts.
    let trimmed = outbox.acked("t1", "d1", g(3)).await.unwrap().unwrap();
    assert_eq!(trimmed.generation, generation);
    let trimmed: Vec<u64> = trimmed.notifications.iter().map(|n| n.sequence).collect();
    assert_eq!(trimmed, [1, 2, 3]);
    assert_eq!(held(&outbox).await, [4]);
    let acked = outbox.append(&n("d1", "k2", "c2", "s")).await.unwrap();
    assert_eq!((acked.seq, acked.state), (2, AppendState::Acked));
    // An ack past the end acks nothing: the device was never sent it.
    assert_eq!(
        outbox
            .acked("t1", "d1", g(1_000))
            .await
            .unwrap()
            .map(|a| a.generation),
        None
    );
    assert_eq!(held(&outbox).await, [4]);
    // A device naming no generation (from before them) acks in this one.
    assert_eq!(
        outbox
            .acked("t1", "d1", at(0, 4))
            .await
            .unwrap()
            .map(|a| a.generation),
        Some(generation)
    );
    assert!(held(&outbox).await.is_empty());
    assert_eq!(outbox.append(&n("d1", "k5", "", "s")).await.unwrap().seq, 5);
    let nobody = outbox.after("nobody", "d1", at(0, 0), 10).await.unwrap();
    assert!(nobody.notifications.is_empty());
    assert_ne!(nobody.generation, 0, "a read creates the outbox");
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
    let replay = outbox.after("t1", "d1", at(0, 0), 10).await.unwrap();
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
    let acked = outbox.acked("t1", "d1", at(third.generation, 4)).await;
    assert_eq!(acked.unwrap().map(|a| a.generation), Some(third.generation));
    let fourth = outbox
        .append(&n("d1", "a4", "acct/INBOX", "fourth"))
        .await
        .unwrap();
    assert_eq!((fourth.seq, fourth.count), (5, 1));
}

async fn cap_drops_oldest_and_asks_for_resync(outbox: Arc<dyn Outbox>) {
    let mut generation = 0;
    for i in 1..=5 {
        generation = outbox
            .append(&n("d1", &format!("k{i}"), "", "s"))
            .await
            .unwrap()
            .generation;
    }
    let replay = outbox.after("t1", "d1", at(0, 0), 10).await.unwrap();
    assert_eq!(seqs(&replay), [3, 4, 5]);
    assert!(replay.resync, "1 and 2 were dropped unacked");
    let behind = outbox.after("t1", "d1", at(generation, 1), 10).await;
    assert!(behind.unwrap().resync, "2 was dropped after its cursor");
    let caught_up = outbox.after("t1", "d1", at(generation, 2), 10).await;
    let caught_up = caught_up.unwrap();
    assert!(
        !caught_up.resync,
        "a device past the dropped ones replays normally"
    );
    assert_eq!((seqs(&caught_up), caught_up.from), (vec![3, 4, 5], 2));
}

/// A held Ping's read: what `after` with no cursor answers, on every
/// store (SQLite answers it from a reader beside its writer).
async fn a_hold_reads_what_waits(outbox: Arc<dyn Outbox>) {
    // Nothing yet: the outbox is made, and appends count in its generation.
    let first = outbox.waiting("t1", "d1", 10).await.unwrap();
    assert!(first.notifications.is_empty() && !first.resync);
    assert_ne!(first.generation, 0);
    for i in 1..=3 {
        let appended = outbox
            .append(&n("d1", &format!("k{i}"), "", &format!("s{i}")))
            .await
            .unwrap();
        assert_eq!(appended.generation, first.generation);
    }
    let waiting = outbox.waiting("t1", "d1", 10).await.unwrap();
    assert_eq!(seqs(&waiting), [1, 2, 3]);
    assert_eq!(waiting.notifications[2].subject, "s3");
    assert_eq!((waiting.generation, waiting.from), (first.generation, 0));
    assert_eq!(
        seqs(&outbox.waiting("t1", "d1", 2).await.unwrap()),
        [1, 2],
        "the limit holds"
    );
    // What the phone was told is acked; the rest waits, the same as a
    // replay with no cursor sees it.
    outbox
        .acked("t1", "d1", at(first.generation, 2))
        .await
        .unwrap()
        .unwrap();
    let rest = outbox.waiting("t1", "d1", 10).await.unwrap();
    assert_eq!(seqs(&rest), [3]);
    assert_eq!(rest, outbox.after("t1", "d1", at(0, 0), 10).await.unwrap());
    outbox
        .acked("t1", "d1", at(first.generation, 3))
        .await
        .unwrap()
        .unwrap();
    assert!(
        outbox
            .waiting("t1", "d1", 10)
            .await
            .unwrap()
            .notifications
            .is_empty()
    );
    // Another device's and another tenant's are their own.
    outbox.append(&n("d2", "k1", "", "s")).await.unwrap();
    assert!(
        outbox
            .waiting("t2", "d2", 10)
            .await
            .unwrap()
            .notifications
            .is_empty()
    );
    assert_eq!(seqs(&outbox.waiting("t1", "d2", 10).await.unwrap()), [1]);
    // Dropped past the cap unacked: the phone must resync.
    for i in 1..=5 {
        outbox
            .append(&n("d3", &format!("k{i}"), "", "s"))
            .await
            .unwrap();
    }
    let capped = outbox.waiting("t1", "d3", 10).await.unwrap();
    assert_eq!(seqs(&capped), [3, 4, 5]);
    assert!(capped.resync);
}

#[tokio::test]
async fn redis_a_hold_reads_what_waits() {
    a_hold_reads_what_waits(in_redis(settings(3, 0)).await).await;
}

#[tokio::test]
async fn memory_a_hold_reads_what_waits() {
    a_hold_reads_what_waits(memory(settings(3, 0))).await;
}

#[tokio::test]
async fn sqlite_a_hold_reads_what_waits() {
    let (outbox, _dir) = sqlite(settings(3, 0)).await;
    a_hold_reads_what_waits(outbox).await;
}

/// An expired outbox is not read as living: a hold gets a new generation,
/// and the old one's entries are gone.
#[tokio::test]
async fn sqlite_a_hold_after_the_ttl_starts_a_new_generation() {
    let (outbox, _dir) = sqlite(settings_with_ttl(1)).await;
    let old = outbox.append(&n("d1", "k1", "", "s")).await.unwrap();
    expired(async || {
        outbox
            .acked("t1", "d1", at(old.generation, 0))
            .await
            .unwrap()
            .is_none()
    })
    .await;
    let fresh = outbox.waiting("t1", "d1", 10).await.unwrap();
    assert_ne!(fresh.generation, old.generation);
    assert!(fresh.notifications.is_empty() && !fresh.resync);
    let next = outbox.append(&n("d1", "k2", "", "s")).await.unwrap();
    assert_eq!((next.generation, next.seq), (fresh.generation, 1));
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
async fn sqlite_sequences_replay_and_ack() {
    let (outbox, _dir) = sqlite(settings(100, 0)).await;
    sequences_replay_and_ack(outbox).await;
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
async fn sqlite_coalesces_unacked_notifications() {
    let (outbox, _dir) = sqlite(settings(100, 60_000)).await;
    coalesces_unacked_notifications(outbox).await;
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
async fn sqlite_cap_drops_oldest_and_asks_for_resync() {
    let (outbox, _dir) = sqlite(settings(3, 0)).await;
    cap_drops_oldest_and_asks_for_resync(outbox).await;
}

#[tokio::test]
async fn redis_outbox_expires_with_its_ttl() {
    let config = pushmail_integration_tests::redis_config();
    let connection = pushmail_common::redis::connect(&config).await.unwrap();
    // Coalescing on, so the collapse hash exists and its TTL is checked too.
    let outbox = RedisOutbox::new(connection.clone(), &config.key_prefix, settings(10, 60_000));
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
    let replay = outbox.after("t1", "d1", at(0, 0), 10).await.unwrap();
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
    let err = OutboxSettings::sqlite("")
        .validate("outbox.")
        .unwrap_err()
        .to_string();
    assert!(err.contains("outbox.sqlite_path"), "{err}");
    assert!(OutboxSettings::sqlite("o.db").validate("outbox.").is_ok());
}

/// One outbox's life: its generation is drawn when it is created and kept
/// while it lives; after `lose` the outbox (the one `lose` returns) has
/// another, a cursor from before is answered with a resync and everything
/// held, and acks naming the old generation trim nothing.
async fn a_generation_lives_and_dies_with_its_outbox(
    outbox: Arc<dyn Outbox>,
    lose: impl AsyncFnOnce(Arc<dyn Outbox>, u64) -> Arc<dyn Outbox>,
) {
    let first = outbox.append(&n("d1", "k1", "", "s")).await.unwrap();
    assert_ne!(first.generation, 0);
    let second = outbox.append(&n("d1", "k2", "", "s")).await.unwrap();
    assert_eq!(second.generation, first.generation, "kept while it lives");
    let old = first.generation;
    let replay = outbox.after("t1", "d1", at(old, 1), 10).await.unwrap();
    assert_eq!(
        (replay.generation, replay.from, seqs(&replay), replay.resync),
        (old, 1, vec![2], false)
    );
    // A read creates the outbox of a device that has none; appends keep it.
    let fresh = outbox.after("t1", "d9", at(0, 0), 10).await.unwrap();
    assert_ne!(fresh.generation, 0);
    let appended = outbox.append(&n("d9", "k1", "", "s")).await.unwrap();
    assert_eq!(appended.generation, fresh.generation);
    assert_eq!(
        outbox
            .acked("t1", "d1", at(old, 1))
            .await
            .unwrap()
            .map(|a| a.generation),
        Some(old)
    );

    let outbox = lose(outbox, old).await;
    // The phone still holds (old, 2); the outbox is gone.
    assert_eq!(
        outbox
            .acked("t1", "d1", at(old, 2))
            .await
            .unwrap()
            .map(|a| a.generation),
        None
    );
    let replay = outbox.after("t1", "d1", at(old, 2), 10).await.unwrap();
    let new = replay.generation;
    assert_ne!(new, old, "a new outbox, a new generation");
    assert_eq!((replay.from, replay.resync), (0, true));
    assert!(replay.notifications.is_empty());
    // Its sequences start over; the idempotency keys went with the old one.
    let again = outbox.append(&n("d1", "k1", "", "s")).await.unwrap();
    assert_eq!(
        (again.generation, again.seq, again.state),
        (new, 1, AppendState::New)
    );
    outbox.append(&n("d1", "k3", "", "s")).await.unwrap();
    // Every way a cursor can miss the outbox: a resync and everything held.
    for stale in [at(old, 2), at(old, 0), at(new, 3), at(0, 1_000_000)] {
        let replay = outbox.after("t1", "d1", stale, 10).await.unwrap();
        assert_eq!(
            (replay.generation, replay.from, replay.resync, seqs(&replay)),
            (new, 0, true, vec![1, 2]),
            "{stale:?}"
        );
    }
    let fresh = outbox.after("t1", "d1", at(0, 0), 10).await.unwrap();
    assert_eq!((fresh.resync, seqs(&fresh)), (false, vec![1, 2]));
    // Acks of the old generation, or past the end, trim nothing.
    assert_eq!(
        outbox
            .acked("t1", "d1", at(old, 2))
            .await
            .unwrap()
            .map(|a| a.generation),
        None
    );
    assert_eq!(
        outbox
            .acked("t1", "d1", at(new, 3))
            .await
            .unwrap()
            .map(|a| a.generation),
        None
    );
    assert_eq!(held(&outbox).await, [1, 2]);
    assert_eq!(
        outbox
            .acked("t1", "d1", at(new, 1))
            .await
            .unwrap()
            .map(|a| a.generation),
        Some(new)
    );
    assert_eq!(held(&outbox).await, [2]);
    let acked = outbox.append(&n("d1", "k1", "", "s")).await.unwrap();
    assert_eq!((acked.seq, acked.state), (1, AppendState::Acked));
}

/// Waits (bounded) until `gone` sees the outbox expired.
async fn expired(mut gone: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !gone().await {
        assert!(std::time::Instant::now() < deadline, "never expired");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Deletes the device's keys, as a flush or an eviction would.
async fn delete(config: &RedisConfig, suffixes: &[&str]) {
    let mut redis = pushmail_common::redis::connect(config).await.unwrap();
    let base = format!("{}outbox:{{t1/d1}}", config.key_prefix);
    let keys: Vec<String> = suffixes.iter().map(|s| format!("{base}:{s}")).collect();
    let deleted: usize = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(deleted > 0, "{keys:?}");
}

#[tokio::test]
async fn redis_a_generation_lives_and_dies_with_its_keys() {
    let config = pushmail_integration_tests::redis_config();
    let outbox = in_redis_at(&config, settings(100, 0)).await;
    a_generation_lives_and_dies_with_its_outbox(outbox, async |outbox, _| {
        delete(&config, &["s", "m", "i", "c"]).await;
        outbox
    })
    .await;
}

#[tokio::test]
async fn redis_an_outbox_whose_stream_was_evicted_starts_a_new_generation() {
    let config = pushmail_integration_tests::redis_config();
    let outbox = in_redis_at(&config, settings(100, 0)).await;
    a_generation_lives_and_dies_with_its_outbox(outbox, async |outbox, _| {
        // The counters are left: the entries went, the generation must too.
        delete(&config, &["s"]).await;
        outbox
    })
    .await;
}

#[tokio::test]
async fn redis_a_generation_dies_with_its_ttl() {
    let config = pushmail_integration_tests::redis_config();
    let outbox = in_redis_at(&config, settings_with_ttl(2)).await;
    a_generation_lives_and_dies_with_its_outbox(outbox, async |outbox, _| {
        let redis = pushmail_common::redis::connect(&config).await.unwrap();
        let meta = format!("{}outbox:{{t1/d1}}:m", config.key_prefix);
        // Reading an expired key removes it: this sees the TTL end.
        expired(async || {
            let exists = redis::cmd("EXISTS")
                .arg(&meta)
                .query_async::<bool>(&mut redis.clone())
                .await;
            !exists.unwrap()
        })
        .await;
        outbox
    })
    .await;
}

#[tokio::test]
async fn memory_a_generation_dies_with_its_process() {
    a_generation_lives_and_dies_with_its_outbox(memory(settings(100, 0)), async |_, _| {
        memory(settings(100, 0))
    })
    .await;
}

#[tokio::test]
async fn memory_a_generation_dies_with_its_ttl() {
    let outbox = memory(settings_with_ttl(2));
    a_generation_lives_and_dies_with_its_outbox(outbox, async |outbox, old| {
        // An ack of nothing (sequence 0) reads without keeping it alive.
        expired(async || {
            outbox
                .acked("t1", "d1", at(old, 0))
                .await
                .unwrap()
                .is_none()
        })
        .await;
        outbox
    })
    .await;
}

#[tokio::test]
async fn redis_an_outbox_from_before_generations_keeps_its_entries() {
    let config = pushmail_integration_tests::redis_config();
    let outbox = in_redis_at(&config, settings(100, 0)).await;
    outbox.append(&n("d1", "k1", "", "s")).await.unwrap();
    outbox.append(&n("d1", "k2", "", "s")).await.unwrap();
    // As written before generations: counters without one.
    let mut redis = pushmail_common::redis::connect(&config).await.unwrap();
    let meta = format!("{}outbox:{{t1/d1}}:m", config.key_prefix);
    let _: u32 = redis::cmd("HDEL")
        .arg(&meta)
        .arg("gen")
        .query_async(&mut redis)
        .await
        .unwrap();
    // A device from then names none and acks in whatever it has.
    assert_eq!(
        outbox
            .acked("t1", "d1", at(0, 1))
            .await
            .unwrap()
            .map(|a| a.generation),
        None
    );
    let replay = outbox.after("t1", "d1", at(0, 1), 10).await.unwrap();
    assert_ne!(replay.generation, 0, "adopted");
    assert_eq!((seqs(&replay), replay.resync), (vec![1, 2], false));
    assert_eq!(
        outbox
            .acked("t1", "d1", at(0, 1))
            .await
            .unwrap()
            .map(|a| a.generation),
        Some(replay.generation)
    );
    let next = outbox.append(&n("d1", "k3", "", "s")).await.unwrap();
    assert_eq!((next.generation, next.seq), (replay.generation, 3));
}

#[tokio::test]
async fn sqlite_a_generation_dies_with_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let outbox: Arc<dyn Outbox> =
        Arc::new(SqliteOutbox::open(&path, settings(100, 0)).await.unwrap());
    a_generation_lives_and_dies_with_its_outbox(outbox, async |outbox, _| {
        drop(outbox);
        // The data directory wiped (or a new one): a new outbox.
        std::fs::remove_dir_all(dir.path()).unwrap();
        let fresh: Arc<dyn Outbox> =
            Arc::new(SqliteOutbox::open(&path, settings(100, 0)).await.unwrap());
        fresh
    })
    .await;
}

#[tokio::test]
async fn sqlite_a_generation_dies_with_its_ttl() {
    let (outbox, _dir) = sqlite(settings_with_ttl(2)).await;
    a_generation_lives_and_dies_with_its_outbox(outbox, async |outbox, old| {
        expired(async || {
            outbox
                .acked("t1", "d1", at(old, 0))
                .await
                .unwrap()
                .is_none()
        })
        .await;
        outbox
    })
    .await;
}

/// What a restarted standalone finds: the same generation, the unacked
/// entries, the acks and the idempotency keys.
#[tokio::test]
async fn sqlite_everything_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let outbox = SqliteOutbox::open(&path, settings(100, 0)).await.unwrap();
    let first = outbox.append(&n("d1", "k1", "", "one")).await.unwrap();
    outbox.append(&n("d1", "k2", "", "two")).await.unwrap();
    outbox.append(&n("d1", "k3", "", "three")).await.unwrap();
    let generation = first.generation;
    assert_eq!(
        outbox
            .acked("t1", "d1", at(generation, 1))
            .await
            .unwrap()
            .map(|a| a.generation),
        Some(generation)
    );
    drop(outbox);

    let outbox = SqliteOutbox::open(&path, settings(100, 0)).await.unwrap();
    let replay = outbox
        .after("t1", "d1", at(generation, 1), 10)
        .await
        .unwrap();
    assert_eq!(
        (replay.generation, replay.from, replay.resync, seqs(&replay)),
        (generation, 1, false, vec![2, 3])
    );
    let subjects: Vec<&str> = replay
        .notifications
        .iter()
        .map(|n| n.subject.as_str())
        .collect();
    assert_eq!(subjects, ["two", "three"]);
    // A redelivered event is still recognised, acked or not.
    let again = outbox.append(&n("d1", "k1", "", "one")).await.unwrap();
    assert_eq!((again.seq, again.state), (1, AppendState::Acked));
    let again = outbox.append(&n("d1", "k2", "", "two")).await.unwrap();
    assert_eq!((again.seq, again.state), (2, AppendState::Pending));
    let next = outbox.append(&n("d1", "k4", "", "four")).await.unwrap();
    assert_eq!((next.generation, next.seq), (generation, 4));
}

/// Group commit: calls from many tasks at once share transactions, and
/// still each gets its own sequence, none lost, all on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_appends_share_commits_and_lose_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let outbox = Arc::new(SqliteOutbox::open(&path, settings(1_000, 0)).await.unwrap());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..600 {
        let outbox = outbox.clone();
        tasks.spawn(async move {
            let device = format!("d{}", i % 3);
            let appended = outbox
                .append(&n(&device, &format!("k{i}"), "", "s"))
                .await
                .unwrap();
            (device, appended.seq)
        });
    }
    let mut given: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    while let Some(done) = tasks.join_next().await {
        let (device, seq) = done.unwrap();
        given.entry(device).or_default().push(seq);
    }
    for seqs in given.values_mut() {
        seqs.sort_unstable();
        assert_eq!(*seqs, (1..=200).collect::<Vec<u64>>());
    }
    drop(outbox);

    let outbox = SqliteOutbox::open(&path, settings(1_000, 0)).await.unwrap();
    for device in ["d0", "d1", "d2"] {
        let replay = outbox.after("t1", device, at(0, 0), 1_000).await.unwrap();
        assert_eq!(seqs(&replay), (1..=200).collect::<Vec<u64>>(), "{device}");
    }
}

/// A call that fails inside a shared transaction undoes only itself: the
/// others in its batch are kept, and it leaves no trace (not even the
/// device's counters its first statements wrote).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_failed_call_undoes_only_itself() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    drop(SqliteOutbox::open(&path, settings(100, 0)).await.unwrap());
    // A disk that refuses one device's entries (as a full disk or a
    // damaged page refuses a statement) after its counters were written.
    let pool = pushmail_common::sqlite::open(&path, &[]).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse_bad BEFORE INSERT ON outbox_entries \
         WHEN NEW.device = 'bad' BEGIN SELECT RAISE(ABORT, 'refused'); END",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let outbox = Arc::new(SqliteOutbox::open(&path, settings(100, 0)).await.unwrap());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let outbox = outbox.clone();
        tasks.spawn(async move {
            let device = if i % 2 == 0 { "good" } else { "bad" };
            let result = outbox.append(&n(device, &format!("k{i}"), "", "s")).await;
            (device, result.map(|a| a.seq).map_err(|e| e.to_string()))
        });
    }
    let (mut good, mut refused) = (Vec::new(), 0);
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            ("good", Ok(seq)) => good.push(seq),
            ("bad", Err(_)) => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    good.sort_unstable();
    assert_eq!(good, (1..=50).collect::<Vec<u64>>());
    assert_eq!(refused, 50);
    drop(outbox);

    let pool = pushmail_common::sqlite::open(&path, &[]).await.unwrap();
    let devices: Vec<String> = sqlx::query_scalar("SELECT device FROM outbox_devices")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(devices, ["good"]);
    let entries: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_entries")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(entries, 50);
}
