//! Mailbox ingest: learns that mail arrived (IMAP IDLE, POP3, SMTP/LMTP,
//! webhook) and emits `MailArrived`. The receivers arrive with [4/9]; this
//! is the hosting and the connections they will use.

pub mod arrival;
pub mod config;
pub mod error;
pub mod mail;
pub mod marks;
pub mod pop3;
pub mod tls;

use std::sync::Arc;

use pushmail_common::blob::BlobStore;
use pushmail_common::bus::{self, EventBus};
use pushmail_common::grpc::TracedChannel;
use pushmail_common::health::Readiness;
use pushmail_common::host::Host;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::Error;

/// Service name, for telemetry and health.
pub const NAME: &str = "ingest";

/// What the service needs from outside, connected.
pub struct Deps {
    /// Where `MailArrived` is published.
    pub bus: Arc<dyn EventBus>,
    /// The binding service.
    pub binding: TracedChannel,
    /// Raw message storage.
    pub blobs: Arc<dyn BlobStore>,
}

impl Deps {
    /// Opens the connections; `bus` is shared in standalone mode.
    pub fn connect(config: &Config, bus: Arc<dyn EventBus>) -> Result<Self, Error> {
        Ok(Self {
            bus,
            binding: config.binding.channel()?,
            blobs: config.blob.open(),
        })
    }
}

/// Bound listeners (port 0 in tests).
pub type Listeners = pushmail_common::host::AdminListener;

/// Production entry point.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let bus = bus::connect(&config.bus, "pushmail-ingest")?;
    let deps = Deps::connect(&config, bus)?;
    let listeners = Listeners::bind(&config.server).await?;
    run(deps, listeners, Readiness::new(NAME), shutdown).await
}

/// Serves until `shutdown`.
pub async fn run(
    deps: Deps,
    listeners: Listeners,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let mut host = Host::new(readiness, shutdown);
    host.readiness().add_bus_check(deps.bus);
    host.readiness().add_upstream_check("binding", deps.binding);
    host.readiness().add_blob_check(deps.blobs);
    host.serve_admin(listeners.admin, axum::Router::new());
    Ok(host.run().await?)
}
