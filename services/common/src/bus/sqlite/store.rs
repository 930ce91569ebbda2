//! The bus file's tables and the statements that read and write them.
//!
//! `bus_records` holds each record from publish until every group has
//! committed past it; `bus_partitions` the first offset a partition still
//! holds (so offsets continue after everything was deleted, and a group's
//! committed offset never points past a reused one); `bus_offsets` each
//! group's committed offsets.

use sqlx::Row as _;
use sqlx::sqlite::SqlitePool;

use super::super::Headers;
use super::super::log::{Journal, PartitionKey, Reservation, State, Stored};

/// Created on open when missing.
pub(super) const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS bus_partitions (
        topic TEXT NOT NULL,
        part INTEGER NOT NULL,
        start INTEGER NOT NULL,
        PRIMARY KEY (topic, part)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS bus_records (
        topic TEXT NOT NULL,
        part INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        key BLOB NOT NULL,
        payload BLOB NOT NULL,
        headers TEXT NOT NULL,
        timestamp_ms INTEGER NOT NULL,
        PRIMARY KEY (topic, part, seq)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS bus_offsets (
        grp TEXT NOT NULL,
        topic TEXT NOT NULL,
        part INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (grp, topic, part)) WITHOUT ROWID",
];

/// A record to write, at the offset it will have.
pub(super) struct Pending<'a> {
    pub(super) offset: i64,
    pub(super) reservation: &'a Reservation,
    pub(super) record: &'a Stored,
}

/// Writes `records` and `journal` in one transaction: on disk (WAL,
/// synchronous FULL) when this returns.
pub(super) async fn write(
    pool: &SqlitePool,
    records: &[Pending<'_>],
    journal: &Journal,
) -> Result<(), sqlx::Error> {
    if records.is_empty() && journal.offsets.is_empty() && journal.starts.is_empty() {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    for pending in records {
        let headers = serde_json::to_string(&pending.record.headers)
            .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        // REPLACE: a commit that failed after reaching the disk left rows
        // whose publishers were told it failed; their offsets are reused.
        sqlx::query(
            "INSERT OR REPLACE INTO bus_records \
             (topic, part, seq, key, payload, headers, timestamp_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(&pending.reservation.topic)
        .bind(pending.reservation.partition)
        .bind(pending.offset)
        .bind(&pending.record.key)
        .bind(&pending.record.payload)
        .bind(headers)
        .bind(pending.record.timestamp_ms)
        .execute(&mut *tx)
        .await?;
    }
    let now = crate::clock::now_ms();
    for (group, topic, partition, offset) in &journal.offsets {
        // max(): a late write of an older value never moves a group back.
        sqlx::query(
            "INSERT INTO bus_offsets (grp, topic, part, seq, updated_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (grp, topic, part) DO UPDATE \
             SET seq = max(seq, excluded.seq), updated_ms = excluded.updated_ms",
        )
        .bind(group)
        .bind(topic)
        .bind(partition)
        .bind(offset)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    for (topic, partition, start) in &journal.starts {
        sqlx::query(
            "INSERT INTO bus_partitions (topic, part, start) VALUES (?1, ?2, ?3) \
             ON CONFLICT (topic, part) DO UPDATE SET start = max(start, excluded.start)",
        )
        .bind(topic)
        .bind(partition)
        .bind(start)
        .execute(&mut *tx)
        .await?;
        // Retention: every group is past these (or nobody reads the topic
        // and they are beyond its newest `partition_capacity`).
        sqlx::query("DELETE FROM bus_records WHERE topic = ?1 AND part = ?2 AND seq < ?3")
            .bind(topic)
            .bind(partition)
            .bind(start)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// Forgets groups idle since `idle_before_ms`, then reads the log back.
pub(super) async fn load(pool: &SqlitePool, idle_before_ms: i64) -> Result<State, sqlx::Error> {
    sqlx::query(
        "DELETE FROM bus_offsets WHERE grp IN \
         (SELECT grp FROM bus_offsets GROUP BY grp HAVING max(updated_ms) < ?1)",
    )
    .bind(idle_before_ms)
    .execute(pool)
    .await?;
    let mut state = State::journaled();
    let starts = sqlx::query("SELECT topic, part, start FROM bus_partitions ORDER BY topic, part")
        .fetch_all(pool)
        .await?;
    for row in starts {
        let (topic, partition): (String, i32) = (row.try_get(0)?, row.try_get(1)?);
        let start: i64 = row.try_get(2)?;
        let rows = sqlx::query(
            "SELECT seq, key, payload, headers, timestamp_ms FROM bus_records \
             WHERE topic = ?1 AND part = ?2 AND seq >= ?3 ORDER BY seq",
        )
        .bind(&topic)
        .bind(partition)
        .bind(start)
        .fetch_all(pool)
        .await?;
        // Rows are written in offset order and deleted from the front, so
        // they are contiguous from the first one.
        let base = match rows.first() {
            Some(first) => first.try_get::<i64, _>(0)?.max(start),
            None => start,
        };
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            let headers: String = row.try_get(3)?;
            let headers: Headers =
                serde_json::from_str(&headers).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            records.push(Stored {
                key: row.try_get(1)?,
                payload: row.try_get(2)?,
                headers,
                timestamp_ms: row.try_get(4)?,
            });
        }
        state.restore_partition(&topic, partition, base, records);
    }
    let offsets = sqlx::query("SELECT grp, topic, part, seq FROM bus_offsets")
        .fetch_all(pool)
        .await?;
    for row in offsets {
        let group: String = row.try_get(0)?;
        let key: PartitionKey = (row.try_get(1)?, row.try_get(2)?);
        state.restore_offset(&group, key, row.try_get(3)?);
    }
    Ok(state)
}
