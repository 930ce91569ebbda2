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
    /// A listener could not be bound.
    #[error(transparent)]
    Listen(#[from] std::io::Error),
    /// A server task failed.
    #[error(transparent)]
    Host(#[from] HostError),
}
