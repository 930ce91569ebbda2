//! The SMPP connector's state (how far each request got, whom each awaited
//! delivery receipt is for), one suite per concern (progress, receipts,
//! expiry), each run against every backend: Redis (a key prefix of its
//! own) and process memory.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use pushmail_integration_tests::redis_config;
use pushmail_proto::events::v1::SmsPurpose;
use pushmail_smpp::state::{Expected, MemoryStore, Progress, RedisStore, Store};

/// Long enough never to run out during a test.
const KEEP: Duration = Duration::from_secs(60);
/// The shortest Redis keeps (it counts whole seconds, at least one).
const SHORT: Duration = Duration::from_secs(1);
/// How long an entry written with [`SHORT`] may take to go.
const EXPIRY_LIMIT: Duration = Duration::from_secs(5);

async fn redis() -> Arc<dyn Store> {
    let config = redis_config();
    Arc::new(RedisStore::new(
        pushmail_common::redis::connect(&config).await.unwrap(),
        &config.key_prefix,
    ))
}

fn submitted(segments: &[(u32, &str)]) -> BTreeMap<u32, String> {
    segments
        .iter()
        .map(|(index, id)| (*index, (*id).to_owned()))
        .collect()
}

fn expected(request: &str, purpose: SmsPurpose) -> Expected {
    Expected {
        tenant: "t1".to_owned(),
        request_id: request.to_owned(),
        device_id: format!("dev-{request}"),
        account_id: format!("acct-{request}"),
        purpose: purpose as i32,
    }
}

/// A request starts with nothing done; submitted segments are remembered
/// by index with their message ids (the last id of an index wins);
/// finishing keeps them; requests do not see each other's.
async fn progress_behaves(store: Arc<dyn Store>) {
    assert_eq!(
        store.progress("r1").await.unwrap(),
        Progress {
            finished: false,
            submitted: BTreeMap::new(),
        },
        "a new request: nothing submitted, not finished"
    );
    store.submitted("r1", 2, "id-2", KEEP).await.unwrap();
    store.submitted("r1", 0, "id-0", KEEP).await.unwrap();
    store.submitted("r1", 1, "id-1", KEEP).await.unwrap();
    assert_eq!(
        store.progress("r1").await.unwrap(),
        Progress {
            finished: false,
            submitted: submitted(&[(0, "id-0"), (1, "id-1"), (2, "id-2")]),
        },
        "every segment by its index, whatever the order"
    );
    store.submitted("r1", 1, "id-1-again", KEEP).await.unwrap();
    assert_eq!(
        store.progress("r1").await.unwrap().submitted,
        submitted(&[(0, "id-0"), (1, "id-1-again"), (2, "id-2")]),
        "a segment submitted again: its newest id"
    );
    assert_eq!(
        store.progress("r2").await.unwrap(),
        Progress::default(),
        "per request"
    );
    store.submitted("r2", 0, "other-0", KEEP).await.unwrap();
    store.finished("r1", KEEP).await.unwrap();
    assert_eq!(
        store.progress("r1").await.unwrap(),
        Progress {
            finished: true,
            submitted: submitted(&[(0, "id-0"), (1, "id-1-again"), (2, "id-2")]),
        },
        "finished, and what was submitted kept"
    );
    assert_eq!(
        store.progress("r2").await.unwrap(),
        Progress {
            finished: false,
            submitted: submitted(&[(0, "other-0")]),
        },
        "another request's finish is not this one's"
    );
    store.finished("r1", KEEP).await.unwrap();
    assert!(
        store.progress("r1").await.unwrap().finished,
        "twice is harmless"
    );
    // Finished without a segment recorded (nothing to send).
    store.finished("r3", KEEP).await.unwrap();
    assert_eq!(
        store.progress("r3").await.unwrap(),
        Progress {
            finished: true,
            submitted: BTreeMap::new(),
        }
    );
}

