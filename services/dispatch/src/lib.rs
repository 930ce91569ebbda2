//! Dispatch: turns `MailArrived` into what each of the owner's phones
//! should see, by the cheapest channel that works. See `ladder.rs` for
//! the ladder, `dispatcher.rs` for carrying it out, `policy.rs` for preferences, `pushmail_sms_encoding` for what
//! partner SMS centres get; the outbox is `pushmail_outbox`.

pub mod config;
mod dispatcher;
mod domain;
pub mod error;
mod failure;
mod ladder;
mod policy;
mod receipts;
mod sessions;
pub mod state;
mod targets;

use std::sync::Arc;
use std::time::Duration;

use pushmail_common::backoff::Backoff;
use pushmail_common::bus::{self, EventBus, SubscribeOptions};
use pushmail_common::grpc::TracedChannel;
use pushmail_common::health::Readiness;
use pushmail_common::host::Host;
use pushmail_common::redis::StateStoreKind;
use pushmail_outbox::Outbox;
use pushmail_proto::binding::v1::binding_service_client::BindingServiceClient;
use pushmail_proto::topics;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use sessions::InProcessSessions;

use dispatcher::Dispatcher;
pub use error::Error;

/// Service name, for telemetry and health.
pub const NAME: &str = "dispatch";

/// Partitions of the topics dispatch creates when the broker lacks them.
const PARTITIONS: i32 = 12;

/// What the service needs from outside, connected.
pub struct Deps {
    /// Event bus.
    pub bus: Arc<dyn EventBus>,
    /// The binding service.
    pub binding: TracedChannel,
    /// The session service.
    pub session: TracedChannel,
    /// Redis of dispatch's state, when it is there (for readiness).
    pub redis: Option<ConnectionManager>,
    /// Claims, held mail and rate windows.
    pub state: Arc<dyn state::State>,
    /// The per-device outbox (shared with session).
    pub outbox: Arc<dyn Outbox>,
    /// This process's session node (standalone), asked without the network.
    pub local_session: Option<InProcessSessions>,
}

impl Deps {
    /// Opens the connections; `bus` is shared in standalone mode.
    pub async fn connect(config: &Config, bus: Arc<dyn EventBus>) -> Result<Self, Error> {
        let redis = config
            .state
            .connect(pushmail_common::redis::Durability::Durable(
                "dispatch state (SMS claims, mail held for quiet hours and rates)",
            ))
            .await?;
        let state: Arc<dyn state::State> = match (&redis, config.state.kind) {
            (Some(redis), _) => Arc::new(state::RedisState::new(
                redis.clone(),
                &config.state.redis.key_prefix,
            )),
            (None, StateStoreKind::Sqlite) => {
                Arc::new(state::SqliteState::open(&config.state.sqlite_path).await?)
            }
            (None, _) => Arc::new(state::MemoryState::default()),
        };
        Ok(Self {
            bus,
            binding: config.binding.channel()?,
            session: config.session.channel()?,
            redis,
            state,
            outbox: config.outbox.connect().await?,
            local_session: None,
        })
    }
}

/// Bound listeners (port 0 in tests).
pub type Listeners = pushmail_common::host::AdminListener;

/// Production entry point.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let bus = bus::connect(&config.bus, "pushmail-dispatch").await?;
    let deps = Deps::connect(&config, bus).await?;
    let listeners = Listeners::bind(&config.server).await?;
    run(config, deps, listeners, Readiness::new(NAME), shutdown).await
}

