//! The transcode service: attachment conversion for small screens. The
//! converters (`convert/`) are being built with [6/9]; the service does
//! not serve them over gRPC yet.

pub mod cache;
pub mod config;
pub mod convert;
pub mod error;

use std::sync::Arc;

use pushmail_common::blob::BlobStore;
use pushmail_common::health::Readiness;
use pushmail_common::host::Host;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

pub use config::Config;
pub use error::Error;

/// Service name, for telemetry and health.
pub const NAME: &str = "transcode";

/// What the service needs from outside.
pub struct Deps {
    /// Raw messages by content hash.
    pub blobs: Arc<dyn BlobStore>,
}

impl Deps {
    /// Opens the blob store.
    pub fn connect(config: &Config) -> Self {
        Self {
            blobs: config.blob.open(),
        }
    }
}

/// Bound listeners (port 0 in tests).
pub type Listeners = pushmail_common::host::GrpcListeners;

/// Production entry point.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let deps = Deps::connect(&config);
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
    host.readiness().add_blob_check(deps.blobs);
    host.serve_grpc(listeners.grpc, Routes::default())?;
    host.serve_admin(listeners.admin, axum::Router::new());
    Ok(host.run().await?)
}
