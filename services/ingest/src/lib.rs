//! Mailbox ingest: learns that mail arrived (IMAP IDLE watchers, POP3
//! polling, the SMTP and LMTP receivers, the webhook) and emits
//! `MailArrived`.

pub mod accounts;
pub mod arrival;
pub mod checkpoints;
pub mod config;
mod error;
pub mod imap;
pub mod leases;
pub use pushmail_mime as mail;
pub mod marks;
pub mod pop3;
pub mod smtp;
pub mod tls;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use pushmail_common::blob::BlobStore;
use pushmail_common::bus::{self, EventBus};
use pushmail_common::config::ConfigError;
use pushmail_common::grpc::TracedChannel;
use pushmail_common::health::Readiness;
use pushmail_common::host::Host;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::Error;

/// Service name, for telemetry and health.
pub const NAME: &str = "ingest";

/// What the service needs from outside, connected.
pub struct Deps {
    /// Where `MailArrived` is published.
    pub bus: Arc<dyn EventBus>,
    /// The binding service.
    pub binding: TracedChannel,
    /// Raw message storage.
    pub blobs: Arc<dyn BlobStore>,
    /// What was announced (Redis, or memory standalone).
    pub marks: Arc<dyn marks::Pop3Marks>,
    /// IMAP high-water marks (the same store).
    pub imap_marks: Arc<dyn marks::ImapMarks>,
    /// Mailbox ownership among replicas (the same store).
    pub leases: Arc<leases::Leases>,
    /// The marks' Redis, for readiness.
    pub redis: Option<redis::aio::ConnectionManager>,
    /// TLS to mail servers.
    pub tls: tls::Tls,
}

impl Deps {
    /// Opens the connections; `bus` is shared in standalone mode.
    pub async fn connect(config: &Config, bus: Arc<dyn EventBus>) -> Result<Self, Error> {
        let redis = config
            .marks
            .connect(pushmail_common::redis::Durability::Durable(
                "ingest marks (what was announced of each mailbox)",
            ))
            .await?;
        let (marks, imap_marks): (Arc<dyn marks::Pop3Marks>, Arc<dyn marks::ImapMarks>) =
            match redis.clone() {
                Some(redis) => {
                    let store = Arc::new(marks::RedisMarks::new(
                        redis,
                        &config.marks.redis.key_prefix,
                    ));
                    (store.clone(), store)
                }
                None if config.marks.kind == pushmail_common::redis::StateStoreKind::Sqlite => {
                    let store = Arc::new(
                        marks::SqliteMarks::open(&config.marks.sqlite_path)
                            .await
                            .map_err(|e| {
                                ConfigError::invalid("marks.sqlite_path", e.to_string())
                            })?,
                    );
                    (store.clone(), store)
                }
                None => {
                    let store = Arc::new(marks::MemoryMarks::default());
                    (store.clone(), store)
                }
            };
        Ok(Self {
            bus,
            binding: config.binding.channel()?,
            blobs: config.blob.open(),
            marks,
            imap_marks,
            leases: leases::Leases::new(
                redis.clone(),
                &config.marks.redis.key_prefix,
                Duration::from_millis(config.sharding.lease_ms),
            ),
            redis,
            tls: tls::Tls::new(&extra_cas(config)?)
                .map_err(|e| ConfigError::invalid("pop3", format!("TLS setup: {e}")))?
                .with_egress(config.accounts.policy().map_err(|e| {
                    ConfigError::invalid("accounts.allowed_networks", e.to_string())
                })?),
        })
    }
}

/// The operator's extra CA certificates.
fn extra_cas(
    config: &Config,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, ConfigError> {
    let Some(path) = &config.pop3.extra_ca_file else {
        return Ok(Vec::new());
    };
    tls::Tls::read_cas(path)
        .map_err(|e| ConfigError::invalid("pop3.extra_ca_file", format!("unreadable PEM: {e}")))
}

/// Bound listeners (port 0 in tests).
#[derive(Debug)]
pub struct Listeners {
    /// Admin HTTP.
    pub admin: tokio::net::TcpListener,
    /// SMTP, unless turned off.
    pub smtp: Option<tokio::net::TcpListener>,
    /// LMTP, unless turned off.
    pub lmtp: Option<tokio::net::TcpListener>,
    /// The webhook's HTTP, unless turned off.
    pub webhook: Option<tokio::net::TcpListener>,
}

impl Listeners {
    /// Binds the configured addresses.
    pub async fn bind(config: &Config) -> std::io::Result<Self> {
        let admin = pushmail_common::host::AdminListener::bind(&config.server)
            .await?
            .admin;
        let bind = async |what: &str, addr: &str| -> std::io::Result<_> {
            if addr.is_empty() {
                return Ok(None);
            }
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot listen for {what} on {addr}: {e}"))
            })?;
            Ok(Some(listener))
        };
        Ok(Self {
            admin,
            smtp: bind("SMTP", &config.smtp.listen).await?,
            lmtp: bind("LMTP", &config.smtp.lmtp_listen).await?,
            webhook: bind("the webhook", &config.webhook.listen).await?,
        })
    }

    /// Free loopback ports for everything, for tests.
    pub async fn ephemeral() -> std::io::Result<Self> {
        let loopback = || tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0));
        Ok(Self {
            admin: loopback().await?,
            smtp: Some(loopback().await?),
            lmtp: Some(loopback().await?),
            webhook: Some(loopback().await?),
        })
    }
}

