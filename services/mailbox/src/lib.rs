//! The mailbox service: the account's mailbox as the phone sees it.
//! `domain` holds what it reasons about; `backend` is the one trait every
//! place mail lives implements (`imap`: the provider's server, upstream;
//! `local`: the platform's own store, fed from the bus);
//! `sync` turns "what the phone holds" and "what the server has" into
//! resumable pages behind tokens; `service` is the gRPC edge, `accounts`
//! asks binding where an account's mail lives.

pub mod accounts;
pub mod backend;
mod bodies;
pub mod changes;
pub mod compose;
pub mod config;
pub mod domain;
mod error;
pub mod imap;
pub mod local;
mod refusal;
pub mod sends;
mod service;
pub mod submit;
pub mod sync;
pub mod uploads;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use pushmail_common::backoff::Backoff;
use pushmail_common::bus::{self, EventBus, SubscribeOptions};
use pushmail_common::health::Readiness;
use pushmail_common::host::Host;
use pushmail_common::upstream::Tls;
use pushmail_proto::mailbox::v1::mailbox_service_server::MailboxServiceServer;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

pub use config::Config;
pub use error::Error;

use accounts::{Accounts, BindingAccounts};
use imap::ImapConnector;
use sync::{PgStates, SqliteStates, States};

/// Service name, for telemetry and health.
pub const NAME: &str = "mailbox";

/// Partitions of a topic this service is the first to make (as every
/// service makes them).
const PARTITIONS: i32 = 12;

/// What the service needs from outside.
pub struct Deps {
    /// Where accounts' mail lives (binding).
    pub accounts: Arc<dyn Accounts>,
    /// Sync tokens' states.
    pub states: Arc<dyn States>,
    /// Sends already made, by idempotency key.
    pub sends: Arc<dyn sends::Sends>,
    /// What each upload has received.
    pub ledger: Arc<dyn uploads::Ledger>,
    /// Completed uploads, and the platform's own store's messages.
    pub blobs: Arc<dyn pushmail_common::blob::BlobStore>,
    /// The platform's own store's index.
    pub index: Arc<dyn local::Index>,
    /// Event bus (shared in standalone mode).
    pub bus: Arc<dyn EventBus>,
    /// Connections to mail servers.
    pub tls: Tls,
}

