//! Errors of the gateway's process boundary.

use pushmail_common::grpc::EndpointError;
use pushmail_common::host::HostError;

/// Why the gateway could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] pushmail_common::config::ConfigError),
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
