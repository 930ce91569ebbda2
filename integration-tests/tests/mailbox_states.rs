//! The mailbox service's sync-state stores held to one behaviour: in
//! memory, in PostgreSQL and in SQLite, a token names its state in its
//! folder only, outlives its successor until the folder's count is
//! reached, expires by age, and goes with its account; sends are
//! remembered by their idempotency key, the first answer kept; an
//! upload's ledger takes a chunk only where the upload ends, once, however
//! many writers race for it, and bounds each account's uploads in progress.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use pushmail_integration_tests::TestDatabase;
use pushmail_mailbox::domain::{Flags, FolderId, Uid};
use pushmail_mailbox::sends::{Claim, MemorySends, PgSends, SendKey, Sends, Sent, SqliteSends};
use pushmail_mailbox::sync::{
    FolderState, MemoryStates, PgStates, Retention, Scope, SqliteStates, States,
};
use pushmail_mailbox::uploads::{
    Appended, Chunk, Ledger, MemoryLedger, Owner, PgLedger, Refused, SqliteLedger, Upload, UploadId,
};

fn scope(tenant: &str, account: &str, folder: &str) -> Scope {
    Scope {
        tenant: tenant.to_owned(),
        account: account.to_owned(),
        folder: FolderId::new(folder),
    }
}

fn state(n: u32) -> FolderState {
    FolderState {
        uid_validity: 7,
        modseq: Some(u64::from(n) * 10),
        known: (1..=n)
            .map(|u| (Uid(u), Flags::from_bits((u % 32) as u8)))
            .collect::<BTreeMap<_, _>>(),
        pending: None,
    }
}

