//! The binding service: system of record for tenants, mail accounts,
//! MSISDN bindings, devices and preferences.

pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod keys;
pub mod store;

use std::sync::Arc;

use pushmail_common::bus::{self, EventBus};
use pushmail_common::health::Readiness;
use pushmail_common::host::Host;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

pub use config::Config;
pub use error::Error;
use store::Database;

/// Service name, for telemetry and health.
pub const NAME: &str = "binding";

/// What the service needs from outside, connected.
pub struct Deps {
    /// Event bus for `BindingChanged` and OTP SMS.
    pub bus: Arc<dyn EventBus>,
    /// The database.
    pub database: Database,
    /// Secrets for credentials, codes and device tokens.
    pub keys: keys::Keys,
}

/// Bound listeners (port 0 in tests).
pub type Listeners = pushmail_common::host::GrpcListeners;

impl Deps {
    /// Checks the secrets, connects and migrates the database; `bus` is
    /// shared in standalone mode.
    pub async fn connect(config: &Config, bus: Arc<dyn EventBus>) -> Result<Self, Error> {
        // Keys first: a missing secret stops start-up before any connection.
        let keys = keys::Keys::from_config(&config.security)?;
        let database = Database::connect(&config.database).await?;
        database.migrate().await?;
        Ok(Self {
            bus,
            database,
            keys,
        })
    }
}

/// Production entry point: connects everything from `config` and runs.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let bus = bus::connect(&config.bus, "pushmail-binding")?;
    let deps = Deps::connect(&config, bus).await?;
    let listeners = Listeners::bind(&config.server).await?;
    run(deps, listeners, Readiness::new(NAME), shutdown).await
}

/// Serves until `shutdown`; readiness turns green once serving.
pub async fn run(
    deps: Deps,
    listeners: Listeners,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let mut host = Host::new(readiness, shutdown);
    let database = deps.database.clone();
    host.readiness().add_check("database", move || {
        let database = database.clone();
        async move { database.ping().await }
    });
    host.readiness().add_bus_check(deps.bus.clone());
    host.serve_grpc(listeners.grpc, Routes::default())?;
    host.serve_admin(listeners.admin, axum::Router::new());
    let result = host.run().await;
    deps.database.close().await;
    Ok(result?)
}