/// Production entry point.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let bus = bus::connect(&config.bus, "pushmail-ingest").await?;
    let deps = Deps::connect(&config, bus).await?;
    let listeners = Listeners::bind(&config).await?;
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
    let mut host = Host::new(readiness, shutdown.clone());
    deps.bus
        .ensure_topic(pushmail_proto::topics::MAIL_ARRIVED.name(), 12)
        .await?;
    ready_when_dependencies_are(&host, &deps);
    let announcer = arrival::Announcer::new(
        deps.bus,
        deps.blobs,
        mail::Limits {
            max_message_bytes: config
                .pop3
                .max_message_bytes
                .max(config.smtp.max_message_bytes),
            ..mail::Limits::default()
        },
    );
    let c = &config.smtp;
    let recipients: Arc<dyn smtp::Recipients> = Arc::new(smtp::BindingRecipients::new(
        deps.binding.clone(),
        c.recipient_cache_entries,
        Duration::from_secs(c.recipient_found_ttl_seconds),
        Duration::from_secs(c.recipient_unknown_ttl_seconds),
    ));
    serve_smtp(
        &mut host,
        &config.smtp,
        [
            (smtp::Mode::Smtp, "smtp", listeners.smtp),
            (smtp::Mode::Lmtp, "lmtp", listeners.lmtp),
        ],
        &deps.binding,
        &recipients,
        &announcer,
        &shutdown,
    )?;
    if let Some(listener) = listeners.webhook {
        let hook = webhook::Webhook {
            keys: Arc::new(webhook::TenantKeys::new(
                deps.binding.clone(),
                Duration::from_secs(config.webhook.key_cache_seconds),
            )),
            recipients,
            announcer: announcer.clone(),
        };
        host.serve_http_with("webhook", listener, hook.router(), config.listeners.webhook);
    }
    let checkpoints: Arc<dyn checkpoints::Checkpoints> =
        Arc::new(checkpoints::BindingCheckpoints::new(deps.binding.clone()));
    let watchers = imap::Runner {
        binding: deps.binding.clone(),
        tls: deps.tls.clone(),
        marks: deps.imap_marks,
        checkpoints: checkpoints.clone(),
        announcer: announcer.clone(),
        config: config.imap,
        leases: deps.leases.clone(),
    };
    host.spawn_infallible("imap", watchers.run(shutdown.clone()));
    let runner = pop3::Runner {
        binding: deps.binding,
        tls: deps.tls,
        marks: deps.marks,
        checkpoints,
        announcer,
        config: config.pop3,
        leases: deps.leases.clone(),
    };
    host.spawn_infallible("leases", deps.leases.clone().run(shutdown.clone()));
    // Ingest writes the blob store, so it keeps it within retention.
    let sweep = pushmail_common::blob::sweep_every(config.blob.clone(), shutdown.clone());
    host.spawn_infallible("blob-sweep", async move {
        sweep.await;
    });
    host.spawn_infallible("pop3", runner.run(shutdown));
    host.serve_admin(listeners.admin, axum::Router::new());
    Ok(host.run().await?)
}

/// Ready only while the bus, binding, the blob store and Redis (when used)
/// answer.
fn ready_when_dependencies_are(host: &Host, deps: &Deps) {
    host.readiness().add_bus_check(deps.bus.clone());
    host.readiness()
        .add_upstream_check("binding", deps.binding.clone());
    host.readiness().add_blob_check(deps.blobs.clone());
    if let Some(redis) = deps.redis.clone() {
        host.readiness().add_redis_check(redis);
    }
}

/// The SMTP and LMTP receivers, on the listeners that are configured.
fn serve_smtp(
    host: &mut Host,
    c: &config::SmtpConfig,
    receivers: [(smtp::Mode, &'static str, Option<tokio::net::TcpListener>); 2],
    binding: &TracedChannel,
    recipients: &Arc<dyn smtp::Recipients>,
    announcer: &arrival::Announcer,
    shutdown: &CancellationToken,
) -> Result<(), Error> {
    if receivers.iter().all(|(_, _, l)| l.is_none()) {
        return Ok(());
    }
    let tls = if c.tls.enabled {
        Some(c.tls.acceptor("smtp.tls.")?)
    } else {
        None
    };
    let settings = smtp::Settings {
        hostname: c.hostname.clone(),
        max_message_bytes: c.max_message_bytes,
        max_recipients: c.max_recipients,
        max_connections: c.max_connections,
        max_connections_per_peer: c.max_connections_per_peer,
        timeout: Duration::from_secs(c.timeout_seconds),
        require_tls: c.require_tls,
        require_auth: c.require_auth,
    };
    let relay_auth: Arc<dyn smtp::RelayAuth> =
        Arc::new(smtp::BindingRelayAuth::new(binding.clone()));
    for (mode, name, listener) in receivers {
        let Some(listener) = listener else { continue };
        let receiver = smtp::Receiver::new(
            mode,
            listener,
            settings.clone(),
            recipients.clone(),
            announcer.clone(),
            tls.clone(),
        )
        .with_relay_auth(relay_auth.clone());
        host.spawn_infallible(name, receiver.run(shutdown.clone()));
    }
    Ok(())
}