async fn behaves(states: Arc<dyn States>, expiring: Arc<dyn States>) {
    let inbox = scope("t1", "a1", "INBOX");
    let first = states.save(&inbox, &state(3)).await.unwrap();
    assert_eq!(states.load(&inbox, &first).await.unwrap(), Some(state(3)));

    // Only in its own folder, account and tenant.
    for other in [
        scope("t1", "a1", "Sent"),
        scope("t1", "a2", "INBOX"),
        scope("t2", "a1", "INBOX"),
    ] {
        assert_eq!(
            states.load(&other, &first).await.unwrap(),
            None,
            "{other:?}"
        );
    }

    // Still valid after its successor; the oldest goes past three.
    let second = states.save(&inbox, &state(4)).await.unwrap();
    let third = states.save(&inbox, &state(5)).await.unwrap();
    assert_eq!(states.load(&inbox, &first).await.unwrap(), Some(state(3)));
    let fourth = states.save(&inbox, &state(6)).await.unwrap();
    assert_eq!(states.load(&inbox, &first).await.unwrap(), None);
    for (token, n) in [(&second, 4), (&third, 5), (&fourth, 6)] {
        assert_eq!(states.load(&inbox, token).await.unwrap(), Some(state(n)));
    }
    // Another folder's tokens do not count against this one's.
    let sent = states
        .save(&scope("t1", "a1", "Sent"), &state(1))
        .await
        .unwrap();
    assert!(states.load(&inbox, &second).await.unwrap().is_some());

    // A large folder round-trips.
    let big = states.save(&inbox, &state(10_000)).await.unwrap();
    assert_eq!(
        states.load(&inbox, &big).await.unwrap(),
        Some(state(10_000))
    );

    // Gone with the account, and only that account's.
    let kept = states
        .save(&scope("t1", "a2", "INBOX"), &state(2))
        .await
        .unwrap();
    states.forget_account("t1", "a1").await.unwrap();
    assert_eq!(states.load(&inbox, &big).await.unwrap(), None);
    assert_eq!(
        states
            .load(&scope("t1", "a1", "Sent"), &sent)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        states
            .load(&scope("t1", "a2", "INBOX"), &kept)
            .await
            .unwrap(),
        Some(state(2))
    );

    // Expired by age (the expiring store keeps tokens for 500 ms).
    let short = expiring.save(&inbox, &state(1)).await.unwrap();
    assert!(expiring.load(&inbox, &short).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(expiring.load(&inbox, &short).await.unwrap(), None);
}

/// A send claims its key (once, however many ask at once), is remembered
/// by it, first answer kept, until it expires; a released claim frees the
/// key, an abandoned one is taken over.
async fn remembers_sends(sends: Arc<dyn Sends>, expiring: Arc<dyn Sends>) {
    let key = SendKey {
        tenant: "t1".into(),
        account: "a1".into(),
        client_send_id: "phone-42".into(),
    };
    let first = Sent {
        rfc_message_id: "m1@example.net".into(),
        sent_message_id: "1.7.U2VudA".into(),
    };
    // The same Send arriving eight times at once: one sends.
    let claims = (0..8).map(|_| {
        let (sends, key) = (sends.clone(), key.clone());
        tokio::spawn(async move { sends.claim(&key).await.unwrap() })
    });
    let mut mine = 0;
    for claim in claims {
        match claim.await.unwrap() {
            Claim::Mine => mine += 1,
            Claim::InFlight => {}
            Claim::Done(sent) => panic!("nothing was sent yet: {sent:?}"),
        }
    }
    assert_eq!(mine, 1);
    sends.record(&key, &first).await.unwrap();
    assert_eq!(sends.claim(&key).await.unwrap(), Claim::Done(first.clone()));
    let second = Sent {
        rfc_message_id: "m2@example.net".into(),
        sent_message_id: String::new(),
    };
    sends.record(&key, &second).await.unwrap();
    sends.release(&key).await.unwrap();
    assert_eq!(
        sends.claim(&key).await.unwrap(),
        Claim::Done(first),
        "the first answer stays; a release frees only a claim"
    );

    // A failed send gives its key back.
    let other = SendKey {
        account: "a2".into(),
        ..key.clone()
    };
    assert_eq!(sends.claim(&other).await.unwrap(), Claim::Mine);
    assert_eq!(sends.claim(&other).await.unwrap(), Claim::InFlight);
    sends.release(&other).await.unwrap();
    assert_eq!(sends.claim(&other).await.unwrap(), Claim::Mine);

    // Answers expire, and a claim whose holder died is taken over (a key
    // of its own: the SQL stores share one table).
    let other = SendKey {
        account: "a3".into(),
        ..key.clone()
    };
    assert_eq!(expiring.claim(&other).await.unwrap(), Claim::Mine);
    assert_eq!(expiring.claim(&other).await.unwrap(), Claim::InFlight);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(expiring.claim(&other).await.unwrap(), Claim::Mine);
    expiring.record(&other, &second).await.unwrap();
    assert_eq!(expiring.claim(&other).await.unwrap(), Claim::Done(second));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(expiring.claim(&other).await.unwrap(), Claim::Mine);
}

fn upload(account: &str, total: u64, expires_ms: i64) -> Upload {
    Upload {
        id: UploadId::new(),
        owner: Owner {
            tenant: "t1".into(),
            account: account.into(),
        },
        file_name: "f.bin".into(),
        content_type: "application/octet-stream".into(),
        total,
        received: 0,
        blob: None,
        created_ms: 1_000,
        expires_ms,
    }
}

fn chunk(offset: u64, len: u64, file: &str) -> Chunk {
    Chunk {
        offset,
        len,
        file: file.into(),
    }
}

const NOW: i64 = 2_000;

/// The ledger: appends only at the end, once; bounded uploads in progress;
/// expiry; owners kept apart.
async fn keeps_the_ledger(ledger: Arc<dyn Ledger>) {
    let first = appends_only_at_the_end(&ledger).await;
    bounds_uploads_in_progress(&ledger).await;
    ledger.remove(&first.id).await.unwrap();
    assert!(ledger.chunks(&first.id).await.unwrap().is_empty());
}

async fn appends_only_at_the_end(ledger: &Arc<dyn Ledger>) -> Upload {
    let now = NOW;
    let first = upload("a1", 30, 10_000);
    ledger.create(&first, 2).await.unwrap();
    let owner = first.owner.clone();
    let stranger = Owner {
        account: "a2".into(),
        ..owner.clone()
    };
    assert_eq!(
        ledger.get(&owner, &first.id, now).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(ledger.get(&stranger, &first.id, now).await.unwrap(), None);
    assert_eq!(
        ledger
            .append(&stranger, &first.id, &chunk(0, 10, "x"), now)
            .await
            .unwrap(),
        Appended::Missing
    );

    // Eight writers race for offset 0: one wins, the rest are told where
    // the upload now ends.
    let racers = (0..8).map(|i| {
        let ledger = ledger.clone();
        let owner = owner.clone();
        let id = first.id.clone();
        tokio::spawn(async move {
            ledger
                .append(&owner, &id, &chunk(0, 10, &format!("racer-{i}")), now)
                .await
                .unwrap()
        })
    });
    let mut accepted = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Appended::Accepted(u) => {
                accepted += 1;
                assert_eq!(u.received, 10);
            }
            Appended::Elsewhere(u) => assert_eq!(u.received, 10),
            Appended::Missing => panic!("the upload exists"),
        }
    }
    assert_eq!(accepted, 1);
    let Appended::Accepted(after) = ledger
        .append(&owner, &first.id, &chunk(10, 20, "rest"), now)
        .await
        .unwrap()
    else {
        panic!("the next chunk is taken");
    };
    assert_eq!(after.received, 30);
    let chunks = ledger.chunks(&first.id).await.unwrap();
    assert_eq!(chunks.len(), 2);
    assert_eq!((chunks[0].offset, chunks[1].file.as_str()), (0, "rest"));

    ledger
        .complete(&first.id, "sha256:aa", 50_000)
        .await
        .unwrap();
    ledger
        .complete(&first.id, "sha256:bb", 60_000)
        .await
        .unwrap();
    let done = ledger.get(&owner, &first.id, now).await.unwrap().unwrap();
    assert_eq!(
        (done.blob.as_deref(), done.expires_ms),
        (Some("sha256:aa"), 50_000),
        "the first completion stays"
    );
    assert!(matches!(
        ledger
            .append(&owner, &first.id, &chunk(30, 1, "late"), now)
            .await
            .unwrap(),
        Appended::Elsewhere(_)
    ));
    first
}