/// A receipt is found by the SMS centre and message id it was expected
/// under, whole; no other pair finds it; forgotten, it is gone.
async fn receipts_behave(store: Arc<dyn Store>) {
    assert_eq!(store.receipt("smsc-a", "m1").await.unwrap(), None);
    let first = expected("r1", SmsPurpose::Otp);
    let second = expected("r2", SmsPurpose::WakeUp);
    store.expect("smsc-a", "m1", &first, KEEP).await.unwrap();
    store.expect("smsc-a", "m2", &second, KEEP).await.unwrap();
    assert_eq!(
        store.receipt("smsc-a", "m1").await.unwrap(),
        Some(Expected {
            tenant: "t1".to_owned(),
            request_id: "r1".to_owned(),
            device_id: "dev-r1".to_owned(),
            account_id: "acct-r1".to_owned(),
            purpose: 1,
        }),
        "every field as expected"
    );
    assert_eq!(
        store.receipt("smsc-a", "m2").await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(
        store.receipt("smsc-b", "m1").await.unwrap(),
        None,
        "another SMS centre's m1 is another message"
    );
    assert_eq!(
        store.receipt("smsc-a", "m3").await.unwrap(),
        None,
        "another message id"
    );
    // The same id from another centre is kept apart.
    let third = expected("r3", SmsPurpose::Notice);
    store.expect("smsc-b", "m1", &third, KEEP).await.unwrap();
    assert_eq!(
        store.receipt("smsc-a", "m1").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.receipt("smsc-b", "m1").await.unwrap(),
        Some(third.clone())
    );
    store.forget("smsc-a", "m1").await.unwrap();
    assert_eq!(store.receipt("smsc-a", "m1").await.unwrap(), None);
    assert_eq!(
        store.receipt("smsc-b", "m1").await.unwrap(),
        Some(third),
        "only that centre's"
    );
    assert_eq!(
        store.receipt("smsc-a", "m2").await.unwrap(),
        Some(second),
        "only that id"
    );
    store.forget("smsc-a", "m1").await.unwrap();
    store.forget("smsc-a", "never-expected").await.unwrap();
    assert_eq!(
        store.receipt("smsc-a", "m1").await.unwrap(),
        None,
        "forgetting twice, or what never was, is harmless"
    );
    // A `:` in a centre's name or in an id does not make two receipts one:
    // "b:c" + "m4" is not "b" + "c:m4", nor is an escaped-looking name.
    let colon_name = expected("r5", SmsPurpose::Otp);
    let colon_id = expected("r6", SmsPurpose::WakeUp);
    let percent_name = expected("r7", SmsPurpose::Notice);
    store.expect("b:c", "m4", &colon_name, KEEP).await.unwrap();
    store.expect("b", "c:m4", &colon_id, KEEP).await.unwrap();
    store
        .expect("b%3Ac", "m4", &percent_name, KEEP)
        .await
        .unwrap();
    assert_eq!(
        store.receipt("b:c", "m4").await.unwrap(),
        Some(colon_name.clone())
    );
    assert_eq!(store.receipt("b", "c:m4").await.unwrap(), Some(colon_id));
    assert_eq!(
        store.receipt("b%3Ac", "m4").await.unwrap(),
        Some(percent_name)
    );
    store.forget("b", "c:m4").await.unwrap();
    assert_eq!(store.receipt("b", "c:m4").await.unwrap(), None);
    assert_eq!(
        store.receipt("b:c", "m4").await.unwrap(),
        Some(colon_name),
        "forgetting one does not forget the other"
    );
    // Expected again (a resubmission reusing the id): the newest wins.
    store
        .expect("smsc-a", "m2", &expected("r4", SmsPurpose::Notice), KEEP)
        .await
        .unwrap();
    assert_eq!(
        store.receipt("smsc-a", "m2").await.unwrap(),
        Some(expected("r4", SmsPurpose::Notice))
    );
}

/// Polls until `request` has no progress and the receipt of
/// (`smsc`, `message_id`) is gone; fails after [`EXPIRY_LIMIT`].
async fn until_expired(store: &dyn Store, request: &str, smsc: &str, message_id: &str) {
    let deadline = tokio::time::Instant::now() + EXPIRY_LIMIT;
    loop {
        let progress = store.progress(request).await.unwrap();
        let receipt = store.receipt(smsc, message_id).await.unwrap();
        if progress == Progress::default() && receipt.is_none() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still there after {EXPIRY_LIMIT:?}: {progress:?}, {receipt:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Entries go when their time is up, each on its own; a later write
/// sets the time anew; an expired request starts over from nothing.
async fn entries_expire(store: Arc<dyn Store>) {
    // Written first, so its short time is up once "short"'s is.
    store
        .submitted("refreshed", 0, "ref-0", SHORT)
        .await
        .unwrap();
    store.submitted("short", 0, "short-0", SHORT).await.unwrap();
    store.finished("short", SHORT).await.unwrap();
    store.finished("refreshed", KEEP).await.unwrap();
    store.submitted("long", 0, "long-0", KEEP).await.unwrap();
    let short_receipt = expected("short", SmsPurpose::Otp);
    let long_receipt = expected("long", SmsPurpose::WakeUp);
    store
        .expect("smsc-a", "short", &short_receipt, SHORT)
        .await
        .unwrap();
    store
        .expect("smsc-a", "long", &long_receipt, KEEP)
        .await
        .unwrap();
    assert_eq!(
        store.progress("short").await.unwrap(),
        Progress {
            finished: true,
            submitted: submitted(&[(0, "short-0")]),
        },
        "there before its time is up"
    );
    assert_eq!(
        store.receipt("smsc-a", "short").await.unwrap(),
        Some(short_receipt.clone()),
        "there before its time is up"
    );

    until_expired(&*store, "short", "smsc-a", "short").await;

    assert_eq!(
        store.progress("long").await.unwrap(),
        Progress {
            finished: false,
            submitted: submitted(&[(0, "long-0")]),
        },
        "a neighbour with time left stays"
    );
    assert_eq!(
        store.progress("refreshed").await.unwrap(),
        Progress {
            finished: true,
            submitted: submitted(&[(0, "ref-0")]),
        },
        "the last write's time counts, for the whole request"
    );
    assert_eq!(
        store.receipt("smsc-a", "long").await.unwrap(),
        Some(long_receipt)
    );

    // What expired is gone for good: a redelivery after it finds nothing
    // submitted before, and the connector's next write starts afresh.
    store.submitted("short", 1, "short-1", KEEP).await.unwrap();
    assert_eq!(
        store.progress("short").await.unwrap(),
        Progress {
            finished: false,
            submitted: submitted(&[(1, "short-1")]),
        },
        "an expired request starts over: nothing of before comes back"
    );
    store
        .expect("smsc-a", "short", &short_receipt, KEEP)
        .await
        .unwrap();
    assert_eq!(
        store.receipt("smsc-a", "short").await.unwrap(),
        Some(short_receipt)
    );
}

#[tokio::test]
async fn redis_store_behaves() {
    progress_behaves(redis().await).await;
    receipts_behave(redis().await).await;
    entries_expire(redis().await).await;
}

#[tokio::test]
async fn memory_store_behaves() {
    progress_behaves(Arc::new(MemoryStore::default())).await;
    receipts_behave(Arc::new(MemoryStore::default())).await;
    entries_expire(Arc::new(MemoryStore::default())).await;
}
