//! Errors of the mailbox service's process boundary.

use pushmail_common::bus::BusError;
use pushmail_common::config::ConfigError;
use pushmail_common::grpc::EndpointError;
use pushmail_common::host::HostError;

use crate::sync::StatesError;

/// Why the mailbox service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listener could not be bound.
    #[error(transparent)]
    Listen(#[from] std::io::Error),
    /// Binding's address is not usable.
    #[error("binding: {0}")]
    Binding(#[from] EndpointError),
    /// The sync-state database could not be opened or migrated.
    #[error("the sync-state database")]
    Database(#[source] StatesError),
    /// The event bus could not be joined.
    #[error("the event bus")]
    Bus(#[from] BusError),
    /// TLS to mail servers could not be set up.
    #[error("TLS to mail servers")]
    Tls(#[source] rustls::Error),
    /// A server task failed.
    #[error(transparent)]
    Host(#[from] HostError),
}