async fn bounds_uploads_in_progress(ledger: &Arc<dyn Ledger>) {
    let now = NOW;
    // Two in progress at most per account, however many ask at once;
    // complete ones and other accounts' do not count.
    let creators = (0..6).map(|_| {
        let ledger = ledger.clone();
        tokio::spawn(async move { ledger.create(&upload("a1", 5, 10_000), 2).await })
    });
    let mut created = 0;
    for creator in creators {
        match creator.await.unwrap() {
            Ok(()) => created += 1,
            Err(Refused::TooManyOpen { max: 2 }) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(created, 2);
    ledger.create(&upload("a2", 5, 10_000), 2).await.unwrap();
    // Expired ones do not count either.
    let stale = upload("a3", 5, 900);
    ledger.create(&stale, 1).await.unwrap();
    ledger.create(&upload("a3", 5, 10_000), 1).await.unwrap();

    let expired = ledger.expired(now, 100).await.unwrap();
    assert_eq!(expired, vec![stale.id.clone()]);
    assert_eq!(
        ledger.get(&stale.owner, &stale.id, now).await.unwrap(),
        None
    );
    assert!(ledger.exists(&stale.id).await.unwrap());
    ledger.remove(&stale.id).await.unwrap();
    assert!(!ledger.exists(&stale.id).await.unwrap());
}

const KEEP: Retention = Retention {
    per_folder: 3,
    max_age: Duration::from_secs(3_600),
};
const EXPIRE: Retention = Retention {
    per_folder: 3,
    // Long enough that two calls in a row land within it on a loaded
    // machine (50 ms did not, now and then, under a full CI run).
    max_age: Duration::from_millis(500),
};

#[tokio::test]
async fn in_memory() {
    behaves(
        Arc::new(MemoryStates::new(KEEP.per_folder as usize, KEEP.max_age)),
        Arc::new(MemoryStates::new(
            EXPIRE.per_folder as usize,
            EXPIRE.max_age,
        )),
    )
    .await;
    remembers_sends(
        Arc::new(MemorySends::new(KEEP.max_age)),
        Arc::new(MemorySends::new(EXPIRE.max_age).abandoned_after(EXPIRE.max_age)),
    )
    .await;
    keeps_the_ledger(Arc::new(MemoryLedger::default())).await;
}

#[tokio::test]
async fn in_postgres() {
    let database = TestDatabase::create().await.unwrap();
    let pool = sqlx::PgPool::connect(&database.url).await.unwrap();
    let keep = PgStates::open(pool.clone(), KEEP).await.unwrap();
    // Opening again (a second replica) migrates nothing twice.
    let expire = PgStates::open(pool.clone(), EXPIRE).await.unwrap();
    behaves(Arc::new(keep), Arc::new(expire)).await;
    remembers_sends(
        Arc::new(PgSends::new(pool.clone(), KEEP.max_age)),
        Arc::new(PgSends::new(pool.clone(), EXPIRE.max_age).abandoned_after(EXPIRE.max_age)),
    )
    .await;
    keeps_the_ledger(Arc::new(PgLedger::new(pool.clone()))).await;
    pool.close().await;
    database.drop_database().await.unwrap();
}

#[tokio::test]
async fn in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pushmail_common::sqlite::open(&dir.path().join("mailbox.db"), &[])
        .await
        .unwrap();
    let keep = SqliteStates::open(pool.clone(), KEEP).await.unwrap();
    let expire = SqliteStates::open(pool.clone(), EXPIRE).await.unwrap();
    behaves(Arc::new(keep), Arc::new(expire)).await;
    remembers_sends(
        Arc::new(SqliteSends::new(pool.clone(), KEEP.max_age)),
        Arc::new(SqliteSends::new(pool.clone(), EXPIRE.max_age).abandoned_after(EXPIRE.max_age)),
    )
    .await;
    keeps_the_ledger(Arc::new(SqliteLedger::new(pool))).await;
}
