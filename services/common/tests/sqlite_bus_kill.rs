//! kill -9 of a process publishing to the SQLite bus: every record whose
//! publish returned is in the file when it is opened again.
//!
//! The test binary plays both parts: the parent re-executes itself with
//! [`CHILD`] set, so `publisher_child` publishes (64 at a time, so records
//! share transactions) and prints each id once its publish returned; the
//! parent kills it with SIGKILL mid-stream and reads the file back.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::collections::HashSet;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use pushmail_common::bus::{
    EventBus, OutboundRecord, SqliteBus, SqliteBusConfig, SubscribeOptions,
};
use tokio::io::AsyncBufReadExt as _;

/// Names the bus file when the binary runs as the publishing child.
const CHILD: &str = "PUSHMAIL_TEST_SQLITE_BUS_CHILD";

/// Ids the parent waits to see confirmed before the kill.
const BEFORE_KILL: usize = 3_000;

fn config(path: &std::path::Path) -> SqliteBusConfig {
    SqliteBusConfig {
        path: path.to_path_buf(),
        partitions: 3,
        // Nothing is trimmed or refused: every confirmed id must be there.
        partition_capacity: 1_000_000,
        ..SqliteBusConfig::default()
    }
}

fn options() -> SubscribeOptions {
    SubscribeOptions {
        group: "check".into(),
        topics: vec!["t".into()],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_child() {
    let Some(path) = std::env::var_os(CHILD) else {
        return; // Run as a test of its own: nothing to do.
    };
    let bus = Arc::new(SqliteBus::open(&config(path.as_ref())).await.unwrap());
    // The group pins the records for the parent's check.
    let pin = bus.subscribe(options()).await.unwrap();
    pin.close().await.unwrap();
    let (done, mut confirmed) = tokio::sync::mpsc::unbounded_channel::<u32>();
    for lane in 0..64u32 {
        let (bus, done) = (bus.clone(), done.clone());
        tokio::spawn(async move {
            for i in (lane..).step_by(64) {
                let record = OutboundRecord {
                    key: format!("k{}", i % 97).into_bytes(),
                    payload: i.to_be_bytes().to_vec(),
                    headers: Default::default(),
                };
                bus.publish("t", record).await.unwrap();
                done.send(i).unwrap();
            }
        });
    }
    let mut out = std::io::stdout().lock();
    while let Some(i) = confirmed.recv().await {
        writeln!(out, "{i}").unwrap();
        out.flush().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_publish_that_returned_survives_sigkill() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.db");
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "publisher_child", "--nocapture"])
        .env(CHILD, &path)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut confirmed = HashSet::new();
    let read = tokio::time::timeout(Duration::from_secs(60), async {
        while confirmed.len() < BEFORE_KILL {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("child stopped early");
            if let Ok(id) = line.trim().parse::<u32>() {
                confirmed.insert(id);
            }
        }
    });
    read.await.expect("the child confirms publishes");
    // SIGKILL: no destructor, no flush, no clean close of the file.
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    // Confirmations already in the pipe count too: those publishes returned.
    while let Ok(Some(line)) = lines.next_line().await {
        if let Ok(id) = line.trim().parse::<u32>() {
            confirmed.insert(id);
        }
    }

    let bus = SqliteBus::open(&config(&path)).await.unwrap();
    let mut sub = bus.subscribe(options()).await.unwrap();
    let mut stored = HashSet::new();
    while let Ok(next) = tokio::time::timeout(Duration::from_millis(500), sub.next()).await {
        let record = next.unwrap();
        stored.insert(u32::from_be_bytes(record.payload.try_into().unwrap()));
    }
    let missing: Vec<_> = confirmed.difference(&stored).collect();
    eprintln!(
        "sigkill: {} publishes returned before the kill, {} records in the file",
        confirmed.len(),
        stored.len()
    );
    assert!(missing.is_empty(), "confirmed but lost: {missing:?}");
    assert!(
        stored.len() >= confirmed.len(),
        "nothing but what was published"
    );
}
