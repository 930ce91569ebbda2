//! The durable in-process bus: the memory bus's log, with every record
//! written to a SQLite file (WAL, synchronous FULL) before its publish
//! returns and before any consumer sees it. Standalone uses it, so its SMTP
//! `250` means on disk.
//!
//! One writer task does all the writing: publishes waiting at the same
//! moment share one transaction (one fsync), and committed offsets, new
//! partitions and retention deletes ride along in the same transaction.
//! Offsets committed by consumers are in memory at once (so room frees and
//! publishers proceed) and on disk with the next transaction: a crash
//! redelivers what was committed since, never skips. A record is deleted
//! in the transaction that stores the offsets every group has passed it
//! with, so the file holds at most the backlog the log's bounds allow.
//!
//! On open the log is read back: each group resumes from its committed
//! offsets, and records published but not committed come again.

mod store;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::SqlitePool;
use tokio::sync::{Notify, mpsc, oneshot};

use super::log::{Limits, Log, LogSubscription, Reservation, Stored};
use super::{
    BusError, Delivered, EventBus, InboundRecord, OutboundRecord, SqliteBusConfig,
    SubscribeOptions, Subscription,
};

/// Operations waiting for one transaction.
const MAX_BATCH: usize = 1_024;

/// How long commits alone wait for company before they are written: one
/// transaction then covers a consumer's many commits instead of one each.
const COMMIT_LINGER: Duration = Duration::from_millis(20);

/// Durable in-process [`EventBus`]; clones share the same log and file.
#[derive(Clone)]
pub struct SqliteBus {
    log: Arc<Log>,
    writer: Writer,
    /// The writer's one connection, lent for readiness checks.
    pool: SqlitePool,
}

/// The way to the writer task.
#[derive(Clone)]
struct Writer {
    ops: mpsc::UnboundedSender<Op>,
    /// Offsets were committed: write them soon.
    nudge: Arc<Notify>,
    path: Arc<PathBuf>,
}

enum Op {
    Publish {
        reservation: Reservation,
        record: Stored,
        reply: oneshot::Sender<Result<Delivered, BusError>>,
    },
    /// Answered once everything before it is on disk.
    Flush {
        reply: oneshot::Sender<Result<(), BusError>>,
    },
}

impl SqliteBus {
    /// Opens (creating) the bus file and reads its log back.
    pub async fn open(config: &SqliteBusConfig) -> Result<Self, BusError> {
        let path = config.path.clone();
        let pool = crate::sqlite::open(&path, store::SCHEMA)
            .await
            .map_err(|source| BusError::Open {
                path: path.clone(),
                source,
            })?;
        // Held until the bus is dropped: a second process on this file
        // (two standalones sharing a data_dir) would interleave offsets
        // with ours; it waits out the busy timeout and fails to open.
        sqlx::query("PRAGMA locking_mode = EXCLUSIVE")
            .execute(&pool)
            .await
            .map_err(|e| storage(&path, "locking the file", e))?;
        sqlx::query("BEGIN IMMEDIATE; COMMIT")
            .execute(&pool)
            .await
            .map_err(|e| storage(&path, "locking the file", e))?;
        let retention = Duration::from_secs(config.group_retention_hours.saturating_mul(3_600));
        let idle_before = crate::clock::now_ms()
            .saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
        let state = store::load(&pool, idle_before)
            .await
            .map_err(|e| storage(&path, "reading the log back", e))?;
        let limits = Limits {
            partitions: config.partitions,
            records: config.partition_capacity,
            bytes: config.partition_capacity_bytes,
            publish_timeout: Duration::from_millis(config.publish_timeout_ms),
        };
        let log = Log::new(limits, state);
        let (ops, receiver) = mpsc::unbounded_channel();
        let writer = Writer {
            ops,
            nudge: Arc::new(Notify::new()),
            path: Arc::new(path),
        };
        tokio::spawn(write_loop(
            pool.clone(),
            log.clone(),
            receiver,
            writer.nudge.clone(),
            writer.path.clone(),
        ));
        Ok(Self { log, writer, pool })
    }

    /// Waits until every commit made so far is on disk.
    pub async fn flush(&self) -> Result<(), BusError> {
        self.writer.flush().await
    }
}

impl Writer {
    fn closed(&self) -> BusError {
        BusError::Stopped {
            path: self.path.to_path_buf(),
        }
    }

    async fn flush(&self) -> Result<(), BusError> {
        let (reply, answer) = oneshot::channel();
        self.ops
            .send(Op::Flush { reply })
            .map_err(|_| self.closed())?;
        answer.await.map_err(|_| self.closed())?
    }
}

fn storage(path: &std::path::Path, operation: &'static str, source: sqlx::Error) -> BusError {
    BusError::Storage {
        path: path.to_path_buf(),
        operation,
        source: Arc::new(source),
    }
}

