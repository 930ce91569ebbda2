//! The in-process layer: bounded (quick_cache evicts the least useful
//! entries past capacity), entries expiring on their own clock.

use std::time::{Duration, Instant};

use quick_cache::sync::Cache;

use super::Targets;
use crate::clock::now_ms;
use crate::domain::{AccountId, TenantId};

type Key = (TenantId, AccountId);

pub(super) struct Local {
    entries: Cache<Key, (Targets, Instant)>,
    ttl: Duration,
}

impl Local {
    pub(super) fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            entries: Cache::new(usize::try_from(capacity).unwrap_or(usize::MAX)),
            ttl,
        }
    }

    pub(super) fn get(&self, key: &Key) -> Option<Targets> {
        let (targets, expires) = self.entries.get(key)?;
        if Instant::now() < expires {
            Some(targets)
        } else {
            self.entries.remove(key);
            None
        }
    }

    /// Keeps `targets` for the layer's lifetime, but never past the expiry
    /// of the shared entry they came from (ms since the epoch).
    pub(super) fn insert(&self, key: Key, targets: Targets, shared_expiry_ms: Option<i64>) {
        let mut ttl = self.ttl;
        if let Some(expiry) = shared_expiry_ms {
            let left = u64::try_from(expiry - now_ms()).unwrap_or(0);
            ttl = ttl.min(Duration::from_millis(left));
        }
        if !ttl.is_zero() {
            self.entries.insert(key, (targets, Instant::now() + ttl));
        }
    }

    pub(super) fn remove(&self, key: &Key) {
        self.entries.remove(key);
    }
}
