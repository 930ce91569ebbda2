//! Errors of the SMPP connector's process boundary.

use pushmail_common::bus::BusError;
use pushmail_common::host::HostError;
use pushmail_common::redis::RedisError;

/// Why the connector could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The event bus is misconfigured or unreachable.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// Redis is unreachable.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// A listener could not be bound.
    #[error(transparent)]
    Listen(#[from] std::io::Error),
    /// A task failed.
    #[error(transparent)]
    Host(#[from] HostError),
}
