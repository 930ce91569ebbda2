//! Errors of the session service's process boundary.

use pushmail_common::host::HostError;
use pushmail_common::redis::RedisError;

/// Why the session service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The directory's Redis is unreachable.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// A listener could not be bound.
    #[error(transparent)]
    Listen(#[from] std::io::Error),
    /// A server task failed.
    #[error(transparent)]
    Host(#[from] HostError),
}