impl Deps {
    /// Connects binding and opens (migrating) the state database; `bus` is
    /// shared in standalone mode.
    pub async fn connect(config: &Config, bus: Arc<dyn EventBus>) -> Result<Self, Error> {
        let binding = config.binding.channel()?;
        let retention = config.sync.retention();
        let url = &config.database.url;
        // Sends are remembered as long as tokens.
        let remembered = retention.max_age;
        type Stores = (
            Arc<dyn States>,
            Arc<dyn sends::Sends>,
            Arc<dyn uploads::Ledger>,
            Arc<dyn local::Index>,
        );
        let (states, sends, ledger, index): Stores =
            if let Some(path) = url.strip_prefix("sqlite://") {
                let pool = pushmail_common::sqlite::open(std::path::Path::new(path), &[])
                    .await
                    .map_err(|e| Error::Database(sync::StatesError::Unavailable(Box::new(e))))?;
                (
                    Arc::new(
                        SqliteStates::open(pool.clone(), retention)
                            .await
                            .map_err(Error::Database)?,
                    ),
                    Arc::new(sends::SqliteSends::new(pool.clone(), remembered)),
                    Arc::new(uploads::SqliteLedger::new(pool.clone())),
                    Arc::new(local::SqliteIndex::new(pool)),
                )
            } else {
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(config.database.max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await
                    .map_err(|e| Error::Database(sync::StatesError::Unavailable(Box::new(e))))?;
                (
                    Arc::new(
                        PgStates::open(pool.clone(), retention)
                            .await
                            .map_err(Error::Database)?,
                    ),
                    Arc::new(sends::PgSends::new(pool.clone(), remembered)),
                    Arc::new(uploads::PgLedger::new(pool.clone())),
                    Arc::new(local::PgIndex::new(pool)),
                )
            };
        let extra = match &config.imap.extra_ca_file {
            Some(path) => Tls::read_cas(path).map_err(|e| {
                pushmail_common::config::ConfigError::invalid(
                    "imap.extra_ca_file",
                    format!("unreadable PEM: {e}"),
                )
            })?,
            None => Vec::new(),
        };
        let egress = config.imap.egress.policy().map_err(|e| {
            pushmail_common::config::ConfigError::invalid("imap.egress", e.to_string())
        })?;
        Ok(Self {
            accounts: Arc::new(BindingAccounts(binding)),
            states,
            sends,
            ledger,
            index,
            bus,
            blobs: config.blob.open(),
            tls: Tls::new(&extra).map_err(Error::Tls)?.with_egress(egress),
        })
    }
}

/// Files arrived mail of accounts in the platform's own store, forgets
/// deleted accounts, and removes what is past retention.
async fn spawn_feed(
    host: &mut Host,
    config: &Config,
    bus: Arc<dyn EventBus>,
    feed: local::feed::Feed,
) -> Result<(), Error> {
    // Consumers create what they read: librdkafka learns of a topic made
    // later only at its next metadata refresh (minutes).
    for topic in local::feed::topics() {
        bus.ensure_topic(&topic, PARTITIONS).await?;
    }
    // And what it writes, so its first change is not lost to a topic
    // still being made.
    bus.ensure_topic(pushmail_proto::topics::MAILBOX_CHANGED.name(), PARTITIONS)
        .await?;
    let subscription = bus
        .subscribe(SubscribeOptions {
            group: config.local.group.clone(),
            topics: local::feed::topics(),
        })
        .await?;
    let index = feed.index.clone();
    let shutdown = host.shutdown();
    host.spawn("local-feed", async move {
        bus::consume(subscription, &feed, Backoff::default(), shutdown).await
    });
    host.spawn_infallible(
        "local-retention",
        local::sweep_every(
            index,
            config.local.retention(config.blob.retention_days),
            Duration::from_secs(config.local.sweep_interval_seconds),
            host.shutdown(),
        ),
    );
    Ok(())
}

/// Bound listeners (port 0 in tests).
pub type Listeners = pushmail_common::host::GrpcListeners;

/// Production entry point.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let bus = bus::connect(&config.bus, "pushmail-mailbox").await?;
    let deps = Deps::connect(&config, bus).await?;
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
    let callers = config.security.service_keys.verifier().map_err(|e| {
        pushmail_common::config::ConfigError::invalid("security.service_keys", e.to_string())
    })?;
    let uploads = Arc::new(uploads::Uploads::new(
        deps.ledger,
        uploads::Staging::new(config.blob.local().staging(), config.blob.min_free_bytes),
        deps.blobs.clone(),
        config.uploads.limits(),
    ));
    let feed = local::feed::Feed {
        index: deps.index.clone(),
        blobs: deps.blobs.clone(),
        states: deps.states.clone(),
    };
    let mailboxes = service::Mailboxes {
        accounts: deps.accounts,
        local: deps.index.clone(),
        blobs: deps.blobs.clone(),
        imap: ImapConnector::pooled(
            deps.tls.clone(),
            Duration::from_secs(config.imap.timeout_seconds),
            imap::PoolLimits {
                per_account: config.imap.pool_per_account,
                total: config.imap.pool_total,
                idle: Duration::from_secs(config.imap.pool_idle_seconds),
            },
        )
        .with_max_message_bytes(config.imap.max_message_bytes),
        submitter: submit::Submitter::new(
            deps.tls,
            Duration::from_secs(config.submission.timeout_seconds),
            config.submission.hello_name.clone(),
        ),
        states: deps.states.clone(),
        sends: deps.sends,
        uploads: uploads.clone(),
        max_send_bytes: config.imap.max_message_bytes,
        sync: config.sync.clone(),
        callers,
        changes: changes::Changes::new(deps.bus.clone()),
        sending: Arc::new(tokio::sync::Semaphore::new(
            usize::try_from(config.submission.max_concurrent).unwrap_or(usize::MAX),
        )),
        busy_wait: Duration::from_secs(config.submission.busy_wait_seconds),
    };
    let mut host = Host::new(readiness, shutdown);
    host.readiness()
        .add_upstream_check("binding", config.binding.channel()?);
    host.readiness().add_blob_check(deps.blobs.clone());
    host.readiness().add_bus_check(deps.bus.clone());
    spawn_feed(&mut host, &config, deps.bus, feed).await?;
    let sweep = uploads::sweep_every(
        uploads,
        Duration::from_secs(config.uploads.sweep_interval_seconds),
        host.shutdown(),
    );
    host.spawn_infallible("upload-sweep", sweep);
    // An upload chunk, or a message a phone sends whole (ActiveSync's
    // SendMail), and its request's other fields.
    let decoding = usize::try_from(
        config
            .uploads
            .max_chunk_bytes
            .max(config.imap.max_message_bytes),
    )
    .unwrap_or(usize::MAX)
        + 64 * 1024;
    let server = MailboxServiceServer::new(service::Service(Arc::new(mailboxes)))
        .max_decoding_message_size(decoding.max(1 << 20))
        .max_encoding_message_size(16 << 20);
    host.serve_grpc_with(listeners.grpc, Routes::new(server), config.listeners.grpc)?;
    host.serve_admin(listeners.admin, axum::Router::new());
    Ok(host.run().await?)
}
