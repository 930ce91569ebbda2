//! The outbox in process memory (standalone, tests).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;
use pushmail_proto::session::v1::Notification;

use super::{
    Acked, AppendState, Appended, Cursor, Outbox, OutboxError, OutboxSettings, Replay,
    new_generation, replayed, resume, stored,
};

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

#[derive(Debug)]
struct Device {
    generation: u64,
    seq: u64,
    acked: u64,
    lost: u64,
    entries: BTreeMap<u64, Entry>,
    keys: HashMap<String, u64>,
    collapse: HashMap<String, Collapse>,
    touched: Instant,
}

impl Device {
    fn new(now: Instant) -> Self {
        Self {
            generation: new_generation(),
            seq: 0,
            acked: 0,
            lost: 0,
            entries: BTreeMap::new(),
            keys: HashMap::new(),
            collapse: HashMap::new(),
            touched: now,
        }
    }
}

type Devices = HashMap<(String, String), Device>;

impl Device {
    /// Merges the notification `seq` into an unacked one of the same
    /// collapse key within `window` (which it replaces); how many mails it
    /// stands for.
    fn collapse(&mut self, key: &str, seq: u64, now: Instant, window: std::time::Duration) -> u32 {
        if key.is_empty() {
            return 1;
        }
        let mut count = 1;
        let mut first_at = now;
        if let Some(previous) = self.collapse.get(key)
            && now.duration_since(previous.first_at) <= window
            && self.entries.remove(&previous.seq).is_some()
        {
            count = previous.count + 1;
            first_at = previous.first_at;
        }
        self.collapse.insert(
            key.to_owned(),
            Collapse {
                seq,
                first_at,
                count,
            },
        );
        count
    }
}

/// In-process outbox with the Redis outbox's semantics.
#[derive(Debug, Default)]
pub struct MemoryOutbox {
    settings: OutboxSettings,
    devices: Mutex<Devices>,
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Devices> {
        self.devices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The device's outbox, created (with a new generation) when there is
    /// none or it expired, as its Redis keys would have; kept another TTL.
    fn live<'a>(
        &self,
        devices: &'a mut Devices,
        tenant: &str,
        device: &str,
        now: Instant,
    ) -> &'a mut Device {
        let ttl = self.settings.ttl();
        let device = devices
            .entry((tenant.to_owned(), device.to_owned()))
            .or_insert_with(|| Device::new(now));
        if now.duration_since(device.touched) >= ttl {
            *device = Device::new(now);
        }
        device.touched = now;
        device
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
            devices.retain(|_, d| now.duration_since(d.touched) < ttl);
        }
        let device = self.live(
            &mut devices,
            &notification.tenant_id,
            &notification.device_id,
            now,
        );
        let generation = device.generation;
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
            return Ok(Appended {
                generation,
                seq,
                state,
                count,
            });
        }
        device.seq += 1;
        let seq = device.seq;
        let window = std::time::Duration::from_millis(self.settings.coalesce_ms);
        let count = device.collapse(self.settings.collapse_key(notification), seq, now, window);
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
            generation,
            seq,
            state: AppendState::New,
            count,
        })
    }

    async fn after(
        &self,
        tenant: &str,
        device: &str,
        cursor: Cursor,
        limit: usize,
    ) -> Result<Replay, OutboxError> {
        let mut devices = self.lock();
        let device = self.live(&mut devices, tenant, device, Instant::now());
        let (from, resync) = resume(
            cursor,
            device.generation,
            device.seq,
            device.acked,
            device.lost,
        );
        Ok(Replay {
            generation: device.generation,
            from,
            notifications: device
                .entries
                .range(from.saturating_add(1)..)
                .take(limit)
                .map(|(&seq, e)| replayed(e.notification.clone(), seq, e.count))
                .collect(),
            resync,
        })
    }

    async fn acked(
        &self,
        tenant: &str,
        device: &str,
        cursor: Cursor,
    ) -> Result<Option<Acked>, OutboxError> {
        let mut devices = self.lock();
        let Some(device) = devices.get_mut(&(tenant.to_owned(), device.to_owned())) else {
            return Ok(None);
        };
        let expired = Instant::now().duration_since(device.touched) >= self.settings.ttl();
        let other = cursor.generation != 0 && cursor.generation != device.generation;
        if expired || other || cursor.seq > device.seq {
            return Ok(None);
        }
        device.acked = device.acked.max(cursor.seq);
        let rest = device.entries.split_off(&cursor.seq.saturating_add(1));
        let trimmed = std::mem::replace(&mut device.entries, rest);
        Ok(Some(Acked {
            generation: device.generation,
            notifications: trimmed
                .into_iter()
                .map(|(seq, e)| replayed(e.notification, seq, e.count))
                .collect(),
        }))
    }
}
