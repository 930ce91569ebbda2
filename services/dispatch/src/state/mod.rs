//! Dispatch's own shared state, three concerns behind three traits, each
//! held to one behaviour suite run against every backend
//! (`integration-tests/tests/dispatch_state.rs`): claims (one SMS wake-up
//! per device per window, one text notice per mail), mails held for the
//! quiet-hours and push-rate digests, and rate windows. Redis in
//! production, so replicas agree; SQLite under standalone's data directory,
//! so a restart keeps them; memory where losing them is fine.

mod memory;
mod redis;
mod sqlite;

use async_trait::async_trait;
use pushmail_proto::session::v1::Notification;

pub use self::memory::MemoryState;
pub use self::redis::RedisState;
pub use self::sqlite::SqliteState;

/// The state store failed (transient: the event is retried).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Redis refused or could not be reached.
    #[error("dispatch state (redis) unavailable")]
    Redis(#[from] ::redis::RedisError),
    /// The SQLite file could not be read or written.
    #[error("dispatch state (sqlite) unavailable")]
    Sqlite(#[from] sqlx::Error),
    /// The SQLite file could not be opened.
    #[error("dispatch state (sqlite) could not be opened")]
    Open(#[from] pushmail_common::sqlite::OpenError),
    /// The SQLite transaction this call shared with others (group commit)
    /// failed, or its writer stopped.
    #[error("dispatch state (sqlite)")]
    Group(#[from] pushmail_common::sqlite::GroupError),
    /// A held notification does not decode (written by another version,
    /// or damaged).
    #[error("a held notification is unreadable")]
    Unreadable(#[source] prost::DecodeError),
}

/// A device's held mails, due for their digest.
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    /// Tenant of the device.
    pub tenant: String,
    /// The device.
    pub device: String,
    /// When its quiet window ended (ms since the epoch).
    pub until_ms: i64,
    /// Per collapse key: the newest mail's notification and how many mails.
    pub digests: Vec<(Notification, u32)>,
    /// Version read, for [`HeldMail::digested`].
    pub version: u64,
}

/// Claims on sends that must happen once.
#[async_trait]
pub trait Claims: Send + Sync + 'static {
    /// Claims `key` for `owner` for `ttl_ms`: true when it is (or already
    /// was, unconfirmed) `owner`'s, so a retry re-sends what a crash
    /// interrupted before [`Claims::confirm`].
    async fn claim(&self, key: &str, owner: &str, ttl_ms: u64) -> Result<bool, StateError>;

    /// Gives a claim back (its send failed), if `owner` still holds it.
    async fn release(&self, key: &str, owner: &str) -> Result<(), StateError>;

    /// The claimed send happened: from now on the claim refuses `owner`
    /// too, so a redelivered event sends nothing twice.
    async fn confirm(&self, key: &str, owner: &str) -> Result<(), StateError>;
}

/// Mails held for a device's digest.
#[async_trait]
pub trait HeldMail: Send + Sync + 'static {
    /// Holds a mail for the device's digest at `until_ms`; a mail already
    /// held (same idempotency key) is not counted twice.
    async fn defer(&self, notification: &Notification, until_ms: i64) -> Result<(), StateError>;

    /// Devices whose digest is due at `now_ms`, at most `limit`.
    async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<Due>, StateError>;

    /// The digest of `due` was sent: forget what it covered. Returns false
    /// when a mail was held meanwhile (the device stays due).
    async fn digested(&self, due: &Due) -> Result<bool, StateError>;
}

/// Counters over time windows.
#[async_trait]
pub trait RateWindows: Send + Sync + 'static {
    /// Adds `n` to the counter `key` (created for `ttl_ms`); its new value.
    async fn count(&self, key: &str, n: u64, ttl_ms: u64) -> Result<u64, StateError>;
}

/// Every store of dispatch's state; each backend implements all three.
pub trait State: Claims + HeldMail + RateWindows {}

impl<T: Claims + HeldMail + RateWindows> State for T {}

/// The value of a confirmed claim (no owner is ever called this).
const SENT: &str = "\u{0}sent";

/// One device's key in the stores.
fn device_key(tenant: &str, device: &str) -> String {
    format!("{tenant}/{device}")
}
