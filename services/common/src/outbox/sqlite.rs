//! The outbox in a SQLite file under standalone's data directory, so a
//! restarted (or killed) process still replays what its phones have not
//! acked, in the generation they know. The same semantics as the Redis
//! outbox: per device a row of counters (generation, seq, acked, lost and
//! when it was last touched), its entries, its remembered idempotency keys
//! and its collapse keys; a device untouched for `ttl_seconds` starts over
//! with a new generation.
//!
//! One writer task owns the file. Calls queue for it, and every call
//! waiting when it comes round shares one transaction (group commit), each
//! in its own savepoint so one that fails undoes only itself; each caller
//! hears back after the COMMIT, so an append that returned is on disk.
//! One fsync per call held the durable standalone to a few hundred
//! notifications a second (bench/reports/e2e.md); one per batch keeps it
//! at the in-memory rate while FULL synchronisation stays.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use prost::Message as _;
use pushmail_proto::session::v1::Notification;
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{Acquire as _, Row as _, Sqlite, Transaction};
use tokio::sync::{mpsc, oneshot};

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

/// Most calls one transaction covers; more wait for the next.
const MAX_BATCH: usize = 512;

/// Calls queued for the writer before callers wait to queue (backpressure
/// instead of unbounded memory when the disk falls behind).
const QUEUE: usize = 4 * MAX_BATCH;

/// SQLite-backed outbox (standalone).
#[derive(Debug)]
pub struct SqliteOutbox {
    jobs: mpsc::Sender<Job>,
}

/// A call waiting for the writer, with where its answer goes.
#[derive(Debug)]
enum Job {
    Append {
        notification: Box<Notification>,
        reply: oneshot::Sender<Result<Appended, OutboxError>>,
    },
    After {
        tenant: String,
        device: String,
        cursor: Cursor,
        limit: usize,
        reply: oneshot::Sender<Result<Replay, OutboxError>>,
    },
    Acked {
        tenant: String,
        device: String,
        cursor: Cursor,
        reply: oneshot::Sender<Result<Option<Acked>, OutboxError>>,
    },
}

/// A call done inside the batch's transaction, its answer held until the
/// COMMIT says whether it stands.
enum Done {
    Append(
        oneshot::Sender<Result<Appended, OutboxError>>,
        Result<Appended, OutboxError>,
    ),
    After(
        oneshot::Sender<Result<Replay, OutboxError>>,
        Result<Replay, OutboxError>,
    ),
    Acked(
        oneshot::Sender<Result<Option<Acked>, OutboxError>>,
        Result<Option<Acked>, OutboxError>,
    ),
}

impl Done {
    /// Answers the caller: its own result when the batch committed (or it
    /// failed by itself), the COMMIT's failure otherwise.
    fn settle(self, commit: &Result<(), Arc<sqlx::Error>>) {
        fn answer<T>(
            reply: oneshot::Sender<Result<T, OutboxError>>,
            outcome: Result<T, OutboxError>,
            commit: &Result<(), Arc<sqlx::Error>>,
        ) {
            let outcome = match commit {
                Ok(()) => outcome,
                Err(err) => outcome.and(Err(OutboxError::Batch(err.clone()))),
            };
            // A caller that stopped waiting (its task was cancelled) needs
            // no answer; what it asked for is written all the same.
            let _ = reply.send(outcome);
        }
        match self {
            Self::Append(reply, outcome) => answer(reply, outcome, commit),
            Self::After(reply, outcome) => answer(reply, outcome, commit),
            Self::Acked(reply, outcome) => answer(reply, outcome, commit),
        }
    }
}

/// The task that owns the file.
struct Writer {
    pool: SqlitePool,
    settings: OutboxSettings,
    appends: u64,
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
    crate::clock::now_ms()
}

impl SqliteOutbox {
    /// Opens (and creates) the outbox at `path` and starts its writer,
    /// which ends (closing the file) once the outbox is dropped.
    pub async fn open(path: &Path, settings: OutboxSettings) -> Result<Self, OutboxError> {
        let pool = crate::sqlite::open(path, SCHEMA).await?;
        let (jobs, queue) = mpsc::channel(QUEUE);
        let writer = Writer {
            pool,
            settings,
            appends: 0,
        };
        tokio::spawn(writer.run(queue));
        Ok(Self { jobs })
    }

