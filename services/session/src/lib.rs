//! The session holder: device connections (WebSocket and long-poll) with
//! heartbeats, the directory of which node holds which device, `Deliver`
//! for dispatch, replay from the outbox on reconnect, and a jittered drain.
//!
//! Layers: `protocol` (frames) → `machine` (one connection's logic, no I/O)
//! → `conn`/`ping` (drivers) → `ws`/`grpc` (edges). `directory` and
//! `outbox` are the seams to Redis and to dispatch's outbox.

mod batch;
pub mod config;
mod conn;
pub mod directory;
pub mod error;
mod frame;
mod grpc;
mod hold;
mod hub;
pub mod listener;
mod machine;
mod node;
mod ping;
mod protocol;
mod receipts;
mod revocations;
mod socket;
mod stats;
mod writes;
mod ws;

use std::sync::Arc;
use std::time::Duration;

use pushmail_common::bus::{self, EventBus};
use pushmail_common::config::ConfigError;
use pushmail_common::health::Readiness;
use pushmail_common::host::{GrpcListeners, Host};
use pushmail_device_token::{Revocations, TokenVerifier};
use pushmail_outbox::Outbox;
use redis::aio::ConnectionManager;
use tokio::net::TcpListener;
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
    /// Where revocations come from.
    pub bus: Arc<dyn EventBus>,
    /// What devices missed: dispatch's per-device outbox.
    pub outbox: Arc<dyn Outbox>,
    /// Filled with this node's `SessionService` for callers in the same
    /// process (standalone's dispatch); `None` serves gRPC only.
    pub in_process: Option<InProcessSessions>,
}

/// The slot standalone's dispatch calls this node through.
pub type InProcessSessions = pushmail_common::grpc::InProcess<
    dyn pushmail_proto::session::v1::session_service_server::SessionService<
            HoldStream = tonic::codegen::BoxStream<pushmail_proto::session::v1::HoldEnd>,
        >,
>;

impl Deps {
    /// Connects the directory store; `bus` is shared in standalone mode.
    pub async fn connect(config: &Config, bus: Arc<dyn EventBus>) -> Result<Self, Error> {
        Ok(Self {
            redis: config
                .directory
                .connect(pushmail_common::redis::Durability::Cache)
                .await?,
            bus,
            outbox: config.outbox.connect().await?,
            in_process: None,
        })
    }
}

/// Bound listeners (port 0 in tests).
pub struct Listeners {
    /// gRPC and admin.
    pub server: GrpcListeners,
    /// The device endpoints.
    pub devices: TcpListener,
}

impl Listeners {
    /// Binds the configured addresses.
    pub async fn bind(config: &Config) -> std::io::Result<Self> {
        Ok(Self {
            server: GrpcListeners::bind(&config.server).await?,
            devices: listener::bind(
                config.devices.addr,
                config.devices.reuse_port,
                config.devices.backlog,
            )?,
        })
    }

    /// Free loopback ports, for tests.
    pub async fn ephemeral() -> std::io::Result<Self> {
        Ok(Self {
            server: GrpcListeners::ephemeral().await?,
            devices: TcpListener::bind("127.0.0.1:0").await?,
        })
    }
}

/// Production entry point.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let bus = bus::connect(&config.bus, "pushmail-session").await?;
    let deps = Deps::connect(&config, bus).await?;
    let listeners = Listeners::bind(&config).await?;
    run(config, deps, listeners, Readiness::new(NAME), shutdown).await
}

