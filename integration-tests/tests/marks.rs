//! Ingest's marks (what was announced of each mailbox), one suite run
//! against every backend: Redis (a key prefix of its own), SQLite (a file
//! of its own, reopened as a restarted standalone would) and memory.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::collections::HashSet;
use std::sync::Arc;

use pushmail_ingest::marks::{
    ImapMark, ImapMarks, MemoryMarks, Pop3Marks, RedisMarks, SEEN_IDS, SqliteMarks,
};
use pushmail_integration_tests::redis_config;

trait Marks: Pop3Marks + ImapMarks {}
impl<T: Pop3Marks + ImapMarks> Marks for T {}

fn set(items: &[&str]) -> HashSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// POP3: no baseline until one is taken; marks add up; retain keeps the
/// baseline even when the mailbox empties.
async fn pop3_marks_behave(marks: Arc<dyn Marks>) {
    assert_eq!(marks.seen("a1").await.unwrap(), None, "never polled");
    marks.baseline("a1", &set(&["u1", "u2"])).await.unwrap();
    assert_eq!(marks.seen("a1").await.unwrap(), Some(set(&["u1", "u2"])));
    marks.mark("a1", "u3").await.unwrap();
    marks.mark("a1", "u3").await.unwrap();
    assert_eq!(
        marks.seen("a1").await.unwrap(),
        Some(set(&["u1", "u2", "u3"]))
    );
    marks.retain("a1", &set(&["u3"])).await.unwrap();
    assert_eq!(marks.seen("a1").await.unwrap(), Some(set(&["u3"])));
    marks.retain("a1", &HashSet::new()).await.unwrap();
    assert_eq!(
        marks.seen("a1").await.unwrap(),
        Some(HashSet::new()),
        "an emptied mailbox is not a lost one"
    );
    assert_eq!(marks.seen("a2").await.unwrap(), None, "per account");
    marks.baseline("a2", &HashSet::new()).await.unwrap();
    assert_eq!(marks.seen("a2").await.unwrap(), Some(HashSet::new()));
}

/// IMAP: a mark per (account, mailbox), moved forward; the newest
/// Message-IDs kept, at most `SEEN_IDS`.
async fn imap_marks_behave(marks: Arc<dyn Marks>) {
    assert_eq!(marks.get("a1", "INBOX").await.unwrap(), None);
    let mark = |uid: u32| ImapMark {
        uid_validity: 7,
        last_uid: uid,
        updated_ms: i64::from(uid),
    };
    marks
        .advance("a1", "INBOX", mark(3), Some("<m3@x>"))
        .await
        .unwrap();
    marks.advance("a1", "INBOX", mark(4), None).await.unwrap();
    marks
        .advance("a1", "Sent", mark(9), Some("<s9@x>"))
        .await
        .unwrap();
    assert_eq!(marks.get("a1", "INBOX").await.unwrap(), Some(mark(4)));
    assert_eq!(marks.get("a1", "Sent").await.unwrap(), Some(mark(9)));
    assert_eq!(
        marks.seen_ids("a1", "INBOX").await.unwrap(),
        set(&["<m3@x>"])
    );
    for uid in 10..(10 + SEEN_IDS as u32 + 5) {
        marks
            .advance("a1", "INBOX", mark(uid), Some(&format!("<m{uid}@x>")))
            .await
            .unwrap();
    }
    let ids = marks.seen_ids("a1", "INBOX").await.unwrap();
    assert_eq!(ids.len(), SEEN_IDS);
    assert!(!ids.contains("<m3@x>") && ids.contains(&format!("<m{}@x>", 9 + SEEN_IDS + 5)));
    assert_eq!(
        marks.seen_ids("a1", "Sent").await.unwrap(),
        set(&["<s9@x>"])
    );
}

async fn redis() -> Arc<dyn Marks> {
    let config = redis_config();
    Arc::new(RedisMarks::new(
        pushmail_common::redis::connect(&config).await.unwrap(),
        &config.key_prefix,
    ))
}

#[tokio::test]
async fn redis_marks_behave() {
    pop3_marks_behave(redis().await).await;
    imap_marks_behave(redis().await).await;
}

#[tokio::test]
async fn sqlite_marks_behave() {
    let dir = tempfile::tempdir().unwrap();
    pop3_marks_behave(Arc::new(
        SqliteMarks::open(&dir.path().join("p.db")).await.unwrap(),
    ))
    .await;
    imap_marks_behave(Arc::new(
        SqliteMarks::open(&dir.path().join("i.db")).await.unwrap(),
    ))
    .await;
}

#[tokio::test]
async fn memory_marks_behave() {
    pop3_marks_behave(Arc::new(MemoryMarks::default())).await;
    imap_marks_behave(Arc::new(MemoryMarks::default())).await;
}

/// A restarted standalone finds its marks: no mailbox is announced again
/// from the start, and an IMAP watcher resumes where it was.
#[tokio::test]
async fn sqlite_marks_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("marks.db");
    {
        let marks = SqliteMarks::open(&path).await.unwrap();
        marks.baseline("pop", &set(&["u1"])).await.unwrap();
        marks
            .advance(
                "imap",
                "INBOX",
                ImapMark {
                    uid_validity: 1,
                    last_uid: 42,
                    updated_ms: 5,
                },
                Some("<x@y>"),
            )
            .await
            .unwrap();
    }
    let marks = SqliteMarks::open(&path).await.unwrap();
    assert_eq!(marks.seen("pop").await.unwrap(), Some(set(&["u1"])));
    assert_eq!(
        marks
            .get("imap", "INBOX")
            .await
            .unwrap()
            .map(|m| m.last_uid),
        Some(42)
    );
}
