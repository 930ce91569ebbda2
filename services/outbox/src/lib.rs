//! The per-device outbox: every notification dispatch sends is appended
//! here first, under the device's next sequence number; session replays
//! what a device has not acked when it says hello, and trims on ack.
//!
//! Redis streams in production (one stream per device, the sequence is the
//! entry id), a SQLite file standalone (kept across restarts), process
//! memory in tests. Appends are idempotent by the
//! notification's idempotency key, so a redelivered event never gives the
//! device a second notification; an unacked notification with the same
//! collapse key appended within the coalescing window is replaced by the
//! new one, which carries the count. A device that falls further behind
//! than the cap loses its oldest entries and is told to resync.
//!
//! Every outbox has a generation, drawn when it is created (by the first
//! append or read) and kept while it lives. Sequences count within a
//! generation, so a device's cursor is a generation and a sequence: once
//! the outbox is lost (flushed, expired, a restarted process's memory) the
//! new one has another generation, and a cursor from before is answered
//! with a resync and everything held instead of silencing the new mail.

mod memory;
mod redis;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pushmail_proto::session::v1::Notification;
use serde::{Deserialize, Serialize};

pub use self::memory::MemoryOutbox;
pub use self::redis::RedisOutbox;
pub use self::sqlite::SqliteOutbox;
use pushmail_common::config::ConfigError;
use pushmail_common::redis::{RedisConfig, StateStoreKind};

