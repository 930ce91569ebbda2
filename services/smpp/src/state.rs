//! What the connector must remember across restarts and replicas: which
//! segments of a request were already submitted (a redelivered record
//! resumes instead of sending them again), and which request a message id
//! belongs to (the SMS centre's receipt names only the id, possibly on
//! another replica's link). Redis in production; memory for tests and
//! single-process use.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::AsyncCommands as _;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

/// The store failed (transient: the record is retried).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Redis refused or could not be reached.
    #[error("SMPP connector state unavailable")]
    Redis(#[from] redis::RedisError),
    /// A receipt expectation could not be written as JSON.
    #[error("SMPP connector state: a receipt expectation does not encode")]
    Encode(#[from] serde_json::Error),
}

/// How far a request got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Every segment went out and its receipt was published.
    pub finished: bool,
    /// Segments submitted: index → the SMS centre's message id.
    pub submitted: BTreeMap<u32, String>,
}

/// Whom a delivery receipt is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    pub tenant: String,
    pub request_id: String,
    pub device_id: String,
    pub account_id: String,
    /// `SmsPurpose` as its number.
    pub purpose: i32,
}

/// The connector's shared state.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// What was done for `request`.
    async fn progress(&self, request: &str) -> Result<Progress, StateError>;
    /// Segment `index` of `request` was accepted as `message_id`.
    async fn submitted(
        &self,
        request: &str,
        index: u32,
        message_id: &str,
        ttl: Duration,
    ) -> Result<(), StateError>;
    /// `request` is done; a redelivery sends nothing.
    async fn finished(&self, request: &str, ttl: Duration) -> Result<(), StateError>;
    /// A receipt for `message_id` from `smsc` is for `expected`.
    async fn expect(
        &self,
        smsc: &str,
        message_id: &str,
        expected: &Expected,
        ttl: Duration,
    ) -> Result<(), StateError>;
    /// Whom the receipt for `message_id` from `smsc` is for.
    async fn receipt(&self, smsc: &str, message_id: &str) -> Result<Option<Expected>, StateError>;
    /// The final receipt was published: no other will come.
    async fn forget(&self, smsc: &str, message_id: &str) -> Result<(), StateError>;
}

const FINISHED: &str = "finished";

/// The key of the receipt awaited for `message_id` from `smsc`. Names are
/// free text and ids are the SMS centre's, so `:` may be in either: the
/// name is written with `%` and `:` escaped, and the first `:` ends it
/// (`a:b` + `c` and `a` + `b:c` are two keys). A name with neither keeps
/// the key it always had, so receipts awaited across an upgrade are found.
fn receipt_key(smsc: &str, message_id: &str) -> String {
    let mut key = String::with_capacity(smsc.len() + message_id.len() + 1);
    for c in smsc.chars() {
        match c {
            '%' => key.push_str("%25"),
            ':' => key.push_str("%3A"),
            c => key.push(c),
        }
    }
    key.push(':');
    key.push_str(message_id);
    key
}

/// Redis: a hash per request, a string per awaited receipt, both expiring.
#[derive(Clone)]
pub struct RedisStore {
    redis: ConnectionManager,
    prefix: String,
}

impl RedisStore {
    /// Keys start with `prefix`.
    pub fn new(redis: ConnectionManager, prefix: &str) -> Self {
        Self {
            redis,
            prefix: format!("{prefix}smpp:"),
        }
    }

    fn request_key(&self, request: &str) -> String {
        format!("{}req:{request}", self.prefix)
    }

    fn receipt_key(&self, smsc: &str, message_id: &str) -> String {
        format!("{}dlr:{}", self.prefix, receipt_key(smsc, message_id))
    }
}

fn seconds(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX)
}

#[async_trait]
impl Store for RedisStore {
    async fn progress(&self, request: &str) -> Result<Progress, StateError> {
        let fields: HashMap<String, String> = self
            .redis
            .clone()
            .hgetall(self.request_key(request))
            .await?;
        let mut progress = Progress::default();
        for (field, value) in fields {
            if field == FINISHED {
                progress.finished = true;
            } else if let Ok(index) = field.parse() {
                progress.submitted.insert(index, value);
            }
        }
        Ok(progress)
    }

    async fn submitted(
        &self,
        request: &str,
        index: u32,
        message_id: &str,
        ttl: Duration,
    ) -> Result<(), StateError> {
        let key = self.request_key(request);
        redis::pipe()
            .hset(&key, index, message_id)
            .ignore()
            .expire(&key, seconds(ttl))
            .ignore()
            .query_async::<()>(&mut self.redis.clone())
            .await?;
        Ok(())
    }

