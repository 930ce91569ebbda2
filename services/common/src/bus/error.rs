//! Errors of the bus boundary, with the record's coordinates where known.

use std::path::PathBuf;
use std::sync::Arc;

/// The client's or broker's own error, kept as the cause.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// A bus operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The broker did not accept the record; the caller still owns it.
    #[error("publish to {topic} failed")]
    Publish {
        /// Target topic.
        topic: String,
        /// Broker or client reason.
        #[source]
        source: Cause,
    },
    /// The producer's buffer stayed full for the whole publish timeout.
    #[error("publish to {topic} refused: queue full (backpressure)")]
    QueueFull {
        /// Target topic.
        topic: String,
    },
    /// Receiving from the group failed.
    #[error("consume from {topics} failed")]
    Consume {
        /// Subscribed topics, comma-separated.
        topics: String,
        /// Broker or client reason.
        #[source]
        source: Cause,
    },
    /// A committed offset could not be stored.
    #[error("commit of {topic}/{partition}@{offset} failed")]
    Commit {
        /// Topic of the record.
        topic: String,
        /// Partition of the record.
        partition: i32,
        /// Offset of the record.
        offset: i64,
        /// Why.
        #[source]
        source: Cause,
    },
    /// A record's payload is not the message its topic promises.
    #[error("record {topic}/{partition}@{offset} cannot be decoded")]
    Decode {
        /// Topic of the record.
        topic: String,
        /// Partition of the record.
        partition: i32,
        /// Offset of the record.
        offset: i64,
        /// Why.
        #[source]
        source: Undecodable,
    },
    /// Topic administration failed.
    #[error("topic {topic}: administration failed")]
    Admin {
        /// Topic concerned.
        topic: String,
        /// Why.
        #[source]
        source: Cause,
    },
    /// A topic was asked for with no partitions.
    #[error("topic {topic}: partitions must be positive, not {partitions}")]
    Partitions {
        /// Topic concerned.
        topic: String,
        /// The count asked for.
        partitions: i32,
    },
    /// The bus cannot be reached or configured.
    #[error("bus unavailable")]
    Unavailable(#[source] Cause),
    /// The embedded bus file's writer stopped (the process is shutting
    /// down, or the writer failed before).
    #[error("bus file {}: the writer stopped", path.display())]
    Stopped {
        /// The file.
        path: PathBuf,
    },
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

/// Why a record is not the message its topic promises.
#[derive(Debug, thiserror::Error)]
pub enum Undecodable {
    /// It was read from another topic.
    #[error("expected a record of {0}")]
    WrongTopic(&'static str),
    /// Its payload is not that protobuf message.
    #[error(transparent)]
    Payload(#[from] prost::DecodeError),
}
