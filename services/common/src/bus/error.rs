//! Errors of the bus boundary, with the record's coordinates where known.

use std::path::PathBuf;
use std::sync::Arc;

/// A bus operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The broker did not accept the record; the caller still owns it.
    #[error("publish to {topic} failed: {reason}")]
    Publish {
        /// Target topic.
        topic: String,
        /// Broker or client reason.
        reason: String,
    },
    /// The producer's buffer stayed full for the whole publish timeout.
    #[error("publish to {topic} refused: queue full (backpressure)")]
    QueueFull {
        /// Target topic.
        topic: String,
    },
    /// Receiving from the group failed.
    #[error("consume from {topics} failed: {reason}")]
    Consume {
        /// Subscribed topics, comma-separated.
        topics: String,
        /// Broker or client reason.
        reason: String,
    },
    /// A committed offset could not be stored.
    #[error("commit of {topic}/{partition}@{offset} failed: {reason}")]
    Commit {
        /// Topic of the record.
        topic: String,
        /// Partition of the record.
        partition: i32,
        /// Offset of the record.
        offset: i64,
        /// Why.
        reason: String,
    },
    /// A record's payload is not the message its topic promises.
    #[error("record {topic}/{partition}@{offset} cannot be decoded: {reason}")]
    Decode {
        /// Topic of the record.
        topic: String,
        /// Partition of the record.
        partition: i32,
        /// Offset of the record.
        offset: i64,
        /// Decoder's reason.
        reason: String,
    },
    /// Topic administration failed.
    #[error("topic {topic}: {reason}")]
    Admin {
        /// Topic concerned.
        topic: String,
        /// Why.
        reason: String,
    },
    /// The bus cannot be reached or configured.
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    /// The embedded bus file could not be opened.
    #[error("bus file {}: cannot open", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::sqlite::OpenError,
    },
    /// The embedded bus file could not be read or written; nothing of the
    /// failed transaction is visible.
    #[error("bus file {}: {operation} failed", path.display())]
    Storage {
        /// The file.
        path: PathBuf,
        /// What was being done.
        operation: &'static str,
        /// SQLite's error, shared by every publish of the transaction.
        #[source]
        source: Arc<sqlx::Error>,
    },
    /// The subscription was closed (shutdown or group leave).
    #[error("subscription closed")]
    Closed,
}
