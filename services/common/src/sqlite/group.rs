//! Group commit for an embedded store: one writer task owns the file's
//! connection; calls queue for it, and every call waiting when it comes
//! round shares one transaction (one fsync), each in its own savepoint so
//! one that fails undoes only itself. Each caller hears back after the
//! `COMMIT`, so with full synchronisation a call that returned is on disk.
//! One fsynced transaction per call holds a store to the disk's fsync rate
//! (a few hundred to two thousand a second here, shared by every file);
//! one per batch keeps it near the in-memory rate under load, and costs
//! nothing when calls come one at a time.

use std::sync::Arc;

use futures::future::BoxFuture;
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use sqlx::{Acquire as _, Sqlite, Transaction};
use tokio::sync::{mpsc, oneshot};

/// Most calls one transaction covers; more wait for the next.
const MAX_BATCH: usize = 512;

/// Calls queued before callers wait to queue (backpressure, not memory,
/// when the disk falls behind).
const QUEUE: usize = 4 * MAX_BATCH;

/// Why a call's work did not reach the disk although it ran.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GroupError {
    /// The shared transaction did not begin or commit: nothing it wrote
    /// stands.
    #[error("the batch's transaction failed")]
    Batch(#[source] Arc<sqlx::Error>),
    /// The writer task is gone (the runtime is shutting down).
    #[error("the writer has stopped")]
    Stopped,
}

/// Answers a caller once the batch's fate is known.
type Settle = Box<dyn FnOnce(Result<(), GroupError>) + Send>;

/// A queued call.
trait Call: Send {
    /// Runs on the connection (inside the call's savepoint): whether it
    /// succeeded, and how to answer once the COMMIT decided.
    fn run<'c>(
        self: Box<Self>,
        connection: &'c mut SqliteConnection,
    ) -> BoxFuture<'c, (bool, Settle)>;

    /// The call cannot run: its batch did not begin.
    fn fail(self: Box<Self>, err: GroupError);
}

/// A call's work and where its answer goes.
struct Typed<F, T, E> {
    work: F,
    reply: oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> Call for Typed<F, T, E>
where
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: From<GroupError> + Send + 'static,
{
    fn run<'c>(
        self: Box<Self>,
        connection: &'c mut SqliteConnection,
    ) -> BoxFuture<'c, (bool, Settle)> {
        let Self { work, reply } = *self;
        Box::pin(async move {
            let outcome = work(connection).await;
            let ok = outcome.is_ok();
            let settle: Settle = Box::new(move |committed| {
                let outcome = match committed {
                    Ok(()) => outcome,
                    Err(err) => outcome.and(Err(E::from(err))),
                };
                // A caller that stopped waiting (its task was cancelled)
                // needs no answer; its work stands.
                let _ = reply.send(outcome);
            });
            (ok, settle)
        })
    }

    fn fail(self: Box<Self>, err: GroupError) {
        let _ = self.reply.send(Err(E::from(err)));
    }
}

/// The queue to a store's writer task.
#[derive(Clone)]
pub struct GroupCommit {
    jobs: mpsc::Sender<Box<dyn Call>>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Starts the writer over `pool` (one connection); it ends, closing
    /// the pool, once every clone of the returned queue is dropped.
    pub fn start(pool: SqlitePool) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, queue));
        Self { jobs }
    }

    /// Runs `work` in the next batch and answers after its COMMIT: its own
    /// result when the batch committed (or it failed by itself), the
    /// batch's failure otherwise.
    pub async fn call<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<GroupError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, E>>();
        self.jobs
            .send(Box::new(Typed { work, reply }))
            .await
            .map_err(|_| E::from(GroupError::Stopped))?;
        answer.await.map_err(|_| E::from(GroupError::Stopped))?
    }
}

/// Writes batches until every sender is gone.
async fn run(pool: SqlitePool, mut queue: mpsc::Receiver<Box<dyn Call>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        write(&pool, batch.drain(..)).await;
    }
    pool.close().await;
}

/// One transaction for the batch, a savepoint for each call in it.
async fn write(pool: &SqlitePool, batch: impl Iterator<Item = Box<dyn Call>>) {
    let mut tx = match pool.begin().await {
        Ok(tx) => tx,
        Err(err) => {
            tracing::error!(error = %crate::report::Report(&err), "embedded store: BEGIN failed");
            let err = GroupError::Batch(Arc::new(err));
            for call in batch {
                call.fail(err.clone());
            }
            return;
        }
    };
    let mut settles = Vec::with_capacity(MAX_BATCH);
    for call in batch {
        settles.push(in_savepoint(&mut tx, call).await);
    }
    let committed = tx.commit().await.map_err(|err| {
        tracing::error!(error = %crate::report::Report(&err), "embedded store: COMMIT failed");
        GroupError::Batch(Arc::new(err))
    });
    for settle in settles {
        settle(committed.clone());
    }
}

/// Runs `call` in a savepoint of `tx`: released when it succeeded, rolled
/// back when it failed, so a failed call leaves nothing behind.
async fn in_savepoint(tx: &mut Transaction<'static, Sqlite>, call: Box<dyn Call>) -> Settle {
    let mut point = match tx.begin().await {
        Ok(point) => point,
        Err(err) => {
            call.fail(GroupError::Batch(Arc::new(err)));
            return Box::new(|_| {});
        }
    };
    let (ok, settle) = call.run(&mut point).await;
    let ended = if ok {
        point.commit().await
    } else {
        point.rollback().await
    };
    match ended {
        Ok(()) => settle,
        // The transaction is in doubt for this call: it fails; the COMMIT
        // decides for the others.
        Err(err) => {
            let err = GroupError::Batch(Arc::new(err));
            Box::new(move |_| settle(Err(err)))
        }
    }
}
