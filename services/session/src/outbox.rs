//! The seam to the per-device outbox. Dispatch ([5/9]) owns the outbox:
//! it appends every notification with its sequence before delivering, and
//! trims what devices acked. Session only reads what a device missed (on
//! hello) and reports acks. `MemoryOutbox` serves standalone mode and tests
//! until dispatch's shared outbox lands.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::protocol::WireNotification;

/// The outbox could not be read or trimmed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("outbox unavailable: {0}")]
pub struct OutboxError(pub String);

/// A device's notifications not yet acked.
#[async_trait]
pub trait Outbox: Send + Sync + 'static {
    /// The device's notifications after sequence `after`, oldest first, at most `limit`.
    async fn after(
        &self,
        tenant: &str,
        device: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<WireNotification>, OutboxError>;

    /// The device holds everything up to `through`.
    async fn acked(&self, tenant: &str, device: &str, through: u64) -> Result<(), OutboxError>;
}

/// Most notifications kept per device; older ones are dropped first.
const PER_DEVICE: usize = 1_000;

/// In-process outbox.
#[derive(Debug, Default)]
pub struct MemoryOutbox {
    devices: Mutex<HashMap<(String, String), BTreeMap<u64, WireNotification>>>,
}

impl MemoryOutbox {
    /// Appends a notification (what dispatch does before delivering).
    pub fn push(&self, tenant: &str, device: &str, notification: WireNotification) {
        let mut devices = self
            .devices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let queue = devices
            .entry((tenant.to_owned(), device.to_owned()))
            .or_default();
        queue.insert(notification.seq, notification);
        while queue.len() > PER_DEVICE {
            queue.pop_first();
        }
    }
}

#[async_trait]
impl Outbox for MemoryOutbox {
    async fn after(
        &self,
        tenant: &str,
        device: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<WireNotification>, OutboxError> {
        let devices = self
            .devices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(devices
            .get(&(tenant.to_owned(), device.to_owned()))
            .map(|queue| {
                queue
                    .range(after.saturating_add(1)..)
                    .take(limit)
                    .map(|(_, n)| n.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn acked(&self, tenant: &str, device: &str, through: u64) -> Result<(), OutboxError> {
        let mut devices = self
            .devices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (tenant.to_owned(), device.to_owned());
        if let Some(queue) = devices.get_mut(&key) {
            *queue = queue.split_off(&through.saturating_add(1));
            if queue.is_empty() {
                devices.remove(&key);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(seq: u64) -> WireNotification {
        WireNotification {
            seq,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn replays_after_the_cursor_and_trims_on_ack() {
        let outbox = MemoryOutbox::default();
        for seq in 1..=5 {
            outbox.push("t", "d", n(seq));
        }
        let seqs = |v: Vec<WireNotification>| v.iter().map(|n| n.seq).collect::<Vec<_>>();
        assert_eq!(
            seqs(outbox.after("t", "d", 2, 10).await.unwrap()),
            [3, 4, 5]
        );
        assert_eq!(seqs(outbox.after("t", "d", 0, 2).await.unwrap()), [1, 2]);
        assert!(
            outbox.after("other", "d", 0, 10).await.unwrap().is_empty(),
            "per tenant"
        );
        outbox.acked("t", "d", 4).await.unwrap();
        assert_eq!(seqs(outbox.after("t", "d", 0, 10).await.unwrap()), [5]);
    }
}
