use std::time::Duration;

use super::*;
use crate::bus::Headers;

fn config(dir: &tempfile::TempDir, capacity: usize) -> SqliteBusConfig {
    SqliteBusConfig {
        path: dir.path().join("data").join("bus.db"),
        partitions: 1,
        partition_capacity: capacity,
        publish_timeout_ms: 50,
        ..SqliteBusConfig::default()
    }
}

fn record(n: u8) -> OutboundRecord {
    OutboundRecord {
        key: vec![1],
        payload: vec![n],
        headers: Headers::from([("event-id".to_owned(), format!("e{n}"))]),
    }
}

fn group(name: &str) -> SubscribeOptions {
    SubscribeOptions {
        group: name.into(),
        topics: vec!["t".into()],
    }
}

async fn rows(bus: &SqliteBus) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM bus_records")
        .fetch_one(&bus.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_reopened_bus_redelivers_what_was_not_committed_and_only_that() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir, 100);
    {
        let bus = SqliteBus::open(&config).await.unwrap();
        let mut sub = bus.subscribe(group("g")).await.unwrap();
        for n in 0..5 {
            let delivered = bus.publish("t", record(n)).await.unwrap();
            assert_eq!(delivered.offset, i64::from(n));
        }
        for _ in 0..2 {
            let r = sub.next().await.unwrap();
            sub.commit(&r).await.unwrap();
        }
        // Handed out but never committed: must come again.
        sub.next().await.unwrap();
        bus.flush().await.unwrap();
    }
    let bus = SqliteBus::open(&config).await.unwrap();
    let mut sub = bus.subscribe(group("g")).await.unwrap();
    let again = sub.next().await.unwrap();
    assert_eq!((again.offset, again.payload.clone()), (2, vec![2]));
    assert_eq!(again.headers["event-id"], "e2", "headers survive");
    assert!(again.timestamp_ms.is_some());
    assert_eq!(sub.next().await.unwrap().offset, 3);
    assert_eq!(sub.next().await.unwrap().offset, 4);
    assert!(
        tokio::time::timeout(Duration::from_millis(50), sub.next())
            .await
            .is_err(),
        "nothing committed comes twice"
    );
}

#[tokio::test]
async fn records_every_group_committed_are_deleted_and_offsets_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir, 100);
    {
        let bus = SqliteBus::open(&config).await.unwrap();
        let mut a = bus.subscribe(group("a")).await.unwrap();
        let mut b = bus.subscribe(group("b")).await.unwrap();
        for n in 0..10 {
            bus.publish("t", record(n)).await.unwrap();
        }
        for _ in 0..10 {
            let r = a.next().await.unwrap();
            a.commit(&r).await.unwrap();
        }
        bus.flush().await.unwrap();
        assert_eq!(rows(&bus).await, 10, "group b still needs them");
        for _ in 0..6 {
            let r = b.next().await.unwrap();
            b.commit(&r).await.unwrap();
        }
        a.close().await.unwrap();
        b.close().await.unwrap();
        assert_eq!(rows(&bus).await, 4, "what both passed is gone");
    }
    let bus = SqliteBus::open(&config).await.unwrap();
    let delivered = bus.publish("t", record(10)).await.unwrap();
    assert_eq!(delivered.offset, 10, "offsets continue after a restart");
    let mut b = bus.subscribe(group("b")).await.unwrap();
    assert_eq!(b.next().await.unwrap().offset, 6);
}

#[tokio::test]
async fn a_full_backlog_pushes_back_by_records_and_by_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let bus = SqliteBus::open(&config(&dir, 2)).await.unwrap();
    let mut sub = bus.subscribe(group("g")).await.unwrap();
    bus.publish("t", record(1)).await.unwrap();
    bus.publish("t", record(2)).await.unwrap();
    let err = bus.publish("t", record(3)).await.unwrap_err();
    assert!(matches!(err, BusError::QueueFull { .. }), "{err}");
    let first = sub.next().await.unwrap();
    sub.commit(&first).await.unwrap();
    assert_eq!(bus.publish("t", record(3)).await.unwrap().offset, 2);

    let dir = tempfile::tempdir().unwrap();
    let config = SqliteBusConfig {
        partition_capacity_bytes: 1_000,
        ..config(&dir, 100)
    };
    let bus = SqliteBus::open(&config).await.unwrap();
    let _sub = bus.subscribe(group("g")).await.unwrap();
    let big = |n| OutboundRecord {
        payload: vec![n; 600],
        ..OutboundRecord::default()
    };
    bus.publish("t", big(1)).await.unwrap();
    let err = bus.publish("t", big(2)).await.unwrap_err();
    assert!(matches!(err, BusError::QueueFull { .. }), "{err}");
}

#[tokio::test]
async fn an_abandoned_group_is_forgotten_after_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir, 2);
    {
        let bus = SqliteBus::open(&config).await.unwrap();
        let sub = bus.subscribe(group("gone")).await.unwrap();
        sub.close().await.unwrap();
    }
    let pool = crate::sqlite::open(&config.path, store::SCHEMA)
        .await
        .unwrap();
    sqlx::query("UPDATE bus_offsets SET updated_ms = 0")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let bus = SqliteBus::open(&config).await.unwrap();
    for n in 0..5 {
        bus.publish("t", record(n))
            .await
            .expect("no group pins the records");
    }
}

#[tokio::test]
async fn a_second_process_cannot_open_a_file_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir, 10);
    let bus = SqliteBus::open(&config).await.unwrap();
    bus.publish("t", record(1)).await.unwrap();
    // Another pool stands for another process: SQLite locks per connection.
    let err = crate::sqlite::open(&config.path, store::SCHEMA)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("locked"), "{err}");
    bus.check().await.unwrap();
}
