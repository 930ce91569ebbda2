//! The outbox in a SQLite file under standalone's data directory, so a
//! restarted (or killed) process still replays what its phones have not
//! acked, in the generation they know. The same semantics as the Redis
//! outbox: per device a row of counters (generation, seq, acked, lost and
//! when it was last touched), its entries, its remembered idempotency keys
//! and its collapse keys; a device untouched for `ttl_seconds` starts over
//! with a new generation.
//!
//! Every call goes through the file's group commit
//! ([`pushmail_common::sqlite::GroupCommit`]): calls waiting at once share one
//! transaction, each in its own savepoint, and each caller hears back
//! after the COMMIT, so an append that returned is on disk. A held Ping's
//! read ([`Outbox::waiting`]) is the exception: it is one statement on a
//! reader beside the writer, so it neither waits for a batch's fsync nor
//! adds to it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use prost::Message as _;
use pushmail_proto::session::v1::Notification;
use sqlx::Row as _;
use sqlx::sqlite::{SqliteConnection, SqlitePool, SqliteRow};

use pushmail_common::sqlite::GroupCommit;

use super::{
    Acked, AppendState, Appended, Cursor, Outbox, OutboxError, OutboxSettings, Replay,
    new_generation, replayed, resume, stored,
};

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS outbox_devices (
        tenant TEXT NOT NULL,
        device TEXT NOT NULL,
        generation INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        acked INTEGER NOT NULL,
        lost INTEGER NOT NULL,
        touched_ms INTEGER NOT NULL,
        PRIMARY KEY (tenant, device))",
    "CREATE INDEX IF NOT EXISTS outbox_devices_by_touch ON outbox_devices (touched_ms)",
    "CREATE TABLE IF NOT EXISTS outbox_entries (
        tenant TEXT NOT NULL,
        device TEXT NOT NULL,
        seq INTEGER NOT NULL,
        notification BLOB NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (tenant, device, seq))",
    "CREATE TABLE IF NOT EXISTS outbox_keys (
        tenant TEXT NOT NULL,
        device TEXT NOT NULL,
        key TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (tenant, device, key))",
    "CREATE INDEX IF NOT EXISTS outbox_keys_by_seq ON outbox_keys (tenant, device, seq)",
    "CREATE TABLE IF NOT EXISTS outbox_collapse (
        tenant TEXT NOT NULL,
        device TEXT NOT NULL,
        collapse_key TEXT NOT NULL,
        seq INTEGER NOT NULL,
        first_ms INTEGER NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (tenant, device, collapse_key))",
];

/// Deletes one device's outbox (?1 tenant, ?2 device), counters last.
const FORGET: &[&str] = &[
    "DELETE FROM outbox_entries WHERE tenant = ?1 AND device = ?2",
    "DELETE FROM outbox_keys WHERE tenant = ?1 AND device = ?2",
    "DELETE FROM outbox_collapse WHERE tenant = ?1 AND device = ?2",
    "DELETE FROM outbox_devices WHERE tenant = ?1 AND device = ?2",
];

/// Deletes the outboxes untouched since ?1, counters last.
const SWEEP: &[&str] = &[
    "DELETE FROM outbox_entries WHERE (tenant, device) IN \
     (SELECT tenant, device FROM outbox_devices WHERE touched_ms <= ?1)",
    "DELETE FROM outbox_keys WHERE (tenant, device) IN \
     (SELECT tenant, device FROM outbox_devices WHERE touched_ms <= ?1)",
    "DELETE FROM outbox_collapse WHERE (tenant, device) IN \
     (SELECT tenant, device FROM outbox_devices WHERE touched_ms <= ?1)",
    "DELETE FROM outbox_devices WHERE touched_ms <= ?1",
];

/// Expired devices are swept once per this many appends, not on each.
const SWEEP_EVERY: u64 = 4_096;

/// SQLite-backed outbox (standalone).
#[derive(Debug)]
pub struct SqliteOutbox {
    group: GroupCommit,
    writer: Arc<Writer>,
    reader: SqlitePool,
}

/// What every call needs besides the connection.
#[derive(Debug)]
struct Writer {
    settings: OutboxSettings,
    appends: AtomicU64,
}

/// A device's counters.
#[derive(Debug, Clone, Copy)]
struct Meta {
    generation: u64,
    seq: u64,
    acked: u64,
    lost: u64,
}