/// Serves until `shutdown`: the consumer, the digest loop, traffic flushes.
pub async fn run(
    config: Config,
    deps: Deps,
    listeners: Listeners,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let mut host = Host::new(readiness, shutdown);
    host.readiness().add_bus_check(deps.bus.clone());
    host.readiness()
        .add_upstream_check("binding", deps.binding.clone());
    host.readiness()
        .add_upstream_check("session", deps.session.clone());
    if let Some(redis) = deps.redis.clone() {
        host.readiness().add_redis_check(redis);
    }
    let state = deps.state.clone();
    // Consumers create what they read: librdkafka learns of a topic made
    // later only at its next metadata refresh (minutes).
    for topic in [
        topics::MAIL_ARRIVED.name(),
        topics::MAILBOX_CHANGED.name(),
        topics::SMS_OUTBOUND.name(),
        topics::DELIVERY.name(),
        topics::DISPATCH_DLQ.name(),
    ] {
        deps.bus.ensure_topic(topic, PARTITIONS).await?;
    }
    let binding = BindingServiceClient::new(deps.binding.clone());
    let targets = Arc::new(targets::Targets::new(
        binding.clone(),
        Duration::from_millis(config.delivery.targets_cache_ms),
    ));
    spawn_invalidations(&mut host, deps.bus.clone(), targets.clone()).await?;
    let dispatcher = Arc::new(Dispatcher {
        bus: deps.bus.clone(),
        binding,
        targets,
        sessions: sessions::Sessions::new(config.session.clone(), deps.session, deps.local_session),
        outbox: deps.outbox,
        state,
        traffic: pushmail_traffic::Traffic::default(),
        delivery: config.delivery.clone(),
    });
    let subscription = deps
        .bus
        .subscribe(SubscribeOptions {
            group: config.delivery.group.clone(),
            topics: vec![
                topics::MAIL_ARRIVED.name().to_owned(),
                topics::MAILBOX_CHANGED.name().to_owned(),
            ],
        })
        .await?;
    let shutdown = host.shutdown();
    let consumer = dispatcher.clone();
    let lanes = config.delivery.concurrency;
    host.spawn("mail-arrived", async move {
        // Mails of one account share a lane (its key), so they stay in order.
        bus::consume_concurrently(subscription, consumer, lanes, Backoff::default(), shutdown).await
    });
    let shutdown = host.shutdown();
    let digests = dispatcher.clone();
    let every = Duration::from_millis(config.delivery.digest_interval_ms);
    host.spawn_infallible("digests", async move {
        digest_loop(&digests, every, shutdown).await;
    });
    let shutdown = host.shutdown();
    let flusher = dispatcher.clone();
    let flush_every = Duration::from_millis(config.delivery.traffic_flush_ms);
    host.spawn_infallible("traffic", async move {
        flusher
            .traffic
            .flush_every(&flusher.binding, flush_every, shutdown)
            .await
    });
    host.serve_admin(listeners.admin, axum::Router::new());
    Ok(host.run().await?)
}

/// Every replica reads binding's changes with a group of its own, to drop
/// cached targets of changed accounts.
async fn spawn_invalidations(
    host: &mut Host,
    bus: Arc<dyn EventBus>,
    targets: Arc<targets::Targets>,
) -> Result<(), Error> {
    bus.ensure_topic(topics::BINDING_CHANGED.name(), PARTITIONS)
        .await?;
    let subscription = bus
        .subscribe(SubscribeOptions {
            group: format!("pushmail-dispatch-{}", uuid::Uuid::now_v7().simple()),
            topics: vec![topics::BINDING_CHANGED.name().to_owned()],
        })
        .await?;
    let shutdown = host.shutdown();
    host.spawn("binding-changes", async move {
        bus::consume(
            subscription,
            &targets::Invalidations(targets),
            Backoff::default(),
            shutdown,
        )
        .await
    });
    Ok(())
}

/// Sends the digests whose quiet window ended.
async fn digest_loop(dispatcher: &Dispatcher, every: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let due = match dispatcher
            .state
            .due(pushmail_common::clock::now_ms(), 100)
            .await
        {
            Ok(due) => due,
            Err(err) => {
                tracing::warn!(error = %pushmail_common::report::Report(&err), "held mails unreadable; retrying");
                continue;
            }
        };
        for device in due {
            // One device at a time: each receipt is published before the next step.
            let receipts = receipts::Receipts::inline(dispatcher.bus.clone());
            match dispatcher.digest(&device, &receipts).await {
                Ok(()) => {
                    if let Err(err) = dispatcher.state.digested(&device).await {
                        tracing::warn!(error = %pushmail_common::report::Report(&err), "digest sent but not marked; it is deduplicated when retried");
                    }
                }
                Err(err) => {
                    tracing::warn!(device = %device.device, error = %pushmail_common::report::Report(&err), "digest failed; retrying");
                }
            }
        }
    }
}
