//! The per-device outbox: every notification dispatch sends is appended
//! here first, under the device's next sequence number; session replays
//! what a device has not acked when it says hello, and trims on ack.
//!
//! Redis streams in production (one stream per device, the sequence is the
//! entry id), process memory standalone. Appends are idempotent by the
//! notification's idempotency key, so a redelivered event never gives the
//! device a second notification; an unacked notification with the same
//! collapse key appended within the coalescing window is replaced by the
//! new one, which carries the count. A device that falls further behind
//! than the cap loses its oldest entries and is told to resync.

mod memory;
mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pushmail_proto::session::v1::Notification;
use serde::{Deserialize, Serialize};

pub use self::memory::MemoryOutbox;
pub use self::redis::RedisOutbox;
use crate::config::ConfigError;
use crate::redis::{RedisConfig, StateStoreKind};

/// The outbox could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("outbox unavailable: {0}")]
pub struct OutboxError(pub String);

impl From<::redis::RedisError> for OutboxError {
    fn from(err: ::redis::RedisError) -> Self {
        Self(err.to_string())
    }
}

/// Where the outbox is and the limits of every device's outbox.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxSettings {
    /// `redis` (shared by dispatch and session replicas) or `memory`
    /// (standalone: one process holds both).
    pub kind: StateStoreKind,
    /// Used when `kind = "redis"`.
    pub redis: RedisConfig,
    /// Most unacked notifications kept per device; past it the oldest go
    /// and the device is told to resync.
    pub max_per_device: usize,
    /// A device's outbox disappears this long after its last append.
    pub ttl_seconds: u64,
    /// Unacked notifications of one collapse key appended within this
    /// window become one, with a count (0: never).
    pub coalesce_ms: u64,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            kind: StateStoreKind::Redis,
            redis: RedisConfig::default(),
            max_per_device: 200,
            ttl_seconds: 7 * 24 * 3600,
            coalesce_ms: 2_000,
        }
    }
}

impl OutboxSettings {
    /// In-process, with the default limits (standalone).
    pub fn memory() -> Self {
        Self {
            kind: StateStoreKind::Memory,
            ..Self::default()
        }
    }

    /// Connects the configured store.
    pub async fn connect(&self) -> Result<Arc<dyn Outbox>, crate::redis::RedisError> {
        Ok(match self.kind {
            StateStoreKind::Redis => Arc::new(RedisOutbox::new(
                crate::redis::connect_for(
                    &self.redis,
                    crate::redis::Durability::Durable("the per-device outbox"),
                )
                .await?,
                &self.redis.key_prefix,
                self.clone(),
            )),
            // `validate` refuses sqlite: the outbox has no embedded durable
            // store yet.
            StateStoreKind::Memory | StateStoreKind::Sqlite => {
                Arc::new(MemoryOutbox::new(self.clone()))
            }
        })
    }

    /// Rejects an empty cap or a zero TTL.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.kind == StateStoreKind::Redis {
            self.redis.validate(&format!("{prefix}redis."))?;
        }
        if self.kind == StateStoreKind::Sqlite {
            return Err(ConfigError::invalid(
                format!("{prefix}kind"),
                "must be redis or memory (the outbox has no sqlite store)",
            ));
        }
        if !(1..=100_000).contains(&self.max_per_device) {
            return Err(ConfigError::invalid(
                format!("{prefix}max_per_device"),
                "must be between 1 and 100000",
            ));
        }
        if self.ttl_seconds == 0 {
            return Err(ConfigError::invalid(
                format!("{prefix}ttl_seconds"),
                "must be positive",
            ));
        }
        Ok(())
    }

    pub(crate) fn ttl(&self) -> Duration {
        Duration::from_secs(self.ttl_seconds)
    }

    /// Idempotency keys remembered per device: well past the cap, so a
    /// redelivery from far back is still recognised.
    pub(crate) fn keys_remembered(&self) -> usize {
        self.max_per_device.saturating_mul(10).max(1_000)
    }
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendState {
    /// Appended now.
    New,
    /// Appended before (same idempotency key) and not acked yet.
    Pending,
    /// Appended before and already acked: nothing to send.
    Acked,
}

/// The result of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The notification's sequence number for the device.
    pub seq: u64,
    /// What happened.
    pub state: AppendState,
    /// Mails the notification stands for (more than one when coalesced).
    pub count: u32,
}

/// What a device missed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replay {
    /// Unacked notifications after the cursor, oldest first, with their
    /// sequence and count filled in.
    pub notifications: Vec<Notification>,
    /// Notifications after the cursor were dropped (cap reached): the
    /// device must sync its mailbox instead of trusting the replay.
    pub resync: bool,
}

/// The per-device outbox.
#[async_trait]
pub trait Outbox: Send + Sync + 'static {
    /// Appends `notification` for its `tenant_id`/`device_id`, assigning
    /// its sequence; idempotent by its `idempotency_key`.
    async fn append(&self, notification: &Notification) -> Result<Appended, OutboxError>;

    /// The device's unacked notifications after sequence `after`, at most `limit`.
    async fn after(
        &self,
        tenant: &str,
        device: &str,
        after: u64,
        limit: usize,
    ) -> Result<Replay, OutboxError>;

    /// The device holds everything up to `through`.
    async fn acked(&self, tenant: &str, device: &str, through: u64) -> Result<(), OutboxError>;
}

/// What is stored: the notification without its sequence, which the
/// outbox assigns.
fn stored(notification: &Notification) -> Notification {
    Notification {
        sequence: 0,
        ..notification.clone()
    }
}

/// A stored notification as the device gets it.
fn replayed(mut notification: Notification, seq: u64, count: u32) -> Notification {
    notification.sequence = seq;
    // A quiet-hours digest has its own count; coalescing adds to it.
    notification.digest_count = match (notification.digest_count, count) {
        (0, 1) => 0,
        (0, n) => n,
        (d, n) => d + n - 1,
    };
    notification
}