/// SQLite integers are signed; sequences and generations stay below 2^63.
fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn uint(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn now_ms() -> i64 {
    pushmail_common::clock::now_ms()
}

impl SqliteOutbox {
    /// Opens (and creates) the outbox at `path`; its writer ends (closing
    /// the file) once the outbox is dropped.
    pub async fn open(path: &Path, settings: OutboxSettings) -> Result<Self, OutboxError> {
        let pool = pushmail_common::sqlite::open(path, SCHEMA).await?;
        let reader = pushmail_common::sqlite::reader(path).await?;
        Ok(Self {
            reader,
            group: GroupCommit::start(pool),
            writer: Arc::new(Writer {
                settings,
                appends: AtomicU64::new(0),
            }),
        })
    }
}

impl Writer {
    fn ttl_ms(&self) -> i64 {
        int(self.settings.ttl_seconds.saturating_mul(1_000))
    }

    /// Removes everything the device's outbox holds.
    async fn forget(
        tx: &mut SqliteConnection,
        tenant: &str,
        device: &str,
    ) -> Result<(), OutboxError> {
        for statement in FORGET {
            sqlx::query(*statement)
                .bind(tenant)
                .bind(device)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }

    /// The device's outbox, created (with a new generation) when there is
    /// none or it expired; kept another TTL from `now`. One statement when
    /// it lives (the writer answers each statement from its own thread:
    /// statements, not fsyncs, are what an append costs once batched).
    async fn live(
        &self,
        tx: &mut SqliteConnection,
        tenant: &str,
        device: &str,
        now: i64,
    ) -> Result<Meta, OutboxError> {
        let kept = sqlx::query(
            "UPDATE outbox_devices SET touched_ms = ?3 \
             WHERE tenant = ?1 AND device = ?2 AND ?3 - touched_ms < ?4 \
             RETURNING generation, seq, acked, lost",
        )
        .bind(tenant)
        .bind(device)
        .bind(now)
        .bind(self.ttl_ms())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = kept {
            return Ok(Meta {
                generation: uint(row.try_get(0)?),
                seq: uint(row.try_get(1)?),
                acked: uint(row.try_get(2)?),
                lost: uint(row.try_get(3)?),
            });
        }
        // None, or expired: a new outbox.
        Self::forget(tx, tenant, device).await?;
        let meta = Meta {
            generation: new_generation(),
            seq: 0,
            acked: 0,
            lost: 0,
        };
        sqlx::query(
            "INSERT INTO outbox_devices \
             (tenant, device, generation, seq, acked, lost, touched_ms) \
             VALUES (?1, ?2, ?3, 0, 0, 0, ?4)",
        )
        .bind(tenant)
        .bind(device)
        .bind(int(meta.generation))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        Ok(meta)
    }

    /// Deletes the outboxes untouched for a TTL, with everything they hold.
    async fn sweep(&self, tx: &mut SqliteConnection, now: i64) -> Result<(), OutboxError> {
        let horizon = now.saturating_sub(self.ttl_ms());
        for statement in SWEEP {
            sqlx::query(*statement)
                .bind(horizon)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }

    /// What an append whose idempotency key is known answers (`None` when
    /// it has none).
    async fn known(
        tx: &mut SqliteConnection,
        notification: &Notification,
        meta: Meta,
    ) -> Result<Option<Appended>, OutboxError> {
        let key = &notification.idempotency_key;
        if key.is_empty() {
            return Ok(None);
        }
        let seq: Option<i64> = sqlx::query_scalar(
            "SELECT seq FROM outbox_keys WHERE tenant = ?1 AND device = ?2 AND key = ?3",
        )
        .bind(&notification.tenant_id)
        .bind(&notification.device_id)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(seq) = seq.map(uint) else {
            return Ok(None);
        };
        let count: Option<i64> = sqlx::query_scalar(
            "SELECT count FROM outbox_entries WHERE tenant = ?1 AND device = ?2 AND seq = ?3",
        )
        .bind(&notification.tenant_id)
        .bind(&notification.device_id)
        .bind(int(seq))
        .fetch_optional(&mut *tx)
        .await?;
        Ok(Some(Appended {
            generation: meta.generation,
            seq,
            state: if seq <= meta.acked {
                AppendState::Acked
            } else {
                AppendState::Pending
            },
            count: count.map_or(1, |c| u32::try_from(c).unwrap_or(1)),
        }))
    }

    /// Replaces the unacked notification of the same collapse key appended
    /// within the window: its count and first time, for the new one's.
    async fn coalesce(
        &self,
        tx: &mut SqliteConnection,
        notification: &Notification,
        seq: u64,
        now: i64,
    ) -> Result<u32, OutboxError> {
        let (tenant, device, collapse) = (
            &notification.tenant_id,
            &notification.device_id,
            self.settings.collapse_key(notification),
        );
        if collapse.is_empty() {
            return Ok(1);
        }
        let previous = sqlx::query(
            "SELECT seq, first_ms, count FROM outbox_collapse \
             WHERE tenant = ?1 AND device = ?2 AND collapse_key = ?3",
        )
        .bind(tenant)
        .bind(device)
        .bind(collapse)
        .fetch_optional(&mut *tx)
        .await?;
        let (mut count, mut first) = (1_i64, now);
        if let Some(row) = previous {
            let (pseq, pfirst, pcount): (i64, i64, i64) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            if now.saturating_sub(pfirst) <= int(self.settings.coalesce_ms) {
                let removed = sqlx::query(
                    "DELETE FROM outbox_entries WHERE tenant = ?1 AND device = ?2 AND seq = ?3",
                )
                .bind(tenant)
                .bind(device)
                .bind(pseq)
                .execute(&mut *tx)
                .await?;
                if removed.rows_affected() == 1 {
                    count = pcount.saturating_add(1);
                    first = pfirst;
                }
            }
        }
        sqlx::query(
            "INSERT INTO outbox_collapse (tenant, device, collapse_key, seq, first_ms, count) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (tenant, device, collapse_key) \
             DO UPDATE SET seq = ?4, first_ms = ?5, count = ?6",
        )
        .bind(tenant)
        .bind(device)
        .bind(collapse)
        .bind(int(seq))
        .bind(first)
        .bind(count)
        .execute(&mut *tx)
        .await?;
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    /// Drops the oldest entries so one more fits under the cap; returns the
    /// highest sequence dropped, if any.
    async fn make_room(
        &self,
        tx: &mut SqliteConnection,
        tenant: &str,
        device: &str,
        meta: Meta,
    ) -> Result<Option<u64>, OutboxError> {
        // An ack trims everything up to it, so the entries held are at most
        // the sequences after it: when one more fits under that bound, no
        // count is needed.
        let bound = (meta.seq + 1).saturating_sub(meta.acked.min(meta.seq));
        if bound <= self.settings.max_per_device as u64 {
            return Ok(None);
        }
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM outbox_entries WHERE tenant = ?1 AND device = ?2",
        )
        .bind(tenant)
        .bind(device)
        .fetch_one(&mut *tx)
        .await?;
        let excess = held.saturating_sub(int(self.settings.max_per_device as u64)) + 1;
        if excess <= 0 {
            return Ok(None);
        }
        let dropped: i64 = sqlx::query_scalar(
            "SELECT seq FROM outbox_entries WHERE tenant = ?1 AND device = ?2 \
             ORDER BY seq LIMIT 1 OFFSET ?3",
        )
        .bind(tenant)
        .bind(device)
        .bind(excess - 1)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM outbox_entries WHERE tenant = ?1 AND device = ?2 AND seq <= ?3")
            .bind(tenant)
            .bind(device)
            .bind(dropped)
            .execute(&mut *tx)
            .await?;
        Ok(Some(uint(dropped)))
    }

    /// Remembers the idempotency key for the entry about to be `seq`;
    /// `false` when the key is known already (a redelivery).
    async fn claim_key(
        tx: &mut SqliteConnection,
        notification: &Notification,
        seq: u64,
    ) -> Result<bool, OutboxError> {
        if notification.idempotency_key.is_empty() {
            return Ok(true);
        }
        let inserted = sqlx::query(
            "INSERT INTO outbox_keys (tenant, device, key, seq) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&notification.tenant_id)
        .bind(&notification.device_id)
        .bind(&notification.idempotency_key)
        .bind(int(seq))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// Forgets keys far enough back that no redelivery names them.
    async fn forget_old_keys(
        &self,
        tx: &mut SqliteConnection,
        notification: &Notification,
        seq: u64,
    ) -> Result<(), OutboxError> {
        let floor = seq.saturating_sub(self.settings.keys_remembered() as u64);
        if notification.idempotency_key.is_empty() || floor == 0 {
            return Ok(());
        }
        sqlx::query("DELETE FROM outbox_keys WHERE tenant = ?1 AND device = ?2 AND seq <= ?3")
            .bind(&notification.tenant_id)
            .bind(&notification.device_id)
            .bind(int(floor))
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}

/// Rows of (seq, notification, count) as the device gets them.
fn decoded(rows: Vec<SqliteRow>, device: &str) -> Result<Vec<Notification>, OutboxError> {
    let mut notifications = Vec::with_capacity(rows.len());
    for row in rows {
        let seq = uint(row.try_get(0)?);
        let bytes: Vec<u8> = row.try_get(1)?;
        let count: i64 = row.try_get(2)?;
        // An entry that does not decode (written by a future version, or
        // damaged) is skipped, as the Redis outbox does: one bad row must
        // not stop the replay of the rest.
        match Notification::decode(bytes.as_slice()) {
            Ok(notification) => notifications.push(replayed(
                notification,
                seq,
                u32::try_from(count).unwrap_or(1),
            )),
            Err(err) => tracing::warn!(device, seq, %err, "outbox entry skipped"),
        }
    }
    Ok(notifications)
}

impl Writer {
    async fn append(
        &self,
        tx: &mut SqliteConnection,
        notification: &Notification,
        now: i64,
    ) -> Result<Appended, OutboxError> {
        let (tenant, device) = (&notification.tenant_id, &notification.device_id);
        if self
            .appends
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SWEEP_EVERY)
        {
            self.sweep(tx, now).await?;
        }
        let meta = self.live(tx, tenant, device, now).await?;
        let seq = meta.seq + 1;
        if !Self::claim_key(tx, notification, seq).await?
            && let Some(known) = Self::known(tx, notification, meta).await?
        {
            return Ok(known);
        }
        let count = self.coalesce(tx, notification, seq, now).await?;
        let lost = self
            .make_room(tx, tenant, device, meta)
            .await?
            .map_or(meta.lost, |dropped| meta.lost.max(dropped));
        sqlx::query(
            "INSERT INTO outbox_entries (tenant, device, seq, notification, count) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(tenant)
        .bind(device)
        .bind(int(seq))
        .bind(stored(notification).encode_to_vec())
        .bind(i64::from(count))
        .execute(&mut *tx)
        .await?;
        self.forget_old_keys(tx, notification, seq).await?;
        sqlx::query(
            "UPDATE outbox_devices SET seq = ?3, lost = ?4 WHERE tenant = ?1 AND device = ?2",
        )
        .bind(tenant)
        .bind(device)
        .bind(int(seq))
        .bind(int(lost))
        .execute(&mut *tx)
        .await?;
        Ok(Appended {
            generation: meta.generation,
            seq,
            state: AppendState::New,
            count,
        })
    }

    async fn after(
        &self,
        tx: &mut SqliteConnection,
        tenant: &str,
        device: &str,
        cursor: Cursor,
        limit: usize,
        now: i64,
    ) -> Result<Replay, OutboxError> {
        let meta = self.live(tx, tenant, device, now).await?;
        let (from, resync) = resume(cursor, meta.generation, meta.seq, meta.acked, meta.lost);
        let rows = sqlx::query(
            "SELECT seq, notification, count FROM outbox_entries \
             WHERE tenant = ?1 AND device = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4",
        )
        .bind(tenant)
        .bind(device)
        .bind(int(from))
        .bind(int(limit as u64))
        .fetch_all(&mut *tx)
        .await?;
        Ok(Replay {
            generation: meta.generation,
            from,
            notifications: decoded(rows, device)?,
            resync,
        })
    }

    async fn acked(
        &self,
        tx: &mut SqliteConnection,
        tenant: &str,
        device: &str,
        cursor: Cursor,
        now: i64,
    ) -> Result<Option<Acked>, OutboxError> {
        // The ack applies to a live outbox of its generation (0: the
        // current one) that assigned the sequence: one statement checks
        // and records it.
        let generation: Option<i64> = sqlx::query_scalar(
            "UPDATE outbox_devices SET acked = max(acked, ?3) \
             WHERE tenant = ?1 AND device = ?2 AND (?4 = 0 OR generation = ?4) \
               AND seq >= ?3 AND ?5 - touched_ms < ?6 \
             RETURNING generation",
        )
        .bind(tenant)
        .bind(device)
        .bind(int(cursor.seq))
        .bind(int(cursor.generation))
        .bind(now)
        .bind(self.ttl_ms())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(generation) = generation.map(uint) else {
            return Ok(None);
        };
        let trimmed = sqlx::query(
            "DELETE FROM outbox_entries WHERE tenant = ?1 AND device = ?2 AND seq <= ?3 \
             RETURNING seq, notification, count",
        )
        .bind(tenant)
        .bind(device)
        .bind(int(cursor.seq))
        .fetch_all(&mut *tx)
        .await?;
        let mut notifications = decoded(trimmed, device)?;
        notifications.sort_by_key(|n| n.sequence);
        Ok(Some(Acked {
            generation,
            notifications,
        }))
    }
}

impl SqliteOutbox {
    /// What waits for the device, read without writing: `None` when its
    /// outbox is absent or expired (creating one is the writer's).
    async fn read_waiting(
        &self,
        tenant: &str,
        device: &str,
        limit: usize,
        now: i64,
    ) -> Result<Option<Replay>, OutboxError> {
        // One statement is one snapshot: the counters and the entries
        // agree. The LEFT JOIN gives one row of NULL entry columns when
        // nothing waits.
        let rows = sqlx::query(
            "SELECT e.seq, e.notification, e.count, d.generation, d.seq, d.acked, d.lost \
             FROM outbox_devices d LEFT JOIN outbox_entries e \
               ON e.tenant = d.tenant AND e.device = d.device \
             WHERE d.tenant = ?1 AND d.device = ?2 AND ?3 - d.touched_ms < ?4 \
             ORDER BY e.seq LIMIT ?5",
        )
        .bind(tenant)
        .bind(device)
        .bind(now)
        .bind(self.writer.ttl_ms())
        .bind(int(limit.max(1) as u64))
        .fetch_all(&self.reader)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let meta = Meta {
            generation: uint(first.try_get(3)?),
            seq: uint(first.try_get(4)?),
            acked: uint(first.try_get(5)?),
            lost: uint(first.try_get(6)?),
        };
        let (from, resync) = resume(
            Cursor::default(),
            meta.generation,
            meta.seq,
            meta.acked,
            meta.lost,
        );
        let entries: Vec<SqliteRow> = rows
            .into_iter()
            .filter(|row| matches!(row.try_get::<Option<i64>, _>(0), Ok(Some(_))))
            .collect();
        Ok(Some(Replay {
            generation: meta.generation,
            from,
            notifications: decoded(entries, device)?,
            resync,
        }))
    }
}

#[async_trait]
impl Outbox for SqliteOutbox {
    async fn append(&self, notification: &Notification) -> Result<Appended, OutboxError> {
        let (writer, notification) = (self.writer.clone(), notification.clone());
        self.group
            .call(move |tx| {
                Box::pin(async move { writer.append(tx, &notification, now_ms()).await })
            })
            .await
    }

    async fn after(
        &self,
        tenant: &str,
        device: &str,
        cursor: Cursor,
        limit: usize,
    ) -> Result<Replay, OutboxError> {
        let (writer, tenant, device) = (self.writer.clone(), tenant.to_owned(), device.to_owned());
        self.group
            .call(move |tx| {
                Box::pin(async move {
                    writer
                        .after(tx, &tenant, &device, cursor, limit, now_ms())
                        .await
                })
            })
            .await
    }

    async fn waiting(
        &self,
        tenant: &str,
        device: &str,
        limit: usize,
    ) -> Result<Replay, OutboxError> {
        match self.read_waiting(tenant, device, limit, now_ms()).await? {
            Some(replay) => Ok(replay),
            None => self.after(tenant, device, Cursor::default(), limit).await,
        }
    }

    async fn acked(
        &self,
        tenant: &str,
        device: &str,
        cursor: Cursor,
    ) -> Result<Option<Acked>, OutboxError> {
        let (writer, tenant, device) = (self.writer.clone(), tenant.to_owned(), device.to_owned());
        self.group
            .call(move |tx| {
                Box::pin(async move { writer.acked(tx, &tenant, &device, cursor, now_ms()).await })
            })
            .await
    }
}