/// The outbox could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// Redis refused or could not be reached.
    #[error("outbox (redis)")]
    Redis(#[from] ::redis::RedisError),
    /// The SQLite file could not be read or written.
    #[error("outbox (sqlite)")]
    Sqlite(#[from] sqlx::Error),
    /// The SQLite file could not be opened.
    #[error("outbox")]
    Open(#[from] pushmail_common::sqlite::OpenError),
    /// The SQLite transaction this call shared with others (group commit)
    /// failed, or its writer stopped: nothing it wrote stands.
    #[error("outbox (sqlite)")]
    Group(#[from] pushmail_common::sqlite::GroupError),
    /// A stored entry is not one this code wrote.
    #[error("outbox entry {entry} is unreadable: {why}")]
    Corrupt {
        /// The entry's id.
        entry: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A stored entry's notification does not decode.
    #[error("outbox entry {entry} does not decode")]
    Decode {
        /// The entry's id.
        entry: String,
        /// The decoder's complaint.
        #[source]
        source: prost::DecodeError,
    },
}

/// The configured outbox could not be reached or opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Its Redis is unreachable or does not persist.
    #[error(transparent)]
    Redis(#[from] pushmail_common::redis::RedisError),
    /// Its SQLite file could not be opened.
    #[error(transparent)]
    Sqlite(#[from] OutboxError),
}

/// Where the outbox is and the limits of every device's outbox.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxSettings {
    /// `redis` (shared by dispatch and session replicas), `sqlite`
    /// (standalone: one process holds both, kept on disk) or `memory`.
    pub kind: StateStoreKind,
    /// Used when `kind = "redis"`.
    pub redis: RedisConfig,
    /// The database file, when `kind = "sqlite"`.
    pub sqlite_path: std::path::PathBuf,
    /// Most unacked notifications kept per device; past it the oldest go
    /// and the device is told to resync.
    pub max_per_device: usize,
    /// A device's outbox (and its generation) disappears this long after
    /// its last append or replay read.
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
            sqlite_path: std::path::PathBuf::new(),
            max_per_device: 200,
            ttl_seconds: 7 * 24 * 3600,
            coalesce_ms: 2_000,
        }
    }
}

impl OutboxSettings {
    /// In-process, with the default limits.
    pub fn memory() -> Self {
        Self {
            kind: StateStoreKind::Memory,
            ..Self::default()
        }
    }

    /// In the SQLite file at `path`, with the default limits (standalone).
    pub fn sqlite(path: impl Into<std::path::PathBuf>) -> Self {
        Self {
            kind: StateStoreKind::Sqlite,
            sqlite_path: path.into(),
            ..Self::default()
        }
    }

    /// Connects the configured store.
    pub async fn connect(&self) -> Result<Arc<dyn Outbox>, ConnectError> {
        Ok(match self.kind {
            StateStoreKind::Redis => Arc::new(RedisOutbox::new(
                pushmail_common::redis::connect_for(
                    &self.redis,
                    pushmail_common::redis::Durability::Durable("the per-device outbox"),
                )
                .await?,
                &self.redis.key_prefix,
                self.clone(),
            )),
            StateStoreKind::Sqlite => {
                Arc::new(SqliteOutbox::open(&self.sqlite_path, self.clone()).await?)
            }
            StateStoreKind::Memory => Arc::new(MemoryOutbox::new(self.clone())),
        })
    }

    /// Rejects an empty cap or a zero TTL.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.kind == StateStoreKind::Redis {
            self.redis.validate(&format!("{prefix}redis."))?;
        }
        if self.kind == StateStoreKind::Sqlite && self.sqlite_path.as_os_str().is_empty() {
            return Err(ConfigError::invalid(
                format!("{prefix}sqlite_path"),
                "is required for kind = sqlite",
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

    /// The collapse key `notification` coalesces under: none when
    /// coalescing is off (`coalesce_ms = 0` means never, not "within the
    /// same millisecond"), the same rule for every backend.
    pub(crate) fn collapse_key<'a>(&self, notification: &'a Notification) -> &'a str {
        if self.coalesce_ms == 0 {
            ""
        } else {
            &notification.collapse_key
        }
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
    /// The outbox generation `seq` counts in.
    pub generation: u64,
    /// The notification's sequence number for the device.
    pub seq: u64,
    /// What happened.
    pub state: AppendState,
    /// Mails the notification stands for (more than one when coalesced).
    pub count: u32,
}

/// Where a device is in its outbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    /// The generation `seq` counts in; 0 when the device names none (a
    /// fresh device, or one from before generations).
    pub generation: u64,
    /// The highest sequence the device acked.
    pub seq: u64,
}

/// What a device missed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replay {
    /// The outbox's generation: the device's cursor counts in it from now on.
    pub generation: u64,
    /// The sequence the replay continues after: the device's, or 0 when its
    /// cursor was of another generation (or none) or ahead of the outbox.
    pub from: u64,
    /// Unacked notifications after `from`, oldest first, with their
    /// sequence and count filled in.
    pub notifications: Vec<Notification>,
    /// The device must sync its mailbox instead of trusting the replay:
    /// its cursor belongs to an outbox that is gone (or is ahead of this
    /// one), or notifications after it were dropped (cap reached).
    pub resync: bool,
}

/// Generations stay below 2^53 so that every JSON reader holds them exactly.
const GENERATION_BOUND: u64 = 1 << 53;

/// A generation for a new outbox: random, so a recreated outbox (or a
/// restarted process's) is told apart from the one it replaces.
fn new_generation() -> u64 {
    rand::random_range(1..GENERATION_BOUND)
}

/// Where a replay for `cursor` starts and whether the device must resync,
/// given the outbox's generation, last sequence, acked mark and lost mark.
/// The Redis outbox's read script does the same in Lua.
fn resume(cursor: Cursor, generation: u64, seq: u64, acked: u64, lost: u64) -> (u64, bool) {
    let kept = cursor.generation == generation && cursor.seq <= seq;
    let from = if kept { cursor.seq } else { 0 };
    // A device naming no generation is replayed everything held, as a
    // fresh one; only a cursor past anything assigned shows a loss.
    let stale = if cursor.generation == 0 {
        cursor.seq > seq
    } else {
        !kept
    };
    (from, stale || lost > from.max(acked))
}

/// What an ack trimmed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Acked {
    /// The generation trimmed.
    pub generation: u64,
    /// The notifications the ack took out of the outbox, oldest first,
    /// with their sequence and count filled in: the session reports their
    /// delivery when no one else heard of it (a replay, a late ack).
    pub notifications: Vec<Notification>,
}