    async fn finished(&self, request: &str, ttl: Duration) -> Result<(), StateError> {
        let key = self.request_key(request);
        redis::pipe()
            .hset(&key, FINISHED, 1)
            .ignore()
            .expire(&key, seconds(ttl))
            .ignore()
            .query_async::<()>(&mut self.redis.clone())
            .await?;
        Ok(())
    }

    async fn expect(
        &self,
        smsc: &str,
        message_id: &str,
        expected: &Expected,
        ttl: Duration,
    ) -> Result<(), StateError> {
        let value = serde_json::to_string(expected)?;
        self.redis
            .clone()
            .set_ex::<_, _, ()>(
                self.receipt_key(smsc, message_id),
                value,
                ttl.as_secs().max(1),
            )
            .await?;
        Ok(())
    }

    async fn receipt(&self, smsc: &str, message_id: &str) -> Result<Option<Expected>, StateError> {
        let value: Option<String> = self
            .redis
            .clone()
            .get(self.receipt_key(smsc, message_id))
            .await?;
        Ok(value.and_then(|v| serde_json::from_str(&v).ok()))
    }

    async fn forget(&self, smsc: &str, message_id: &str) -> Result<(), StateError> {
        self.redis
            .clone()
            .del::<_, ()>(self.receipt_key(smsc, message_id))
            .await?;
        Ok(())
    }
}

/// In-process state; entries expire like Redis keys.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<MemoryInner>,
}

#[derive(Default)]
struct MemoryInner {
    requests: HashMap<String, (Progress, Instant)>,
    receipts: HashMap<String, (Expected, Instant)>,
    writes: u64,
}

impl MemoryInner {
    /// The live progress of `request`, to be written for `ttl` more: an
    /// expired one starts over, as a Redis key that expired would.
    fn request(&mut self, request: &str, ttl: Duration) -> &mut Progress {
        self.sweep();
        let now = Instant::now();
        let entry = self
            .requests
            .entry(request.to_owned())
            .or_insert_with(|| (Progress::default(), now));
        if entry.1 <= now {
            entry.0 = Progress::default();
        }
        entry.1 = now + ttl;
        &mut entry.0
    }

    /// Drops expired entries now and then, so the maps stay bounded.
    fn sweep(&mut self) {
        self.writes += 1;
        if self.writes.is_multiple_of(4_096) {
            let now = Instant::now();
            self.requests.retain(|_, (_, until)| *until > now);
            self.receipts.retain(|_, (_, until)| *until > now);
        }
    }
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn progress(&self, request: &str) -> Result<Progress, StateError> {
        let inner = self.lock();
        Ok(inner
            .requests
            .get(request)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(progress, _)| progress.clone())
            .unwrap_or_default())
    }

    async fn submitted(
        &self,
        request: &str,
        index: u32,
        message_id: &str,
        ttl: Duration,
    ) -> Result<(), StateError> {
        self.lock()
            .request(request, ttl)
            .submitted
            .insert(index, message_id.to_owned());
        Ok(())
    }

    async fn finished(&self, request: &str, ttl: Duration) -> Result<(), StateError> {
        self.lock().request(request, ttl).finished = true;
        Ok(())
    }

    async fn expect(
        &self,
        smsc: &str,
        message_id: &str,
        expected: &Expected,
        ttl: Duration,
    ) -> Result<(), StateError> {
        let mut inner = self.lock();
        inner.sweep();
        inner.receipts.insert(
            receipt_key(smsc, message_id),
            (expected.clone(), Instant::now() + ttl),
        );
        Ok(())
    }

    async fn receipt(&self, smsc: &str, message_id: &str) -> Result<Option<Expected>, StateError> {
        Ok(self
            .lock()
            .receipts
            .get(&receipt_key(smsc, message_id))
            .filter(|(_, until)| *until > Instant::now())
            .map(|(expected, _)| expected.clone()))
    }

    async fn forget(&self, smsc: &str, message_id: &str) -> Result<(), StateError> {
        self.lock().receipts.remove(&receipt_key(smsc, message_id));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_keys_tell_names_from_ids_and_keep_plain_names_as_they_were() {
        assert_eq!(receipt_key("cmcc-gd", "1f"), "cmcc-gd:1f");
        assert_ne!(receipt_key("a:b", "c"), receipt_key("a", "b:c"));
        assert_ne!(receipt_key("a%3Ab", "c"), receipt_key("a:b", "c"));
        assert_eq!(receipt_key("a:b%", "c:d"), "a%3Ab%25:c:d");
    }
}
