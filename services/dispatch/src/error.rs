//! Errors of the dispatch service's process boundary.

use pushmail_common::bus::BusError;
use pushmail_common::grpc::EndpointError;
use pushmail_common::host::HostError;
use pushmail_common::redis::RedisError;

/// Why dispatch could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The event bus is misconfigured.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// An upstream address is invalid.
    #[error(transparent)]
    Upstream(#[from] EndpointError),
    /// Redis is unreachable.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// The embedded state store could not be opened.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
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