/// The per-device outbox.
#[async_trait]
pub trait Outbox: Send + Sync + 'static {
    /// Appends `notification` for its `tenant_id`/`device_id`, assigning
    /// its sequence; idempotent by its `idempotency_key`.
    async fn append(&self, notification: &Notification) -> Result<Appended, OutboxError>;

    /// The device's unacked notifications after `cursor`, at most `limit`
    /// (see [`Replay`]); creates the outbox, and so its generation, if
    /// there is none, and keeps it another `ttl_seconds`.
    async fn after(
        &self,
        tenant: &str,
        device: &str,
        cursor: Cursor,
        limit: usize,
    ) -> Result<Replay, OutboxError>;

    /// What waits unacked for a device that keeps no cursor (a held EAS
    /// Ping): as [`Outbox::after`] with none, except that a store need not
    /// keep a living outbox another `ttl_seconds` (appends keep it), so
    /// the read can cost no write: a stock mail app Pings again after every
    /// change. An outbox that is absent or expired is created as `after`
    /// does.
    async fn waiting(
        &self,
        tenant: &str,
        device: &str,
        limit: usize,
    ) -> Result<Replay, OutboxError> {
        self.after(tenant, device, Cursor::default(), limit).await
    }

    /// The device holds everything up to `cursor.seq` of `cursor.generation`
    /// (0: the outbox's current generation, for a device from before
    /// generations). Returns what was trimmed, or `None` when the ack
    /// does not apply and nothing is trimmed: the outbox is gone or of
    /// another generation, or the ack is past anything it assigned.
    async fn acked(
        &self,
        tenant: &str,
        device: &str,
        cursor: Cursor,
    ) -> Result<Option<Acked>, OutboxError>;
}

/// What is stored: the notification without its sequence and generation,
/// which the outbox assigns.
fn stored(notification: &Notification) -> Notification {
    Notification {
        sequence: 0,
        outbox_generation: 0,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(generation: u64, seq: u64) -> Cursor {
        Cursor { generation, seq }
    }

    #[test]
    fn a_cursor_resumes_only_in_its_own_generation_and_within_it() {
        // The outbox: generation 7, sequences up to 10, acked 4, none lost.
        let at = |c| resume(c, 7, 10, 4, 0);
        assert_eq!(at(cursor(7, 6)), (6, false), "its own generation");
        assert_eq!(at(cursor(7, 10)), (10, false), "caught up");
        assert_eq!(at(cursor(7, 11)), (0, true), "ahead of the outbox");
        assert_eq!(at(cursor(8, 6)), (0, true), "another generation");
        assert_eq!(at(cursor(8, 0)), (0, true), "another, even at 0");
        assert_eq!(at(cursor(0, 0)), (0, false), "a fresh device");
        assert_eq!(at(cursor(0, 6)), (0, false), "none named: fresh");
        assert_eq!(at(cursor(0, 1_000_000)), (0, true), "none, but ahead");
    }

    #[test]
    fn dropped_notifications_ask_for_a_resync_past_what_was_acked() {
        // Sequences up to 10, 1..=5 dropped by the cap.
        assert_eq!(resume(cursor(7, 2), 7, 10, 0, 5), (2, true));
        assert_eq!(resume(cursor(7, 5), 7, 10, 0, 5), (5, false));
        assert_eq!(resume(cursor(0, 0), 7, 10, 0, 5), (0, true));
        assert_eq!(
            resume(cursor(0, 0), 7, 10, 6, 5),
            (0, false),
            "the dropped ones were acked past"
        );
    }

    #[test]
    fn generations_are_never_zero_and_fit_a_json_number() {
        for _ in 0..1_000 {
            let generation = new_generation();
            assert!((1..GENERATION_BOUND).contains(&generation));
        }
    }
}
