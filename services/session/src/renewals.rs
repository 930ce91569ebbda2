//! Heartbeats renew their devices' directory leases in batches: one
//! directory call (one Redis pipeline) per window instead of a round trip
//! per heartbeat. A lease runs for the heartbeat interval plus its grace
//! (over a minute), so renewing it up to a window late changes nothing a
//! device or dispatch can see, while a node holding a million phones sends
//! Redis a few pipelines a second instead of thousands of scripts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::hub::Command;
use crate::node::Node;

/// Most leases per directory call; a bigger backlog goes in several.
const MAX_BATCH: usize = 1_000;

/// A heartbeat's renewal, queued.
#[derive(Debug)]
struct Renewal {
    device: Arc<str>,
    /// The connection that heartbeated: only it is told when the lease is lost.
    connection: u64,
    lease: Duration,
}

/// Renewals waiting for the next batch.
#[derive(Debug)]
pub struct Renewals {
    queue: Mutex<Vec<Renewal>>,
    queued: Notify,
    window: Duration,
}

impl Renewals {
    /// Batches gathered over `window`.
    pub fn new(window: Duration) -> Self {
        Self {
            queue: Mutex::new(Vec::new()),
            queued: Notify::new(),
            window,
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Renewal>> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues a renewal of `device`'s lease for connection `connection`.
    pub fn push(&self, device: Arc<str>, connection: u64, lease: Duration) {
        let mut queue = self.queue();
        let first = queue.is_empty();
        queue.push(Renewal {
            device,
            connection,
            lease,
        });
        drop(queue);
        if first {
            // A permit is kept when the batcher is busy: no lost wake-up.
            self.queued.notify_one();
        }
    }

    fn take(&self) -> Vec<Renewal> {
        std::mem::take(&mut *self.queue())
    }
}

/// Renews what heartbeats queued, a window after the first of each batch,
/// until `shutdown` (the drain closes every connection then).
pub async fn run(node: Arc<Node>, shutdown: CancellationToken) -> Result<(), String> {
    loop {
        tokio::select! {
            () = node.renewals.queued.notified() => {}
            () = shutdown.cancelled() => return Ok(()),
        }
        tokio::select! {
            () = tokio::time::sleep(node.renewals.window) => {}
            () = shutdown.cancelled() => return Ok(()),
        }
        flush(&node, node.renewals.take()).await;
    }
}

/// Renews `batch`; a connection whose lease another node holds now is
/// told it was taken over (as that node's take-over call would have).
async fn flush(node: &Node, batch: Vec<Renewal>) {
    for chunk in batch.chunks(MAX_BATCH) {
        let leases: Vec<(&str, Duration)> = chunk
            .iter()
            .map(|renewal| (&*renewal.device, renewal.lease))
            .collect();
        match node.directory.renew_many(&node.address, &leases).await {
            Ok(renewed) => {
                for (renewal, held) in chunk.iter().zip(renewed) {
                    if held {
                        continue;
                    }
                    if let Some(handle) = node.hub.get(&renewal.device)
                        && handle.id == renewal.connection
                    {
                        let _ = handle.tx.try_send(Command::TakenOver);
                    }
                }
            }
            // The leases outlive a short outage; the next heartbeats renew them.
            Err(err) => {
                tracing::warn!(error = %err, leases = chunk.len(), "directory renew failed")
            }
        }
    }
}