    /// Queues `job` and waits for its answer.
    async fn call<T>(
        &self,
        job: Job,
        answer: oneshot::Receiver<Result<T, OutboxError>>,
    ) -> Result<T, OutboxError> {
        self.jobs
            .send(job)
            .await
            .map_err(|_| OutboxError::WriterGone)?;
        answer.await.map_err(|_| OutboxError::WriterGone)?
    }
}

impl Writer {
    /// Writes batches until every sender is gone.
    async fn run(mut self, mut queue: mpsc::Receiver<Job>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
            self.write(batch.drain(..)).await;
        }
        self.pool.close().await;
    }

    /// One transaction for the batch, a savepoint for each call in it.
    async fn write(&mut self, batch: impl Iterator<Item = Job>) {
        let now = now_ms();
        let mut tx = match self.pool.begin().await {
            Ok(tx) => tx,
            Err(err) => {
                let err = Arc::new(err);
                for job in batch {
                    job.fail_with(OutboxError::Batch(err.clone()))
                        .settle(&Ok(()));
                }
                return;
            }
        };
        let mut done = Vec::with_capacity(MAX_BATCH);
        for job in batch {
            done.push(self.job(&mut tx, job, now).await);
        }
        let committed = tx.commit().await.map_err(Arc::new);
        if let Err(err) = &committed {
            tracing::error!(error = %crate::report::Report(err.as_ref()), "outbox file write failed");
        }
        for call in done {
            call.settle(&committed);
        }
    }

    /// Runs `job` in a savepoint of `tx`: released when it succeeded,
    /// rolled back when it failed, so a failed call leaves nothing behind.
    async fn job(&mut self, tx: &mut Transaction<'_, Sqlite>, job: Job, now: i64) -> Done {
        let mut point = match tx.begin().await {
            Ok(point) => point,
            Err(err) => return job.fail_with(err.into()),
        };
        let done = match job {
            Job::Append {
                notification,
                reply,
            } => Done::Append(reply, self.append(&mut point, &notification, now).await),
            Job::After {
                tenant,
                device,
                cursor,
                limit,
                reply,
            } => Done::After(
                reply,
                self.after(&mut point, &tenant, &device, cursor, limit, now)
                    .await,
            ),
            Job::Acked {
                tenant,
                device,
                cursor,
                reply,
            } => Done::Acked(
                reply,
                self.acked(&mut point, &tenant, &device, cursor, now).await,
            ),
        };
        let ended = if done.failed() {
            point.rollback().await
        } else {
            point.commit().await
        };
        match ended {
            Ok(()) => done,
            // The transaction is in doubt: fail this call; the COMMIT
            // decides for the others.
            Err(err) => done.replaced(err.into()),
        }
    }

    fn ttl_ms(&self) -> i64 {
        int(self.settings.ttl_seconds.saturating_mul(1_000))
    }

    /// The device's counters, read as stored (expired or not); `None` when
    /// it has no outbox.
    async fn meta(
        tx: &mut Transaction<'_, Sqlite>,
        tenant: &str,
        device: &str,
    ) -> Result<Option<(Meta, i64)>, OutboxError> {
        let row = sqlx::query(
            "SELECT generation, seq, acked, lost, touched_ms FROM outbox_devices \
             WHERE tenant = ?1 AND device = ?2",
        )
        .bind(tenant)
        .bind(device)
        .fetch_optional(&mut **tx)
        .await?;
        row.map(|row: SqliteRow| {
            Ok((
                Meta {
                    generation: uint(row.try_get(0)?),
                    seq: uint(row.try_get(1)?),
                    acked: uint(row.try_get(2)?),
                    lost: uint(row.try_get(3)?),
                },
                row.try_get(4)?,
            ))
        })
        .transpose()
    }

    /// Removes everything the device's outbox holds.
    async fn forget(
        tx: &mut Transaction<'_, Sqlite>,
        tenant: &str,
        device: &str,
    ) -> Result<(), OutboxError> {
        for statement in FORGET {
            sqlx::query(*statement)
                .bind(tenant)
                .bind(device)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// The device's outbox, created (with a new generation) when there is
    /// none or it expired; kept another TTL from `now`.
    async fn live(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        tenant: &str,
        device: &str,
        now: i64,
    ) -> Result<Meta, OutboxError> {
        let meta = match Self::meta(tx, tenant, device).await? {
            Some((meta, touched)) if now.saturating_sub(touched) < self.ttl_ms() => meta,
            _ => {
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
                .execute(&mut **tx)
                .await?;
                return Ok(meta);
            }
        };
        sqlx::query("UPDATE outbox_devices SET touched_ms = ?3 WHERE tenant = ?1 AND device = ?2")
            .bind(tenant)
            .bind(device)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        Ok(meta)
    }

    /// Deletes the outboxes untouched for a TTL, with everything they hold.
    async fn sweep(&self, tx: &mut Transaction<'_, Sqlite>, now: i64) -> Result<(), OutboxError> {
        let horizon = now.saturating_sub(self.ttl_ms());
        for statement in SWEEP {
            sqlx::query(*statement)
                .bind(horizon)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// What an append whose idempotency key is known answers.
    async fn known(
        tx: &mut Transaction<'_, Sqlite>,
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
        .fetch_optional(&mut **tx)
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
        .fetch_optional(&mut **tx)
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
        tx: &mut Transaction<'_, Sqlite>,
        notification: &Notification,
        seq: u64,
        now: i64,
    ) -> Result<u32, OutboxError> {
        let (tenant, device, collapse) = (
            &notification.tenant_id,
            &notification.device_id,
            &notification.collapse_key,
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
        .fetch_optional(&mut **tx)
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
                .execute(&mut **tx)
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
        .execute(&mut **tx)
        .await?;
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    /// Drops the oldest entries so one more fits under the cap; returns the
    /// highest sequence dropped, if any.
    async fn make_room(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        tenant: &str,
        device: &str,
    ) -> Result<Option<u64>, OutboxError> {
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM outbox_entries WHERE tenant = ?1 AND device = ?2",
        )
        .bind(tenant)
        .bind(device)
        .fetch_one(&mut **tx)
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
        .fetch_one(&mut **tx)
        .await?;
        sqlx::query("DELETE FROM outbox_entries WHERE tenant = ?1 AND device = ?2 AND seq <= ?3")
            .bind(tenant)
            .bind(device)
            .bind(dropped)
            .execute(&mut **tx)
            .await?;
        Ok(Some(uint(dropped)))
    }

    /// Remembers the idempotency key of the entry at `seq`, forgetting keys
    /// far enough back that no redelivery names them.
    async fn remember(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        notification: &Notification,
        seq: u64,
    ) -> Result<(), OutboxError> {
        if notification.idempotency_key.is_empty() {
            return Ok(());
        }
        let (tenant, device) = (&notification.tenant_id, &notification.device_id);
        sqlx::query("INSERT INTO outbox_keys (tenant, device, key, seq) VALUES (?1, ?2, ?3, ?4)")
            .bind(tenant)
            .bind(device)
            .bind(&notification.idempotency_key)
            .bind(int(seq))
            .execute(&mut **tx)
            .await?;
        let floor = seq.saturating_sub(self.settings.keys_remembered() as u64);
        if floor > 0 {
            sqlx::query("DELETE FROM outbox_keys WHERE tenant = ?1 AND device = ?2 AND seq <= ?3")
                .bind(tenant)
                .bind(device)
                .bind(int(floor))
                .execute(&mut **tx)
                .await?;
        }
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
        &mut self,
        tx: &mut Transaction<'_, Sqlite>,
        notification: &Notification,
        now: i64,
    ) -> Result<Appended, OutboxError> {
        let (tenant, device) = (&notification.tenant_id, &notification.device_id);
        if self.appends.is_multiple_of(SWEEP_EVERY) {
            self.sweep(tx, now).await?;
        }
        self.appends = self.appends.wrapping_add(1);
        let meta = self.live(tx, tenant, device, now).await?;
        if let Some(known) = Self::known(tx, notification, meta).await? {
            return Ok(known);
        }
        let seq = meta.seq + 1;
        let count = self.coalesce(tx, notification, seq, now).await?;
        let lost = self
            .make_room(tx, tenant, device)
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
        .execute(&mut **tx)
        .await?;
        self.remember(tx, notification, seq).await?;
        sqlx::query(
            "UPDATE outbox_devices SET seq = ?3, lost = ?4 WHERE tenant = ?1 AND device = ?2",
        )
        .bind(tenant)
        .bind(device)
        .bind(int(seq))
        .bind(int(lost))
        .execute(&mut **tx)
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
        tx: &mut Transaction<'_, Sqlite>,
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
        .fetch_all(&mut **tx)
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
        tx: &mut Transaction<'_, Sqlite>,
        tenant: &str,
        device: &str,
        cursor: Cursor,
        now: i64,
    ) -> Result<Option<Acked>, OutboxError> {
        let Some((meta, touched)) = Self::meta(tx, tenant, device).await? else {
            return Ok(None);
        };
        let expired = now.saturating_sub(touched) >= self.ttl_ms();
        let other = cursor.generation != 0 && cursor.generation != meta.generation;
        if expired || other || cursor.seq > meta.seq {
            return Ok(None);
        }
        sqlx::query(
            "UPDATE outbox_devices SET acked = max(acked, ?3) WHERE tenant = ?1 AND device = ?2",
        )
        .bind(tenant)
        .bind(device)
        .bind(int(cursor.seq))
        .execute(&mut **tx)
        .await?;
        let trimmed = sqlx::query(
            "DELETE FROM outbox_entries WHERE tenant = ?1 AND device = ?2 AND seq <= ?3 \
             RETURNING seq, notification, count",
        )
        .bind(tenant)
        .bind(device)
        .bind(int(cursor.seq))
        .fetch_all(&mut **tx)
        .await?;
        let mut notifications = decoded(trimmed, device)?;
        notifications.sort_by_key(|n| n.sequence);
        Ok(Some(Acked {
            generation: meta.generation,
            notifications,
        }))
    }
}

impl Job {
    /// The call failed before it ran.
    fn fail_with(self, err: OutboxError) -> Done {
        match self {
            Self::Append { reply, .. } => Done::Append(reply, Err(err)),
            Self::After { reply, .. } => Done::After(reply, Err(err)),
            Self::Acked { reply, .. } => Done::Acked(reply, Err(err)),
        }
    }
}

impl Done {
    fn failed(&self) -> bool {
        match self {
            Self::Append(_, outcome) => outcome.is_err(),
            Self::After(_, outcome) => outcome.is_err(),
            Self::Acked(_, outcome) => outcome.is_err(),
        }
    }

    /// The call's result is void: `err` answers it instead.
    fn replaced(self, err: OutboxError) -> Self {
        match self {
            Self::Append(reply, _) => Self::Append(reply, Err(err)),
            Self::After(reply, _) => Self::After(reply, Err(err)),
            Self::Acked(reply, _) => Self::Acked(reply, Err(err)),
        }
    }
}

#[async_trait]
impl Outbox for SqliteOutbox {
    async fn append(&self, notification: &Notification) -> Result<Appended, OutboxError> {
        let (reply, answer) = oneshot::channel();
        let job = Job::Append {
            notification: Box::new(notification.clone()),
            reply,
        };
        self.call(job, answer).await
    }

    async fn after(
        &self,
        tenant: &str,
        device: &str,
        cursor: Cursor,
        limit: usize,
    ) -> Result<Replay, OutboxError> {
        let (reply, answer) = oneshot::channel();
        let job = Job::After {
            tenant: tenant.to_owned(),
            device: device.to_owned(),
            cursor,
            limit,
            reply,
        };
        self.call(job, answer).await
    }

    async fn acked(
        &self,
        tenant: &str,
        device: &str,
        cursor: Cursor,
    ) -> Result<Option<Acked>, OutboxError> {
        let (reply, answer) = oneshot::channel();
        let job = Job::Acked {
            tenant: tenant.to_owned(),
            device: device.to_owned(),
            cursor,
            reply,
        };
        self.call(job, answer).await
    }
}
