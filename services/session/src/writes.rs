//! Batched writes to Redis on behalf of connections: lease renewals (a
//! lease runs for the heartbeat interval plus its grace, so renewing it a
//! window late changes nothing a device or dispatch can see) and outbox
//! trims (the device's cursor, not the trim, decides what is replayed, so
//! a trim lost in a crash only keeps acked entries until the next ack).

use std::sync::Arc;
use std::time::Duration;

use crate::hub::Command;
use crate::node::Node;

/// Most items per Redis pipeline; a bigger backlog goes in several.
const MAX_PIPELINE: usize = 1_000;

/// A heartbeat's lease renewal.
#[derive(Debug)]
pub struct Renewal {
    /// The device.
    pub device: Arc<str>,
    /// The connection that heartbeated: only it is told when the lease is lost.
    pub connection: u64,
    /// The lease to hold from now.
    pub lease: Duration,
}

/// An ack's outbox trim.
#[derive(Debug)]
pub struct Trim {
    /// The device's tenant.
    pub tenant: Arc<str>,
    /// The device.
    pub device: Arc<str>,
    /// Everything up to this sequence is acked.
    pub through: u64,
}

/// Renews `batch`; a connection whose lease another node holds now is
/// told it was taken over (as that node's take-over call would have).
pub async fn renew(node: &Node, batch: Vec<Renewal>) {
    for chunk in batch.chunks(MAX_PIPELINE) {
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

/// Trims the outboxes of `batch`.
pub async fn trim(node: &Node, batch: Vec<Trim>) {
    for chunk in batch.chunks(MAX_PIPELINE) {
        let acks: Vec<(&str, &str, u64)> = chunk
            .iter()
            .map(|trim| (&*trim.tenant, &*trim.device, trim.through))
            .collect();
        if let Err(err) = node.outbox.acked_many(&acks).await {
            // Replay follows the device's cursor: the entries only linger.
            tracing::warn!(error = %err, acks = chunk.len(), "outbox trim failed");
        }
    }
}
