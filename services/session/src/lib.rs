//! The session holder: device connections with heartbeats, the directory
//! of which node holds which device, and `Deliver` for dispatch. The device
//! endpoints and the directory arrive with [3/9]; this is the hosting.

pub mod config;
pub mod error;

use pushmail_common::health::Readiness;
use pushmail_common::host::Host;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

pub use config::Config;
pub use error::Error;

/// Service name, for telemetry and health.
pub const NAME: &str = "session";

/// What the service needs from outside, connected.
pub struct Deps {
    /// The directory's Redis; `None` keeps the directory in memory.
    pub redis: Option<ConnectionManager>,
}

impl Deps {
    /// Connects the directory store.
    pub async fn connect(config: &Config) -> Result<Self, Error> {
        Ok(Self {
            redis: config.directory.connect().await?,
        })
    }
}

/// Bound listeners (port 0 in tests).
pub type Listeners = pushmail_common::host::GrpcListeners;

/// Production entry point.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let deps = Deps::connect(&config).await?;
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
    if let Some(redis) = deps.redis {
        host.readiness()
            .add_check("redis", move || pushmail_common::redis::ping(redis.clone()));
    }
    host.serve_grpc(listeners.grpc, Routes::default())?;
    host.serve_admin(listeners.admin, axum::Router::new());
    Ok(host.run().await?)
}
