//! The gateway: the REST/JSON edge for the tenant admin portal and device
//! fetch. The API arrives with [6/9] and [7/9]; this is the hosting, the
//! upstream connections and the error shape every route will share.

pub mod config;
pub mod error;

use axum::http::StatusCode;
use pushmail_common::grpc::TracedChannel;
use pushmail_common::health::Readiness;
use pushmail_common::host::{self, Host};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::Error;

/// Service name, for telemetry and health.
pub const NAME: &str = "gateway";

/// What the service needs from outside.
pub struct Deps {
    /// The binding service.
    pub binding: TracedChannel,
    /// The transcode service.
    pub transcode: TracedChannel,
}

impl Deps {
    /// Opens the channels (they connect lazily).
    pub fn connect(config: &Config) -> Result<Self, Error> {
        Ok(Self {
            binding: config.binding.channel()?,
            transcode: config.transcode.channel()?,
        })
    }
}

/// Bound listeners (port 0 in tests).
pub struct Listeners {
    /// Public HTTP.
    pub http: TcpListener,
    /// Admin HTTP.
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds the configured addresses.
    pub async fn bind(config: &Config) -> Result<Self, Error> {
        Ok(Self {
            http: host::bind("http", config.server.http_addr).await?,
            admin: host::bind("admin", config.server.admin_addr).await?,
        })
    }
}

/// Production entry point.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let deps = Deps::connect(&config)?;
    let listeners = Listeners::bind(&config).await?;
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
    host.readiness().add_upstream_check("binding", deps.binding);
    host.readiness()
        .add_upstream_check("transcode", deps.transcode);
    host.serve_http("http", listeners.http, public_router());
    host.serve_admin(listeners.admin, axum::Router::new());
    Ok(host.run().await?)
}

fn public_router() -> axum::Router {
    axum::Router::new().fallback(not_found)
}

/// Every unknown route answers with the machine-readable error body.
async fn not_found() -> axum::response::Response {
    pushmail_common::http_error::error(StatusCode::NOT_FOUND, "not_found", "no such route")
}
