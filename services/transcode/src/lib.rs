//! The transcode service: a stored message's parts for small screens.
//! Converters (`convert/`) are pure functions with limits; `pipeline`
//! picks one for a part and a device profile; `worker` runs them (and the
//! MIME parser) in a subprocess that `pool` starts under OS-enforced
//! memory, CPU and time limits; `service` is the gRPC edge with the
//! account check and the cache.

mod cache;
pub mod config;
pub mod convert;
mod error;
mod frame;
pub mod parts;
pub mod pipeline;
pub mod pool;
pub mod profile;
mod refusal;
mod service;
pub mod worker;

use std::sync::Arc;

use pushmail_common::blob::BlobStore;
use pushmail_common::health::Readiness;
use pushmail_common::host::Host;
use pushmail_proto::transcode::v1::transcode_service_server::TranscodeServiceServer;
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
    run(config, deps, listeners, Readiness::new(NAME), shutdown).await
}

/// Serves until `shutdown`.
pub async fn run(
    config: Config,
    deps: Deps,
    listeners: Listeners,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    config
        .security
        .service_keys
        .validate("security.service_keys")?;
    let transcoder = service::Transcoder::new(&config, deps.blobs.clone())?;
    let mut host = Host::new(readiness, shutdown);
    host.readiness().add_blob_check(deps.blobs);
    let server = TranscodeServiceServer::new(service::Service(Arc::new(transcoder)))
        // A large message's part may be asked for by its whole size.
        .max_decoding_message_size(64 * 1024)
        .max_encoding_message_size(1 << 20);
    host.serve_grpc_with(listeners.grpc, Routes::new(server), config.listeners.grpc)?;
    host.serve_admin(listeners.admin, axum::Router::new());
    Ok(host.run().await?)
}
