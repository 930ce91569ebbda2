//! Writes that frames cause, gathered into one call per window (lease
//! renewals: one per heartbeat). A node holding a million phones then
//! sends Redis a few pipelines a second instead of a round trip per
//! heartbeat, and a connection never waits on Redis to answer its device.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Most items a batch holds while its write is stuck: a million (tens of
/// MiB), more than a node's phones send in a minute at 60 s heartbeats.
pub(crate) const MAX_HELD: usize = 1_000_000;

/// Items waiting for the next batch.
#[derive(Debug)]
pub(crate) struct Batch<T> {
    queue: Mutex<Vec<T>>,
    queued: Notify,
    window: Duration,
    /// Most items held while a write is stuck (Redis stalled): memory stays
    /// bounded and what is dropped only degrades (a lease renewed at the
    /// next heartbeat).
    max: usize,
    /// Counts what was dropped for being over `max`.
    dropped: metrics::Counter,
}

impl<T> Batch<T> {
    /// Batches named `name` (the metric's label) gathered over `window`
    /// from the first item of each, at most `max` items held.
    pub(crate) fn new(name: &'static str, window: Duration, max: usize) -> Self {
        Self {
            queue: Mutex::new(Vec::new()),
            queued: Notify::new(),
            window,
            max,
            dropped: metrics::counter!("pushmail_session_batch_dropped_total", "batch" => name),
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<T>> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `item` for the next batch; `false` when it was dropped
    /// because `max` items are already waiting.
    pub(crate) fn push(&self, item: T) -> bool {
        let mut queue = self.queue();
        if queue.len() >= self.max {
            drop(queue);
            self.dropped.increment(1);
            return false;
        }
        let first = queue.is_empty();
        queue.push(item);
        drop(queue);
        if first {
            // A permit is kept while the writer is busy: no lost wake-up.
            self.queued.notify_one();
        }
        true
    }

    fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.queue())
    }

    /// Hands each batch to `write` a window after its first item, until
    /// `shutdown` (the end of the node's drain); what is queued then is
    /// written once more.
    pub(crate) async fn run<F, Fut>(&self, shutdown: CancellationToken, mut write: F)
    where
        F: FnMut(Vec<T>) -> Fut,
        Fut: Future<Output = ()>,
    {
        loop {
            let stopping = tokio::select! {
                () = self.queued.notified() => tokio::select! {
                    () = tokio::time::sleep(self.window) => false,
                    () = shutdown.cancelled() => true,
                },
                () = shutdown.cancelled() => true,
            };
            let batch = self.take();
            if !batch.is_empty() {
                write(batch).await;
            }
            if stopping {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn items_are_written_together_a_window_after_the_first() {
        let batch = Arc::new(Batch::new("test", Duration::from_millis(100), 1_000));
        let (tx, mut written) = tokio::sync::mpsc::unbounded_channel();
        let shutdown = CancellationToken::new();
        let writer = tokio::spawn({
            let (batch, shutdown) = (batch.clone(), shutdown.clone());
            async move {
                batch
                    .run(shutdown, |items: Vec<u32>| {
                        let tx = tx.clone();
                        async move {
                            let _ = tx.send((tokio::time::Instant::now(), items));
                        }
                    })
                    .await;
            }
        });
        let start = tokio::time::Instant::now();
        assert!(batch.push(1));
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(batch.push(2));
        let (at, items) = written.recv().await.unwrap();
        assert_eq!(items, [1, 2]);
        assert_eq!(
            at - start,
            Duration::from_millis(100),
            "one window after the first"
        );

        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(
            written.try_recv().is_err(),
            "nothing queued, nothing written"
        );
        assert!(batch.push(3));
        let (_, items) = written.recv().await.unwrap();
        assert_eq!(items, [3], "a later item starts a new batch");

        assert!(batch.push(4));
        shutdown.cancel();
        writer.await.unwrap();
        let (_, items) = written.recv().await.unwrap();
        assert_eq!(items, [4], "what is queued at shutdown is still written");
    }

    #[test]
    fn a_stuck_writer_holds_at_most_max_items() {
        let batch = Batch::new("test", Duration::from_millis(100), 2);
        assert!(batch.push(1));
        assert!(batch.push(2));
        assert!(!batch.push(3), "over the bound: dropped");
        assert_eq!(batch.take(), [1, 2]);
        assert!(batch.push(4), "room again once written");
    }
}
