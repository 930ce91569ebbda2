//! The SMPP connector: an optional process that takes the SMS dispatch and
//! binding publish on `pushmail.sms.outbound.v1` to partner SMS centres
//! over SMPP 3.4 as a transceiver ESME, and maps their delivery receipts
//! back to `pushmail.delivery.v1`. Carriers whose SMS centres consume the
//! topic themselves do not run it.
//!
//! `pdu.rs` is the wire format (the smpp34 crate's codec, and what it
//! lacks), `session.rs` one bound connection (window, enquire_link,
//! deliver_sm), `link.rs` an SMS centre kept bound and paced
//! (`throttle.rs`), `connector.rs` the topic side, `receipt.rs` the
//! receipts, `state.rs` what survives restarts.

pub mod config;
mod connector;
pub mod error;
mod link;
mod pdu;
mod receipt;
mod session;
pub mod state;
mod throttle;

use std::sync::Arc;
use std::time::Duration;

use pushmail_common::backoff::Backoff;
use pushmail_common::bus::{self, EventBus, SubscribeOptions};
use pushmail_common::health::Readiness;
use pushmail_common::host::Host;
use pushmail_proto::topics;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::Error;

/// Service name, for telemetry and health.
pub const NAME: &str = "smpp";

/// Partitions of the topics the connector creates when the broker lacks them.
const PARTITIONS: i32 = 12;

/// deliver_sm waiting to be answered, across links.
const INBOUND_QUEUE: usize = 1_024;

/// What the connector needs from outside, connected.
pub struct Deps {
    /// Event bus.
    pub bus: Arc<dyn EventBus>,
    /// Redis for progress and receipts; `None` keeps them in memory.
    pub redis: Option<ConnectionManager>,
}

/// Bound listeners (port 0 in tests).
pub type Listeners = pushmail_common::host::AdminListener;

/// Production entry point.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let deps = Deps {
        bus: bus::connect(&config.bus, "pushmail-smpp").await?,
        redis: config
            .state
            .connect(pushmail_common::redis::Durability::Durable(
                "SMS submit progress and receipt routing",
            ))
            .await?,
    };
    let listeners = Listeners::bind(&config.server).await?;
    run(config, deps, listeners, Readiness::new(NAME), shutdown).await
}

/// Serves until `shutdown`: one link per SMS centre, the consumer, receipts.
pub async fn run(
    config: Config,
    deps: Deps,
    listeners: Listeners,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let mut host = Host::new(readiness, shutdown);
    host.readiness().add_bus_check(deps.bus.clone());
    let store: Arc<dyn state::Store> = match deps.redis {
        Some(redis) => {
            host.readiness().add_redis_check(redis.clone());
            Arc::new(state::RedisStore::new(
                redis,
                &config.state.redis.key_prefix,
            ))
        }
        None => Arc::new(state::MemoryStore::default()),
    };
    for topic in [
        topics::SMS_OUTBOUND.name(),
        topics::DELIVERY.name(),
        topics::DISPATCH_DLQ.name(),
    ] {
        deps.bus.ensure_topic(topic, PARTITIONS).await?;
    }
    let bind_wait = Duration::from_millis(config.connector.bind_wait_ms);
    let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
    let mut routes = connector::Routes::default();
    // Links outlive the consumer: they unbind on their own token, after it.
    let links_stop = CancellationToken::new();
    for smsc in &config.smsc {
        let link = Arc::new(link::Link::new(smsc, bind_wait));
        routes.add(smsc.prefixes.clone(), link.clone());
        let inbound = inbound_tx.clone();
        let stop = links_stop.clone();
        // A host task, so a stop waits for the link's unbind (bounded by
        // its response timeout) before the process exits.
        host.spawn_infallible(&format!("smsc-{}", smsc.name), async move {
            link.run(inbound, stop).await;
        });
    }
    drop(inbound_tx);
    let links: Vec<_> = routes.links().cloned().collect();
    host.readiness().add_check("smsc", move || {
        let bound = links.iter().filter(|l| l.is_bound()).count();
        let total = links.len();
        async move {
            if bound == 0 {
                Err(NoneBound { total })
            } else {
                Ok(())
            }
        }
    });
    let connector = Arc::new(connector::Connector {
        bus: deps.bus.clone(),
        routes,
        store,
        ttl: Duration::from_secs(config.connector.receipt_ttl_seconds),
    });
    tokio::spawn(connector.clone().receipts(inbound_rx));
    let subscription = deps
        .bus
        .subscribe(SubscribeOptions {
            group: config.connector.group.clone(),
            topics: vec![topics::SMS_OUTBOUND.name().to_owned()],
        })
        .await?;
    let shutdown = host.shutdown();
    let lanes = config.connector.concurrency;
    host.spawn("sms-outbound", async move {
        // Messages to one number share a lane (the record key), so the
        // parts of a notice and the wake-ups reach the SMS centre in order.
        let consumed = bus::consume_concurrently(
            subscription,
            connector,
            lanes,
            Backoff {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(30),
            },
            shutdown,
        )
        .await;
        links_stop.cancel();
        consumed
    });
    host.serve_admin(listeners.admin, axum::Router::new());
    Ok(host.run().await?)
}

/// No SMS centre link is bound: SMS cannot leave.
#[derive(Debug, thiserror::Error)]
#[error("none of {total} SMS centres is bound")]
struct NoneBound {
    total: usize,
}
