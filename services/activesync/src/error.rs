//! Errors of the activesync service's process boundary.

use pushmail_common::config::ConfigError;
use pushmail_common::grpc::EndpointError;
use pushmail_common::host::HostError;

/// Why the activesync service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listener could not be bound.
    #[error(transparent)]
    Listen(#[from] std::io::Error),
    /// An upstream's address (binding, mailbox) is not usable.
    #[error(transparent)]
    Upstream(#[from] EndpointError),
    /// A server task failed.
    #[error(transparent)]
    Host(#[from] HostError),
}
