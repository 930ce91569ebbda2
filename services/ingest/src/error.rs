//! Errors of the ingest service's process boundary.

use pushmail_common::bus::BusError;
use pushmail_common::grpc::EndpointError;
use pushmail_common::host::HostError;

/// Why ingest could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The event bus is misconfigured.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// An upstream address is invalid.
    #[error(transparent)]
    Upstream(#[from] EndpointError),
    /// A setting is unusable.
    #[error(transparent)]
    Config(#[from] pushmail_common::config::ConfigError),
    /// Redis (the marks) is unreachable.
    #[error(transparent)]
    Redis(#[from] pushmail_common::redis::RedisError),
    /// A listener could not be bound.
    #[error(transparent)]
    Listen(#[from] std::io::Error),
    /// A server task failed.
    #[error(transparent)]
    Host(#[from] HostError),
}
