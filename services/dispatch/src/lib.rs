//! Dispatch: turns `MailArrived` into deliveries. Policy, the delivery
//! ladder and the outbox arrive with [5/9]; this is the hosting and the
//! connections they will use.

pub mod config;
pub mod error;
pub mod policy;
pub mod sms;

use std::sync::Arc;

use pushmail_common::bus::{self, EventBus};
use pushmail_common::grpc::TracedChannel;
use pushmail_common::health::Readiness;
use pushmail_common::host::Host;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::Error;

/// Service name, for telemetry and health.
pub const NAME: &str = "dispatch";

/// What the service needs from outside, connected.
pub struct Deps {
    /// Event bus.
    pub bus: Arc<dyn EventBus>,
    /// The binding service.
    pub binding: TracedChannel,
    /// The session service.
    pub session: TracedChannel,
    /// Redis; `None` keeps dispatch state in memory.
    pub redis: Option<ConnectionManager>,
}

impl Deps {
    /// Opens the connections; `bus` is shared in standalone mode.
    pub async fn connect(config: &Config, bus: Arc<dyn EventBus>) -> Result<Self, Error> {
        Ok(Self {
            bus,
            binding: config.binding.channel()?,
            session: config.session.channel()?,
            redis: config.state.connect().await?,
        })
    }
}

/// Bound listeners (port 0 in tests).
pub type Listeners = pushmail_common::host::AdminListener;

/// Production entry point.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let bus = bus::connect(&config.bus, "pushmail-dispatch")?;
    let deps = Deps::connect(&config, bus).await?;
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
    host.readiness().add_upstream_check("session", deps.session);
    if let Some(redis) = deps.redis {
        host.readiness()
            .add_check("redis", move || pushmail_common::redis::ping(redis.clone()));
    }
    host.serve_admin(listeners.admin, axum::Router::new());
    Ok(host.run().await?)
}
