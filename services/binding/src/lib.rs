//! The binding service: system of record for tenants, mail accounts,
//! MSISDN bindings, devices and preferences.

pub mod cache;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod deliveries;
pub mod domain;
mod error;
mod events;
mod feed;
mod grpc;
pub mod keys;
mod lockout;
mod passwords;
mod registry;
mod settings;
mod sms_outbox;
pub mod store;
mod wire;

use std::sync::Arc;

use pushmail_common::bus::{self, EventBus};
use pushmail_common::health::Readiness;
use pushmail_common::host::Host;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::Error;
use store::Database;

/// Service name, for telemetry and health.
pub const NAME: &str = "binding";

/// What the service needs from outside, connected.
pub struct Deps {
    /// Event bus for `BindingChanged` and OTP SMS.
    pub(crate) bus: Arc<dyn EventBus>,
    /// The database.
    pub(crate) database: Database,
    /// Secrets for credentials, codes, device tokens and callers.
    pub(crate) keys: keys::Keys,
    /// The shared cache layer; `None` keeps only the in-process layer.
    pub(crate) redis: Option<ConnectionManager>,
    /// Cache settings.
    pub(crate) cache: cache::CacheConfig,
    /// Delivery log settings.
    pub(crate) deliveries: deliveries::DeliveriesConfig,
    /// SMS outbox settings.
    pub(crate) sms_outbox: sms_outbox::SmsOutboxConfig,
    /// Limits and policies the operations enforce.
    pub(crate) settings: registry::Settings,
    /// Bounds of the gRPC server.
    pub(crate) grpc_limits: pushmail_common::listen::GrpcLimits,
}

/// Bound listeners (port 0 in tests).
pub type Listeners = pushmail_common::host::GrpcListeners;

impl Deps {
    /// Checks the secrets, connects and migrates the database, connects
    /// Redis and creates binding's topics; `bus` is shared in standalone mode.
    pub async fn connect(config: &Config, bus: Arc<dyn EventBus>) -> Result<Self, Error> {
        // Keys first: a missing secret stops start-up before any connection.
        let keys = keys::Keys::from_config(&config.security)?;
        let egress = config.accounts.policy().map_err(|e| {
            pushmail_common::config::ConfigError::invalid(
                "accounts.allowed_networks",
                e.to_string(),
            )
        })?;
        let database = Database::connect(&config.database).await?;
        database.migrate().await?;
        let redis = if config.cache.enabled {
            config
                .cache
                .shared
                .connect(pushmail_common::redis::Durability::Cache)
                .await?
        } else {
            None
        };
        events::Events::new(bus.clone()).ensure_topics().await?;
        Ok(Self {
            bus,
            database,
            keys,
            redis,
            cache: config.cache.clone(),
            deliveries: config.deliveries.clone(),
            sms_outbox: config.sms_outbox.clone(),
            settings: registry::Settings {
                verification: config.verification.clone(),
                relay: config.relay.clone(),
                app_passwords: config.app_passwords.clone(),
                egress,
                sms_outbox: config.sms_outbox.enabled,
            },
            grpc_limits: config.listeners.grpc,
        })
    }
}

/// Production entry point: connects everything from `config` and runs.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let bus = bus::connect(&config.bus, "pushmail-binding").await?;
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
    if let Some(redis) = deps.redis.clone() {
        host.readiness().add_redis_check(redis);
    }
    tracing::info!(
        device_token_public_key = %deps.keys.tokens.public_key_hex(),
        "session nodes verify device tokens with this key"
    );
    let store = deps.database.store();
    let cache = cache::TargetCache::new(store.clone(), &deps.cache, deps.redis);
    let registry = registry::Registry::new(
        store,
        Arc::new(deps.keys),
        events::Events::new(deps.bus.clone()),
        cache,
        deps.settings,
    );
    // A host task that ends stops the service: these run only when on.
    if deps.deliveries.enabled {
        let (bus, log, shutdown) = (deps.bus.clone(), registry.clone(), host.shutdown());
        let deliveries = deps.deliveries;
        host.spawn("delivery-log", async move {
            deliveries::run(bus, log, deliveries, shutdown).await
        });
    }
    if deps.sms_outbox.enabled {
        let (bus, keeper, shutdown) = (deps.bus.clone(), registry.clone(), host.shutdown());
        let outbox = deps.sms_outbox;
        host.spawn("sms-outbox", async move {
            sms_outbox::run(bus, keeper, outbox, shutdown).await
        });
    }
    let (pruner, stop) = (registry.clone(), host.shutdown());
    host.spawn_infallible("code-count-prune", async move {
        prune_code_counts(pruner, stop).await;
    });
    host.serve_grpc_with(listeners.grpc, grpc::routes(&registry), deps.grpc_limits)?;
    host.serve_admin(listeners.admin, axum::Router::new());
    let result = host.run().await;
    deps.database.close().await;
    Ok(result?)
}

/// Hourly, drops verification-code counts of past days (the table keeps a
/// row per tenant, number and day).
async fn prune_code_counts(registry: registry::Registry, shutdown: CancellationToken) {
    loop {
        match registry.prune_code_counts().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "old verification-code counts pruned"),
            Err(e) => {
                tracing::warn!(error = %pushmail_common::report::Report(&e), "verification-code count prune failed; next hour")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(std::time::Duration::from_secs(3_600)) => {}
        }
    }
}
