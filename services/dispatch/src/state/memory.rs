//! Dispatch state in process memory (standalone).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pushmail_proto::session::v1::Notification;

use super::{Claims, Due, HeldMail, RateWindows, SENT, StateError, device_key};

#[derive(Debug, Default)]
struct Held {
    tenant: String,
    device: String,
    until_ms: i64,
    version: u64,
    keys: HashSet<String>,
    digests: BTreeMap<String, (Notification, u32)>,
}

#[derive(Debug, Default)]
struct Inner {
    claims: HashMap<String, (String, Instant)>,
    held: HashMap<String, Held>,
    counters: HashMap<String, (u64, Instant)>,
}

/// In-process dispatch state.
#[derive(Debug, Default)]
pub struct MemoryState {
    inner: Mutex<Inner>,
}

impl MemoryState {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl Claims for MemoryState {
    async fn claim(&self, key: &str, owner: &str, ttl_ms: u64) -> Result<bool, StateError> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.claims.retain(|_, (_, until)| *until > now);
        let until = now + Duration::from_millis(ttl_ms);
        match inner.claims.get(key) {
            Some((holder, _)) => Ok(holder == owner),
            None => {
                inner
                    .claims
                    .insert(key.to_owned(), (owner.to_owned(), until));
                Ok(true)
            }
        }
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), StateError> {
        let mut inner = self.lock();
        if inner
            .claims
            .get(key)
            .is_some_and(|(holder, _)| holder == owner)
        {
            inner.claims.remove(key);
        }
        Ok(())
    }

    async fn confirm(&self, key: &str, owner: &str) -> Result<(), StateError> {
        let mut inner = self.lock();
        if let Some((holder, _)) = inner.claims.get_mut(key)
            && holder == owner
        {
            SENT.clone_into(holder);
        }
        Ok(())
    }
}

#[async_trait]
impl HeldMail for MemoryState {
    async fn defer(&self, notification: &Notification, until_ms: i64) -> Result<(), StateError> {
        let mut inner = self.lock();
        let held = inner
            .held
            .entry(device_key(&notification.tenant_id, &notification.device_id))
            .or_insert_with(|| Held {
                tenant: notification.tenant_id.clone(),
                device: notification.device_id.clone(),
                until_ms,
                ..Default::default()
            });
        if !held.keys.insert(notification.idempotency_key.clone()) {
            return Ok(());
        }
        held.until_ms = held.until_ms.min(until_ms);
        held.version += 1;
        let entry = held
            .digests
            .entry(notification.collapse_key.clone())
            .or_insert_with(|| (notification.clone(), 0));
        entry.0 = notification.clone();
        entry.1 += 1;
        Ok(())
    }

    async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<Due>, StateError> {
        let inner = self.lock();
        Ok(inner
            .held
            .values()
            .filter(|h| h.until_ms <= now_ms)
            .take(limit)
            .map(|h| Due {
                tenant: h.tenant.clone(),
                device: h.device.clone(),
                until_ms: h.until_ms,
                digests: h.digests.values().cloned().collect(),
                version: h.version,
            })
            .collect())
    }

    async fn digested(&self, due: &Due) -> Result<bool, StateError> {
        let mut inner = self.lock();
        let key = device_key(&due.tenant, &due.device);
        match inner.held.get(&key) {
            Some(held) if held.version == due.version => {
                inner.held.remove(&key);
                Ok(true)
            }
            Some(_) => Ok(false),
            None => Ok(true),
        }
    }
}

#[async_trait]
impl RateWindows for MemoryState {
    async fn count(&self, key: &str, n: u64, ttl_ms: u64) -> Result<u64, StateError> {
        let now = Instant::now();
        let mut inner = self.lock();
        // Windows are short; dropping the expired ones as we go keeps the map small.
        if inner.counters.len() > 4_096 {
            inner.counters.retain(|_, (_, until)| *until > now);
        }
        let entry = inner
            .counters
            .entry(key.to_owned())
            .or_insert((0, now + Duration::from_millis(ttl_ms)));
        if entry.1 <= now {
            *entry = (0, now + Duration::from_millis(ttl_ms));
        }
        entry.0 += n;
        Ok(entry.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counters_add_up_and_start_over_when_they_expire() {
        let state = MemoryState::default();
        assert_eq!(state.count("rate:t", 2, 50).await.unwrap(), 2);
        assert_eq!(state.count("rate:t", 3, 50).await.unwrap(), 5);
        assert_eq!(state.count("rate:u", 1, 50).await.unwrap(), 1);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(state.count("rate:t", 1, 50).await.unwrap(), 1);
    }
}
