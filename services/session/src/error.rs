//! Errors of the session service's process boundary.

use pushmail_common::host::HostError;
use pushmail_common::redis::RedisError;

/// Why the session service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The directory's Redis is unreachable.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// A setting is missing or unusable.
    #[error(transparent)]
    Config(#[from] pushmail_common::config::ConfigError),
    /// The event bus is unreachable or misconfigured.
    #[error(transparent)]
    Bus(#[from] pushmail_common::bus::BusError),
    /// The outbox could not be reached or opened.
    #[error(transparent)]
    Outbox(#[from] pushmail_outbox::ConnectError),
    /// A listener could not be bound.
    #[error(transparent)]
    Listen(#[from] std::io::Error),
    /// A server task failed.
    #[error(transparent)]
    Host(#[from] HostError),
}
