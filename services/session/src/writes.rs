//! Batched writes to Redis on behalf of connections: lease renewals. A
//! lease runs for the heartbeat interval plus its grace, so renewing it a
//! window late changes nothing a device or dispatch can see. (Acks are not
//! batched: dispatch reads the outbox's acked mark to drop a redelivered
//! event, so that mark must not lag the ack.)

use std::sync::Arc;
use std::time::Duration;

use crate::hub::Command;
use crate::node::Node;

/// Most leases per Redis call (Redis runs the renewal script alone, so a
/// bigger backlog goes in several calls).
const MAX_BATCH: usize = 1_000;

/// A heartbeat's lease renewal.
#[derive(Debug)]
pub(crate) struct Renewal {
    /// The device.
    pub(crate) device: Arc<str>,
    /// The connection that heartbeated: only it is told when the lease is lost.
    pub(crate) connection: u64,
    /// The lease to hold from now.
    pub(crate) lease: Duration,
}

/// Renews `batch`; a connection whose lease another node holds now is
/// told it was taken over (as that node's take-over call would have).
pub(crate) async fn renew(node: &Node, batch: Vec<Renewal>) {
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
                tracing::warn!(error = %pushmail_common::report::Report(&err), leases = chunk.len(), "directory renew failed")
            }
        }
    }
}
