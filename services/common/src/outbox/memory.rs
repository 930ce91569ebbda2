//! The outbox in process memory (standalone, tests).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;
use pushmail_proto::session::v1::Notification;

use super::{AppendState, Appended, Outbox, OutboxError, OutboxSettings, Replay, replayed, stored};

#[derive(Debug)]
struct Entry {
    notification: Notification,
    count: u32,
}

#[derive(Debug)]
struct Collapse {
    seq: u64,
    first_at: Instant,
    count: u32,
}

#[derive(Debug, Default)]
struct Device {
    seq: u64,
    acked: u64,
    lost: u64,
    entries: BTreeMap<u64, Entry>,
    keys: HashMap<String, u64>,
    collapse: HashMap<String, Collapse>,
    touched: Option<Instant>,
}

/// In-process outbox with the Redis outbox's semantics.
#[derive(Debug, Default)]
pub struct MemoryOutbox {
    settings: OutboxSettings,
    devices: Mutex<HashMap<(String, String), Device>>,
    appends: std::sync::atomic::AtomicU64,
}

/// Expired devices are swept once per this many appends, not on each.
const SWEEP_EVERY: u64 = 4_096;

impl MemoryOutbox {
    /// An outbox with `settings`.
    pub fn new(settings: OutboxSettings) -> Self {
        Self {
            settings,
            devices: Mutex::default(),
            appends: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Device>> {
        self.devices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl Outbox for MemoryOutbox {
    async fn append(&self, notification: &Notification) -> Result<Appended, OutboxError> {
        let now = Instant::now();
        let mut devices = self.lock();
        let ttl = self.settings.ttl();
        let appends = self
            .appends
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if appends.is_multiple_of(SWEEP_EVERY) {
            devices.retain(|_, d| d.touched.is_none_or(|t| now.duration_since(t) < ttl));
        }
        let device = devices
            .entry((
                notification.tenant_id.clone(),
                notification.device_id.clone(),
            ))
            .or_default();
        device.touched = Some(now);
        let key = &notification.idempotency_key;
        if !key.is_empty()
            && let Some(&seq) = device.keys.get(key)
        {
            let state = if seq <= device.acked {
                AppendState::Acked
            } else {
                AppendState::Pending
            };
            let count = device.entries.get(&seq).map_or(1, |e| e.count);
            return Ok(Appended { seq, state, count });
        }
        device.seq += 1;
        let seq = device.seq;
        let mut count = 1;
        let mut first_at = now;
        let window = std::time::Duration::from_millis(self.settings.coalesce_ms);
        if !notification.collapse_key.is_empty() {
            if let Some(previous) = device.collapse.get(&notification.collapse_key)
                && now.duration_since(previous.first_at) <= window
                && device.entries.remove(&previous.seq).is_some()
            {
                count = previous.count + 1;
                first_at = previous.first_at;
            }
            device.collapse.insert(
                notification.collapse_key.clone(),
                Collapse {
                    seq,
                    first_at,
                    count,
                },
            );
        }
        while device.entries.len() >= self.settings.max_per_device {
            if let Some((dropped, _)) = device.entries.pop_first() {
                device.lost = device.lost.max(dropped);
            }
        }
        device.entries.insert(
            seq,
            Entry {
                notification: stored(notification),
                count,
            },
        );
        if !key.is_empty() {
            device.keys.insert(key.clone(), seq);
            let floor = seq.saturating_sub(self.settings.keys_remembered() as u64);
            if device.keys.len() > self.settings.keys_remembered() {
                device.keys.retain(|_, s| *s > floor);
            }
        }
        Ok(Appended {
            seq,
            state: AppendState::New,
            count,
        })
    }

    async fn after(
        &self,
        tenant: &str,
        device: &str,
        after: u64,
        limit: usize,
    ) -> Result<Replay, OutboxError> {
        let devices = self.lock();
        let Some(device) = devices.get(&(tenant.to_owned(), device.to_owned())) else {
            return Ok(Replay::default());
        };
        Ok(Replay {
            notifications: device
                .entries
                .range(after.saturating_add(1)..)
                .take(limit)
                .map(|(&seq, e)| replayed(e.notification.clone(), seq, e.count))
                .collect(),
            resync: after < device.lost,
        })
    }

    async fn acked(&self, tenant: &str, device: &str, through: u64) -> Result<(), OutboxError> {
        let mut devices = self.lock();
        if let Some(device) = devices.get_mut(&(tenant.to_owned(), device.to_owned())) {
            device.acked = device.acked.max(through.min(device.seq));
            device.entries = device.entries.split_off(&through.saturating_add(1));
        }
        Ok(())
    }
}
