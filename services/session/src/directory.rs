//! Which node holds which device: a lease per device, renewed by its
//! heartbeats. Redis in production (one key per device, expiring with the
//! lease, so an expired lease is never routed to), memory standalone.
//! Owned by session; dispatch reads it through `GetPresence`/`Deliver`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use tokio::time::Instant;

/// The directory failed.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Redis refused or could not be reached.
    #[error("directory unavailable")]
    Redis(#[from] redis::RedisError),
    /// The renewal script answered a position outside the leases sent.
    #[error("lease renewal answered position {position} of {sent}")]
    BadRenewal {
        /// The position answered (1-based).
        position: usize,
        /// How many leases were sent.
        sent: usize,
    },
}

/// The device → node map with leases.
#[async_trait]
pub trait Directory: Send + Sync + 'static {
    /// Records that `node` holds `device` for `lease`; returns the node
    /// that held it before, if its lease was live.
    async fn claim(
        &self,
        device: &str,
        node: &str,
        lease: Duration,
    ) -> Result<Option<String>, DirectoryError>;

    /// Extends `node`'s lease; `false` when another node holds the device
    /// now (or its lease expired).
    async fn renew(
        &self,
        device: &str,
        node: &str,
        lease: Duration,
    ) -> Result<bool, DirectoryError> {
        let renewed = self.renew_many(node, &[(device, lease)]).await?;
        Ok(renewed.first().copied().unwrap_or(false))
    }

    /// [`Directory::renew`] for many devices of `node` in one call (one
    /// Redis round trip): one answer per lease, in order.
    async fn renew_many(
        &self,
        node: &str,
        leases: &[(&str, Duration)],
    ) -> Result<Vec<bool>, DirectoryError>;

    /// Drops `node`'s lease (another node's is left alone).
    async fn release(&self, device: &str, node: &str) -> Result<(), DirectoryError>;

    /// The node holding the device under a live lease.
    async fn lookup(&self, device: &str) -> Result<Option<String>, DirectoryError>;
}

fn millis(lease: Duration) -> u64 {
    u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Redis-backed directory.
pub struct RedisDirectory {
    redis: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisDirectory")
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Renews, of the leases named, only the caller's own, and answers the
/// positions (from 1) of those it does not hold: nearly always none, so the
/// answer costs nothing to parse. KEYS: the leases; ARGV[1]: the caller;
/// ARGV[1 + i]: the length of KEYS[i], ms.
const RENEW: &str = r"local lost = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[i + 1])
  else
    lost[#lost + 1] = i
  end
end
return lost";

/// Deletes only the caller's own lease.
const RELEASE: &str = r"if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

impl RedisDirectory {
    /// Keys under `{prefix}session:dir:`.
    pub fn new(redis: ConnectionManager, prefix: &str) -> Self {
        Self {
            redis,
            prefix: format!("{prefix}session:dir:"),
        }
    }

    fn key(&self, device: &str) -> String {
        format!("{}{device}", self.prefix)
    }
}

#[async_trait]
impl Directory for RedisDirectory {
    async fn claim(
        &self,
        device: &str,
        node: &str,
        lease: Duration,
    ) -> Result<Option<String>, DirectoryError> {
        let mut redis = self.redis.clone();
        // SET … GET (Redis ≥ 6.2): write and learn the previous holder in one step.
        let previous: Option<String> = redis::cmd("SET")
            .arg(self.key(device))
            .arg(node)
            .arg("PX")
            .arg(millis(lease))
            .arg("GET")
            .query_async(&mut redis)
            .await?;
        Ok(previous)
    }

    async fn renew_many(
        &self,
        node: &str,
        leases: &[(&str, Duration)],
    ) -> Result<Vec<bool>, DirectoryError> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        // One script for the whole batch, answering only what it did not
        // renew: a pipeline of one script per device cost the node about
        // 4.5 k instructions per heartbeat (callgrind) in building,
        // encoding and parsing commands, as much as the rest of a
        // heartbeat, and parsing an answer per lease another 0.8 k. Its
        // keys span hash slots, so this needs one Redis (a primary), not
        // Redis Cluster. EVAL, not EVALSHA: a restarted Redis has no
        // script cache.
        let mut script = redis::cmd("EVAL");
        script.arg(RENEW).arg(leases.len());
        let mut key = String::with_capacity(self.prefix.len() + 64);
        for (device, _) in leases {
            key.clear();
            key.push_str(&self.prefix);
            key.push_str(device);
            script.arg(key.as_str());
        }
        script.arg(node);
        for (_, lease) in leases {
            script.arg(millis(*lease));
        }
        let mut redis = self.redis.clone();
        let lost: Vec<usize> = script.query_async(&mut redis).await?;
        let mut renewed = vec![true; leases.len()];
        for position in lost {
            let Some(held) = position.checked_sub(1).and_then(|i| renewed.get_mut(i)) else {
                return Err(DirectoryError::BadRenewal {
                    position,
                    sent: leases.len(),
                });
            };
            *held = false;
        }
        Ok(renewed)
    }

    async fn release(&self, device: &str, node: &str) -> Result<(), DirectoryError> {
        let mut redis = self.redis.clone();
        let _: i64 = redis::Script::new(RELEASE)
            .key(self.key(device))
            .arg(node)
            .invoke_async(&mut redis)
            .await?;
        Ok(())
    }

    async fn lookup(&self, device: &str) -> Result<Option<String>, DirectoryError> {
        let mut redis = self.redis.clone();
        Ok(redis::cmd("GET")
            .arg(self.key(device))
            .query_async(&mut redis)
            .await?)
    }
}

/// In-process directory for standalone mode (one node).
#[derive(Debug, Default)]
pub struct MemoryDirectory {
    leases: Mutex<HashMap<String, (String, Instant)>>,
}

impl MemoryDirectory {
    /// Runs `f` on the device's live lease slot (an expired lease reads as none).
    fn with<T>(&self, device: &str, f: impl FnOnce(&mut Option<(String, Instant)>) -> T) -> T {
        let mut leases = self
            .leases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut slot = leases
            .remove(device)
            .filter(|(_, expires)| *expires > Instant::now());
        let out = f(&mut slot);
        if let Some(lease) = slot {
            leases.insert(device.to_owned(), lease);
        }
        out
    }
}

#[async_trait]
impl Directory for MemoryDirectory {
    async fn claim(
        &self,
        device: &str,
        node: &str,
        lease: Duration,
    ) -> Result<Option<String>, DirectoryError> {
        Ok(self.with(device, |slot| {
            slot.replace((node.to_owned(), Instant::now() + lease))
                .map(|(previous, _)| previous)
        }))
    }

    async fn renew_many(
        &self,
        node: &str,
        leases: &[(&str, Duration)],
    ) -> Result<Vec<bool>, DirectoryError> {
        // Every heartbeat renews: update in place, no allocation.
        let mut map = self
            .leases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        Ok(leases
            .iter()
            .map(|(device, lease)| match map.get_mut(*device) {
                Some((holder, expires)) if holder == node && *expires > now => {
                    *expires = now + *lease;
                    true
                }
                _ => false,
            })
            .collect())
    }

    async fn release(&self, device: &str, node: &str) -> Result<(), DirectoryError> {
        self.with(device, |slot| {
            if slot.as_ref().is_some_and(|(holder, _)| holder == node) {
                *slot = None;
            }
        });
        Ok(())
    }

    async fn lookup(&self, device: &str) -> Result<Option<String>, DirectoryError> {
        Ok(self.with(device, |slot| slot.as_ref().map(|(node, _)| node.clone())))
    }
}