#[async_trait]
impl EventBus for SqliteBus {
    async fn ensure_topic(&self, topic: &str, partitions: i32) -> Result<(), BusError> {
        // Written with the next transaction, before any record of it.
        self.log.ensure_topic(topic, partitions)
    }

    async fn publish(&self, topic: &str, record: OutboundRecord) -> Result<Delivered, BusError> {
        let record = Stored::new(record);
        let reservation = self.log.reserve(topic, &record).await?;
        let (reply, answer) = oneshot::channel();
        let op = Op::Publish {
            reservation,
            record,
            reply,
        };
        if let Err(mpsc::error::SendError(Op::Publish { reservation, .. })) =
            self.writer.ops.send(op)
        {
            self.log.release(&reservation);
            return Err(self.writer.closed());
        }
        answer.await.map_err(|_| self.writer.closed())?
    }

    async fn subscribe(
        &self,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, BusError> {
        let inner = self.log.subscribe(options);
        // A new group's starting offsets are stored like commits.
        self.writer.nudge.notify_one();
        Ok(Box::new(SqliteSubscription {
            inner,
            writer: self.writer.clone(),
        }))
    }

    async fn check(&self) -> Result<(), BusError> {
        if self.writer.ops.is_closed() {
            return Err(self.writer.closed());
        }
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(|e| storage(&self.writer.path, "checking the file", e))
    }
}

struct SqliteSubscription {
    inner: LogSubscription,
    writer: Writer,
}

#[async_trait]
impl Subscription for SqliteSubscription {
    async fn next(&mut self) -> Result<InboundRecord, BusError> {
        self.inner.next().await
    }

    async fn commit(&mut self, record: &InboundRecord) -> Result<(), BusError> {
        self.inner.commit(record)?;
        self.writer.nudge.notify_one();
        Ok(())
    }

    async fn close(self: Box<Self>) -> Result<(), BusError> {
        self.writer.flush().await
    }
}

/// Writes until every sender is gone, then writes the last commits.
async fn write_loop(
    pool: SqlitePool,
    log: Arc<Log>,
    mut ops: mpsc::UnboundedReceiver<Op>,
    nudge: Arc<Notify>,
    path: Arc<PathBuf>,
) {
    let mut open = true;
    while open {
        let mut batch = Vec::new();
        tokio::select! {
            op = ops.recv() => match op {
                Some(op) => batch.push(op),
                None => open = false,
            },
            () = nudge.notified() => tokio::select! {
                op = ops.recv() => match op {
                    Some(op) => batch.push(op),
                    None => open = false,
                },
                () = tokio::time::sleep(COMMIT_LINGER) => {}
            },
        }
        while batch.len() < MAX_BATCH {
            match ops.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        write_batch(&pool, &log, batch, &path).await;
    }
    pool.close().await;
}

/// One transaction: the batch's records and the journal; then the records
/// become visible and their publishers hear back.
async fn write_batch(pool: &SqlitePool, log: &Log, batch: Vec<Op>, path: &std::path::Path) {
    let mut publishes = Vec::with_capacity(batch.len());
    let mut flushes = Vec::new();
    for op in batch {
        match op {
            Op::Publish {
                reservation,
                record,
                reply,
            } => publishes.push((reservation, record, reply)),
            Op::Flush { reply } => flushes.push(reply),
        }
    }
    let reservations: Vec<&Reservation> = publishes.iter().map(|(r, _, _)| r).collect();
    let offsets = log.next_offsets(&reservations);
    let journal = log.take_journal();
    let pending: Vec<store::Pending<'_>> = publishes
        .iter()
        .zip(&offsets)
        .map(|((reservation, record, _), offset)| store::Pending {
            offset: *offset,
            reservation,
            record,
        })
        .collect();
    let written = store::write(pool, &pending, &journal).await;
    drop(pending);
    match written {
        Ok(()) => {
            let (records, replies): (Vec<_>, Vec<_>) = publishes
                .into_iter()
                .map(|(r, s, reply)| ((r, s), reply))
                .unzip();
            for (delivered, reply) in log.append(records).into_iter().zip(replies) {
                let _ = reply.send(Ok(delivered));
            }
            for reply in flushes {
                let _ = reply.send(Ok(()));
            }
        }
        Err(err) => {
            tracing::error!(error = %crate::report::Report(&err), path = %path.display(), "bus file write failed");
            let err = Arc::new(err);
            log.restore_journal(journal);
            let failure = || BusError::Storage {
                path: path.to_path_buf(),
                operation: "writing records and offsets",
                source: err.clone(),
            };
            for (reservation, _, reply) in publishes {
                log.release(&reservation);
                let _ = reply.send(Err(failure()));
            }
            for reply in flushes {
                let _ = reply.send(Err(failure()));
            }
        }
    }
}
