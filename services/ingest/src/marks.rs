//! What ingest has already announced per account, persisted so a restart
//! neither misses nor repeats mail. A mark is written only after the event
//! is durable (see `arrival::Announcer`). POP3 keeps the set of UIDLs seen;
//! entries for messages no longer on the server are pruned each poll.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use redis::aio::ConnectionManager;

/// The mark store failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mark store unavailable: {0}")]
pub struct MarkError(pub String);

impl From<redis::RedisError> for MarkError {
    fn from(err: redis::RedisError) -> Self {
        Self(err.to_string())
    }
}

/// Seen POP3 UIDLs per account.
#[async_trait]
pub trait Pop3Marks: Send + Sync + 'static {
    /// The UIDLs announced for `account`.
    async fn seen(&self, account: &str) -> Result<HashSet<String>, MarkError>;
    /// Records `uidl` as announced.
    async fn mark(&self, account: &str, uidl: &str) -> Result<(), MarkError>;
    /// Forgets every mark not in `current` (the server's list now).
    async fn retain(&self, account: &str, current: &HashSet<String>) -> Result<(), MarkError>;
}

/// In-process marks (standalone, tests).
#[derive(Debug, Default)]
pub struct MemoryMarks {
    accounts: Mutex<HashMap<String, HashSet<String>>>,
}

impl MemoryMarks {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, HashSet<String>>) -> T) -> T {
        f(&mut self
            .accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

#[async_trait]
impl Pop3Marks for MemoryMarks {
    async fn seen(&self, account: &str) -> Result<HashSet<String>, MarkError> {
        Ok(self.with(|a| a.get(account).cloned().unwrap_or_default()))
    }

    async fn mark(&self, account: &str, uidl: &str) -> Result<(), MarkError> {
        self.with(|a| {
            a.entry(account.to_owned())
                .or_default()
                .insert(uidl.to_owned())
        });
        Ok(())
    }

    async fn retain(&self, account: &str, current: &HashSet<String>) -> Result<(), MarkError> {
        self.with(|a| {
            if let Some(seen) = a.get_mut(account) {
                seen.retain(|u| current.contains(u));
            }
        });
        Ok(())
    }
}

/// Redis-backed marks: one set per account.
pub struct RedisMarks {
    redis: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisMarks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisMarks")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisMarks {
    /// Keys under `{prefix}ingest:pop3:`.
    pub fn new(redis: ConnectionManager, prefix: &str) -> Self {
        Self {
            redis,
            prefix: format!("{prefix}ingest:pop3:"),
        }
    }

    fn key(&self, account: &str) -> String {
        format!("{}{account}", self.prefix)
    }
}

#[async_trait]
impl Pop3Marks for RedisMarks {
    async fn seen(&self, account: &str) -> Result<HashSet<String>, MarkError> {
        let mut redis = self.redis.clone();
        Ok(redis::cmd("SMEMBERS")
            .arg(self.key(account))
            .query_async(&mut redis)
            .await?)
    }

    async fn mark(&self, account: &str, uidl: &str) -> Result<(), MarkError> {
        let mut redis = self.redis.clone();
        Ok(redis::cmd("SADD")
            .arg(self.key(account))
            .arg(uidl)
            .query_async(&mut redis)
            .await?)
    }

    async fn retain(&self, account: &str, current: &HashSet<String>) -> Result<(), MarkError> {
        let seen = self.seen(account).await?;
        let gone: Vec<&String> = seen.iter().filter(|u| !current.contains(*u)).collect();
        if gone.is_empty() {
            return Ok(());
        }
        let mut redis = self.redis.clone();
        Ok(redis::cmd("SREM")
            .arg(self.key(account))
            .arg(gone)
            .query_async(&mut redis)
            .await?)
    }
}