/// The node's shared state, from a configuration that must name the keys
/// tokens and peers are checked with.
fn node(config: &Config, deps: &Deps) -> Result<Arc<node::Node>, Error> {
    if config.tokens.public_key.is_empty() {
        return Err(ConfigError::invalid(
            "tokens.public_key",
            "is required: the binding service's device-token public key (it logs it at start)",
        )
        .into());
    }
    config
        .security
        .service_keys
        .validate("security.service_keys")?;
    if config.security.credential.is_empty() {
        return Err(ConfigError::invalid(
            "security.credential",
            "is required: this node's service credential, presented to peer nodes",
        )
        .into());
    }
    let services =
        config.security.service_keys.verifier().map_err(|_| {
            ConfigError::invalid("security.service_keys", "must be 64 hex digits each")
        })?;
    let verifier = TokenVerifier::from_public_key_hex(&config.tokens.public_key)
        .map_err(|_| ConfigError::invalid("tokens.public_key", "must be 64 hex digits"))?;
    let directory: Arc<dyn directory::Directory> = match deps.redis.clone() {
        Some(redis) => Arc::new(directory::RedisDirectory::new(
            redis,
            &config.directory.redis.key_prefix,
        )),
        None => Arc::new(directory::MemoryDirectory::default()),
    };
    let batch_window = Duration::from_millis(config.limits.batch_window_ms);
    Ok(Arc::new(node::Node {
        rules: Arc::new(config.rules()),
        hub: hub::Hub::default(),
        directory,
        outbox: deps.outbox.clone(),
        stats: stats::HeartbeatStats::default(),
        renewals: batch::Batch::new("renewals", batch_window, batch::MAX_HELD),
        verifier,
        revocations: Revocations::default(),
        address: config.devices.advertise.clone(),
        limits: config.limits.clone(),
        draining: CancellationToken::new(),
        credential: config.security.credential.clone(),
        services,
        ping_waiters: Default::default(),
        receipts: receipts::Receipts::new(deps.bus.clone()),
    }))
}

/// Serves until `shutdown`, then drains.
pub async fn run(
    config: Config,
    deps: Deps,
    listeners: Listeners,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let node = node(&config, &deps)?;

    let mut host = Host::new(readiness, shutdown.clone());
    if let Some(redis) = deps.redis {
        host.readiness().add_redis_check(redis);
    }
    host.readiness().add_bus_check(deps.bus.clone());
    revocations::spawn(&mut host, deps.bus, node.clone()).await?;
    // The writer outlives the drain: what connections queue while they
    // close is still written.
    let drained = CancellationToken::new();
    let (writer, stop) = (node.clone(), drained.clone());
    host.spawn_infallible("renewals", async move {
        let node = &*writer;
        node.renewals.run(stop, |b| writes::renew(node, b)).await;
    });
    if let Some(slot) = &deps.in_process {
        slot.set(Arc::new(grpc::Sessions::new(node.clone())));
    }
    host.serve_grpc_with(
        listeners.server.grpc,
        Routes::new(grpc::service(node.clone())),
        config.listeners.grpc,
    )?;
    host.serve_admin(listeners.server.admin, admin_routes(node.clone()));
    let tls = if config.devices.tls.enabled {
        Some(config.devices.tls.acceptor("devices.tls.")?)
    } else {
        None
    };
    let limits = config.listeners.devices;
    let devices = listener::DeviceListener::new("devices", listeners.devices, tls, &limits)?;
    let router = ws::router(node.clone());
    let stop = shutdown.clone();
    host.spawn("devices", listener::serve(devices, router, limits, stop));
    let window = Duration::from_secs(config.devices.drain_window_seconds);
    host.spawn_infallible("drain", drain(node, shutdown, window, drained));
    Ok(host.run().await?)
}

fn admin_routes(node: Arc<node::Node>) -> axum::Router {
    axum::Router::new().route(
        "/v1/heartbeats",
        axum::routing::get(move || {
            let node = node.clone();
            async move {
                axum::Json(serde_json::json!({
                    "connected": node.hub.len(),
                    "intervals": node.stats.rows(),
                }))
            }
        }),
    )
}

/// On shutdown: refuse new sessions, tell every device to reconnect after a
/// random delay within `window` (so they do not all land on the other nodes
/// at once), and wait (bounded) until they are gone from the directory;
/// then the batched writer writes what the closing connections queued.
async fn drain(
    node: Arc<node::Node>,
    shutdown: CancellationToken,
    window: Duration,
    drained: CancellationToken,
) {
    shutdown.cancelled().await;
    node.draining.cancel();
    let handles = node.hub.all();
    tracing::info!(
        devices = handles.len(),
        window_s = window.as_secs(),
        "draining"
    );
    let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
    for handle in handles {
        let after = Duration::from_millis(rand::random_range(0..window_ms));
        let _ = handle.tx.try_send(hub::Command::Drain(after));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !node.hub.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drained.cancel();
}
