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
    #[error("database {0}")]
    Database(String),
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
