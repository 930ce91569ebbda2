//! Errors of the binding service's process boundary.

use pushmail_common::bus::BusError;
use pushmail_common::host::HostError;

/// Why the binding service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is missing or unusable.
    #[error(transparent)]
    Config(#[from] pushmail_common::config::ConfigError),
    /// The database is unreachable or misconfigured.
    #[error("database {url}")]
    Database {
        /// Where, its password masked.
        url: String,
        #[source]
        source: sqlx::Error,
    },
    /// The SQLite file's directory cannot be made.
    #[error("database directory {}", .dir.display())]
    DataDir {
        /// The directory.
        dir: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The schema could not be brought up to date.
    #[error("database migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The event bus is unreachable or misconfigured.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// Redis is unreachable or misconfigured.
    #[error(transparent)]
    Redis(#[from] pushmail_common::redis::RedisError),
    /// A listener could not be bound.
    #[error(transparent)]
    Listen(#[from] std::io::Error),
    /// A server task failed.
    #[error(transparent)]
    Host(#[from] HostError),
}
