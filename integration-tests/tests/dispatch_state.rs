//! Dispatch's state, one suite per concern (claims, held mail, rate
//! windows), each run against every backend: Redis (a key prefix of its
//! own), SQLite (a file of its own, also reopened as a restarted
//! standalone would) and process memory.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::sync::Arc;

use pushmail_dispatch::state::{
    Claims, HeldMail, MemoryState, RateWindows, RedisState, SqliteState, State,
};
use pushmail_integration_tests::redis_config;
use pushmail_proto::session::v1::Notification;

async fn redis() -> Arc<dyn State> {
    let config = redis_config();
    Arc::new(RedisState::new(
        pushmail_common::redis::connect(&config).await.unwrap(),
        &config.key_prefix,
    ))
}

async fn sqlite(dir: &tempfile::TempDir) -> Arc<dyn State> {
    Arc::new(
        SqliteState::open(&dir.path().join("state.db"))
            .await
            .unwrap(),
    )
}

fn note(device: &str, key: &str, collapse: &str, subject: &str) -> Notification {
    Notification {
        tenant_id: "t1".to_owned(),
        device_id: device.to_owned(),
        idempotency_key: key.to_owned(),
        collapse_key: collapse.to_owned(),
        subject: subject.to_owned(),
        ..Default::default()
    }
}

/// A claim is its owner's until confirmed or released; confirmed, it
/// refuses everyone, its owner's retry too.
async fn claims_behave(state: Arc<dyn State>) {
    let claims: &dyn Claims = &*state;
    assert!(claims.claim("sms:d1", "mail-1", 60_000).await.unwrap());
    assert!(
        claims.claim("sms:d1", "mail-1", 60_000).await.unwrap(),
        "the owner's retry before confirming sends again"
    );
    assert!(!claims.claim("sms:d1", "mail-2", 60_000).await.unwrap());
    claims.release("sms:d1", "mail-2").await.unwrap();
    assert!(
        !claims.claim("sms:d1", "mail-2", 60_000).await.unwrap(),
        "only the owner releases"
    );
    claims.release("sms:d1", "mail-1").await.unwrap();
    assert!(claims.claim("sms:d1", "mail-2", 60_000).await.unwrap());
    claims.confirm("sms:d1", "mail-2").await.unwrap();
    assert!(
        !claims.claim("sms:d1", "mail-2", 60_000).await.unwrap(),
        "confirmed: a redelivery sends nothing twice"
    );
    // A claim runs out.
    assert!(claims.claim("sms:d2", "mail-3", 1).await.unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(claims.claim("sms:d2", "mail-4", 60_000).await.unwrap());
}

/// Held mail is per device, counted once per mail, merged per collapse
/// key, due at the earliest window's end, and forgotten only by the digest
/// that covered it.
async fn held_mail_behaves(state: Arc<dyn State>) {
    let held: &dyn HeldMail = &*state;
    held.defer(&note("d1", "m1", "inbox", "first"), 5_000)
        .await
        .unwrap();
    held.defer(&note("d1", "m1", "inbox", "first"), 5_000)
        .await
        .unwrap();
    held.defer(&note("d1", "m2", "inbox", "second"), 9_000)
        .await
        .unwrap();
    held.defer(&note("d1", "m3", "other", "third"), 9_000)
        .await
        .unwrap();
    held.defer(&note("d2", "m4", "inbox", "later"), 20_000)
        .await
        .unwrap();
    assert!(held.due(4_999, 10).await.unwrap().is_empty());
    let due = held.due(5_000, 10).await.unwrap();
    assert_eq!(due.len(), 1, "{due:?}");
    let d1 = &due[0];
    assert_eq!((d1.device.as_str(), d1.until_ms), ("d1", 5_000));
    let mut digests: Vec<(String, u32)> = d1
        .digests
        .iter()
        .map(|(n, count)| (n.subject.clone(), *count))
        .collect();
    digests.sort();
    assert_eq!(
        digests,
        [("second".to_owned(), 2), ("third".to_owned(), 1)],
        "the newest of each collapse key, with the count; m1 once"
    );
    // A mail held after the digest was read keeps the device due.
    held.defer(&note("d1", "m5", "inbox", "fifth"), 9_000)
        .await
        .unwrap();
    assert!(!held.digested(d1).await.unwrap());
    let again = held.due(5_000, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert!(held.digested(&again[0]).await.unwrap());
    assert!(
        held.due(10_000, 10)
            .await
            .unwrap()
            .iter()
            .all(|d| d.device != "d1")
    );
    assert!(held.digested(&again[0]).await.unwrap(), "twice is harmless");
    assert_eq!(held.due(20_000, 10).await.unwrap().len(), 1);
    assert!(
        held.due(20_000, 0).await.unwrap().is_empty(),
        "the limit holds"
    );
}

/// Counters add up within their window and start over after it.
async fn rate_windows_behave(state: Arc<dyn State>) {
    let rates: &dyn RateWindows = &*state;
    assert_eq!(rates.count("rate:t", 2, 200).await.unwrap(), 2);
    assert_eq!(rates.count("rate:t", 3, 200).await.unwrap(), 5);
    assert_eq!(rates.count("rate:u", 1, 200).await.unwrap(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    assert_eq!(rates.count("rate:t", 1, 200).await.unwrap(), 1);
}

#[tokio::test]
async fn redis_state_behaves() {
    claims_behave(redis().await).await;
    held_mail_behaves(redis().await).await;
    rate_windows_behave(redis().await).await;
}

#[tokio::test]
async fn sqlite_state_behaves() {
    for suite in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let state = sqlite(&dir).await;
        match suite {
            0 => claims_behave(state).await,
            1 => held_mail_behaves(state).await,
            _ => rate_windows_behave(state).await,
        }
    }
}

#[tokio::test]
async fn memory_state_behaves() {
    claims_behave(Arc::new(MemoryState::default())).await;
    held_mail_behaves(Arc::new(MemoryState::default())).await;
    rate_windows_behave(Arc::new(MemoryState::default())).await;
}

/// What standalone needs of it: a restarted process finds its claims and
/// held mail where it left them.
#[tokio::test]
async fn sqlite_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let state = sqlite(&dir).await;
        assert!(state.claim("sms:d1", "mail-1", 60_000).await.unwrap());
        state.confirm("sms:d1", "mail-1").await.unwrap();
        state
            .defer(&note("d1", "m1", "inbox", "held"), 1_000)
            .await
            .unwrap();
    }
    let state = sqlite(&dir).await;
    assert!(
        !state.claim("sms:d1", "mail-1", 60_000).await.unwrap(),
        "the SMS was sent before the restart: not again"
    );
    let due = state.due(1_000, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].digests[0].0.subject, "held");
}

/// A file that is not a database is a clear error, not a panic.
#[tokio::test]
async fn a_corrupt_state_file_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    std::fs::write(&path, b"this is not a sqlite database, not at all, no").unwrap();
    let err = SqliteState::open(&path).await.unwrap_err();
    // The file and SQLite's reason, for the operator to act on (the log
    // line shows the error with its causes).
    let err = pushmail_common::report::Report(&err).to_string();
    assert!(
        err.contains("state.db") && err.contains("not a database"),
        "{err}"
    );
}
