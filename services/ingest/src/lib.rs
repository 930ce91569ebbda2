//! Mailbox ingest: learns that mail arrived (IMAP IDLE, POP3, SMTP/LMTP,
//! webhook) and emits `MailArrived`. The receivers arrive with [4/9]; this
//! is the hosting and the connections they will use.

pub mod arrival;
pub mod config;
pub mod error;
pub mod mail;
pub mod marks;
pub mod pop3;
pub mod tls;

use std::sync::Arc;

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
    /// The marks' Redis, for readiness.
    pub redis: Option<redis::aio::ConnectionManager>,
    /// TLS to mail servers.
    pub tls: tls::Tls,
}

impl Deps {
    /// Opens the connections; `bus` is shared in standalone mode.
    pub async fn connect(config: &Config, bus: Arc<dyn EventBus>) -> Result<Self, Error> {
        let redis = config.marks.connect().await?;
        let marks: Arc<dyn marks::Pop3Marks> = match redis.clone() {
            Some(redis) => Arc::new(marks::RedisMarks::new(
                redis,
                &config.marks.redis.key_prefix,
            )),
            None => Arc::new(marks::MemoryMarks::default()),
        };
        Ok(Self {
            bus,
            binding: config.binding.channel()?,
            blobs: config.blob.open(),
            marks,
            redis,
            tls: tls::Tls::new(&extra_cas(config)?)
                .map_err(|e| ConfigError::invalid("pop3", format!("TLS setup: {e}")))?,
        })
    }
}

/// The operator's extra CA certificates.
fn extra_cas(
    config: &Config,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, ConfigError> {
    use rustls::pki_types::pem::PemObject as _;
    let Some(path) = &config.pop3.extra_ca_file else {
        return Ok(Vec::new());
    };
    rustls::pki_types::CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect())
        .map_err(|e| ConfigError::invalid("pop3.extra_ca_file", format!("unreadable PEM: {e}")))
}

/// Bound listeners (port 0 in tests).
pub type Listeners = pushmail_common::host::AdminListener;

/// Production entry point.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let bus = bus::connect(&config.bus, "pushmail-ingest")?;
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
    let mut host = Host::new(readiness, shutdown.clone());
    deps.bus
        .ensure_topic(pushmail_proto::topics::MAIL_ARRIVED.name(), 12)
        .await?;
    host.readiness().add_bus_check(deps.bus.clone());
    host.readiness()
        .add_upstream_check("binding", deps.binding.clone());
    host.readiness().add_blob_check(deps.blobs.clone());
    if let Some(redis) = deps.redis {
        host.readiness()
            .add_check("redis", move || pushmail_common::redis::ping(redis.clone()));
    }
    let announcer = arrival::Announcer::new(
        deps.bus,
        deps.blobs,
        mail::Limits {
            max_message_bytes: config.pop3.max_message_bytes,
            ..mail::Limits::default()
        },
    );
    let runner = pop3::Runner {
        binding: deps.binding,
        tls: deps.tls,
        marks: deps.marks,
        announcer,
        config: config.pop3,
    };
    host.spawn("pop3", runner.run(shutdown));
    host.serve_admin(listeners.admin, axum::Router::new());
    Ok(host.run().await?)
}
