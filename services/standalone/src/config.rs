//! Standalone configuration (`PUSHMAIL_STANDALONE__…`): every service's
//! config, with embedded adapters and loopback addresses as defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use pushmail_common::blob::BlobConfig;
use pushmail_common::bus::{BusConfig, BusKind, SqliteBusConfig};
use pushmail_common::config::{
    AdminServerConfig, ConfigError, ServerConfig, ServiceConfig, ShutdownConfig,
};
use pushmail_common::grpc::UpstreamConfig;
use pushmail_common::redact::SecretUrl;
use pushmail_common::redis::StateStoreConfig;
use pushmail_common::telemetry::TelemetryConfig;
use pushmail_outbox::OutboxSettings;
use serde::{Deserialize, Serialize};

/// The standalone platform's config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct StandaloneConfig {
    /// Where standalone keeps everything it writes: secrets, the binding
    /// database, blobs, the bus, outboxes, dispatch state and ingest marks
    /// (each embedded store's path left empty is placed here).
    pub(crate) data_dir: PathBuf,
    /// Start a demo device for `demo@pushmail.local` once ready (`make run`).
    pub(crate) demo: bool,
    /// Logs, traces, metrics for the whole process.
    pub(crate) telemetry: TelemetryConfig,
    /// Stop behaviour for the whole process.
    pub(crate) shutdown: ShutdownConfig,
    /// The bus shared by all services: `sqlite` (durable, the default) or
    /// `memory`; a relative `sqlite.path` is under `data_dir`.
    pub(crate) bus: BusConfig,
    /// Binding service.
    pub(crate) binding: pushmail_binding::Config,
    /// Session service.
    pub(crate) session: pushmail_session::Config,
    /// Transcode service.
    pub(crate) transcode: pushmail_transcode::Config,
    /// Ingest service.
    pub(crate) ingest: pushmail_ingest::Config,
    /// Dispatch service.
    pub(crate) dispatch: pushmail_dispatch::Config,
    /// Gateway.
    pub(crate) gateway: pushmail_gateway::Config,
    /// The mailbox service (the phone's mailbox through the platform).
    pub(crate) mailbox: pushmail_mailbox::Config,
    /// The Exchange ActiveSync front door (phones' own mail apps).
    pub(crate) activesync: pushmail_activesync::Config,
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn memory_bus() -> BusConfig {
    BusConfig {
        kind: BusKind::Memory,
        ..BusConfig::default()
    }
}

impl Default for StandaloneConfig {
    fn default() -> Self {
        // Empty paths are placed under `data_dir` by `resolve`, so setting
        // `data_dir` alone moves every file.
        let blob = BlobConfig {
            dir: PathBuf::new(),
            ..BlobConfig::default()
        };
        Self {
            data_dir: PathBuf::from(".pushmail"),
            demo: false,
            telemetry: TelemetryConfig::default(),
            shutdown: ShutdownConfig { grace_seconds: 10 },
            bus: BusConfig {
                kind: BusKind::Sqlite,
                sqlite: SqliteBusConfig {
                    // Placed under `data_dir` by `resolve`.
                    path: PathBuf::new(),
                    ..SqliteBusConfig::default()
                },
                ..BusConfig::default()
            },
            binding: binding(),
            session: session(),
            transcode: transcode(blob.clone()),
            ingest: ingest(blob.clone()),
            dispatch: dispatch(),
            gateway: gateway(),
            mailbox: mailbox(blob),
            activesync: activesync(),
        }
    }
}

/// Binding in one process: SQLite under `data_dir`, the in-process cache.
fn binding() -> pushmail_binding::Config {
    let mut binding = pushmail_binding::Config {
        server: ServerConfig {
            grpc_addr: local(7101),
            admin_addr: local(9101),
        },
        bus: memory_bus(),
        ..Default::default()
    };
    binding.database.url = SecretUrl::new("");
    // One process: the in-process cache layer is the only one needed.
    binding.cache.shared = pushmail_common::redis::StateStoreConfig::memory();
    // Standalone runs beside its mail server (Dovecot on this machine):
    // loopback mailbox hosts are allowed here, and only here by default.
    binding.accounts = pushmail_common::egress::EgressConfig::loopback();
    // No SMS centre here: every SMS is kept for the portal's SMS outbox
    // (and printed in the terminal), so a newcomer's own number can be
    // verified with the code it would have received.
    binding.sms_outbox.enabled = true;
    binding
}

/// Session on loopback, its outbox a SQLite file under `data_dir`.
fn session() -> pushmail_session::Config {
    pushmail_session::Config {
        server: ServerConfig {
            grpc_addr: local(7102),
            admin_addr: local(9102),
        },
        // Every lease dies with the process's connections: after a
        // restart there is nothing for a kept directory to say.
        directory: StateStoreConfig::memory(),
        outbox: OutboxSettings::sqlite(PathBuf::new()),
        bus: memory_bus(),
        devices: pushmail_session::config::DevicesConfig {
            addr: local(8102),
            advertise: "http://127.0.0.1:7102".to_owned(),
            // Fits in the standalone grace period.
            drain_window_seconds: 3,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Transcode on loopback, reading the shared blob store.
fn transcode(blob: BlobConfig) -> pushmail_transcode::Config {
    pushmail_transcode::Config {
        server: ServerConfig {
            grpc_addr: local(7103),
            admin_addr: local(9103),
        },
        blob: blob.clone(),
        ..Default::default()
    }
}

/// Ingest on loopback: SMTP and LMTP for the local mail server, marks in
/// SQLite under `data_dir`.
fn ingest(blob: BlobConfig) -> pushmail_ingest::Config {
    pushmail_ingest::Config {
        server: AdminServerConfig {
            admin_addr: local(9104),
        },
        bus: memory_bus(),
        binding: UpstreamConfig::at("http://127.0.0.1:7101"),
        blob,
        marks: StateStoreConfig::sqlite(PathBuf::new()),
        smtp: pushmail_ingest::config::SmtpConfig {
            listen: "127.0.0.1:2525".to_owned(),
            lmtp_listen: "127.0.0.1:2424".to_owned(),
            hostname: "localhost".to_owned(),
            // Loopback only, one user: anyone who can connect is trusted.
            require_auth: false,
            ..Default::default()
        },
        webhook: pushmail_ingest::config::WebhookConfig {
            listen: "127.0.0.1:8104".to_owned(),
            ..Default::default()
        },
        accounts: pushmail_common::egress::EgressConfig::loopback(),
        imap: pushmail_ingest::config::ImapConfig {
            // A mailbox added in the portal is watched within
            // seconds; one local binding answers the list cheaply.
            refresh_seconds: 5,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Dispatch with its state in SQLite under `data_dir`.
fn dispatch() -> pushmail_dispatch::Config {
    pushmail_dispatch::Config {
        server: AdminServerConfig {
            admin_addr: local(9105),
        },
        bus: memory_bus(),
        binding: UpstreamConfig::at("http://127.0.0.1:7101"),
        session: UpstreamConfig::at("http://127.0.0.1:7102"),
        state: StateStoreConfig::sqlite(PathBuf::new()),
        // Unused: dispatch is handed session's outbox (one file).
        outbox: OutboxSettings::memory(),
        delivery: pushmail_dispatch::config::DeliveryConfig {
            // Device fetch is the gateway's.
            public_url: "http://127.0.0.1:8080".to_owned(),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The gateway on loopback, the portal over plain HTTP.
fn gateway() -> pushmail_gateway::Config {
    pushmail_gateway::Config {
        server: pushmail_gateway::config::GatewayServerConfig {
            http_addr: local(8080),
            admin_addr: local(9106),
        },
        binding: UpstreamConfig::at("http://127.0.0.1:7101"),
        transcode: UpstreamConfig::at("http://127.0.0.1:7103"),
        session: UpstreamConfig::at("http://127.0.0.1:7102"),
        // The portal is served over plain HTTP on loopback here.
        portal: pushmail_gateway::config::PortalConfig {
            secure_cookie: false,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn mailbox(blob: BlobConfig) -> pushmail_mailbox::Config {
    let mut mailbox = pushmail_mailbox::Config {
        server: ServerConfig {
            grpc_addr: local(7108),
            admin_addr: local(9108),
        },
        binding: UpstreamConfig::at("http://127.0.0.1:7101"),
        blob,
        ..Default::default()
    };
    // Placed under `data_dir` by `resolve`.
    mailbox.database.url = String::new();
    // Beside its mail server, as binding and ingest.
    mailbox.imap.egress = pushmail_common::egress::EgressConfig::loopback();
    mailbox.submission.hello_name = "localhost".to_owned();
    mailbox
}

/// Plain HTTP on loopback, as the gateway: standalone is a workstation.
fn activesync() -> pushmail_activesync::Config {
    pushmail_activesync::Config {
        server: pushmail_activesync::config::ActiveSyncServerConfig {
            http_addr: local(8082),
            admin_addr: local(9109),
        },
        binding: UpstreamConfig::at("http://127.0.0.1:7101"),
        mailbox: UpstreamConfig {
            timeout_ms: 120_000,
            ..UpstreamConfig::at("http://127.0.0.1:7108")
        },
        session: UpstreamConfig::at("http://127.0.0.1:7102"),
        public_url: "http://127.0.0.1:8082/Microsoft-Server-ActiveSync".to_owned(),
        ..Default::default()
    }
}

impl StandaloneConfig {
    /// Moves every embedded store to a fresh `data_dir` (the load
    /// generator's runs); stores on servers (PostgreSQL, Redis) stay.
    #[cfg(feature = "loadgen")]
    pub(crate) fn relocate(&mut self, data_dir: &std::path::Path) {
        self.data_dir = data_dir.to_path_buf();
        for path in [
            &mut self.bus.sqlite.path,
            &mut self.transcode.blob.dir,
            &mut self.ingest.blob.dir,
            &mut self.session.outbox.sqlite_path,
            &mut self.dispatch.state.sqlite_path,
            &mut self.ingest.marks.sqlite_path,
            &mut self.mailbox.blob.dir,
        ] {
            path.clear();
        }
        if self.mailbox.database.url.starts_with("sqlite:") {
            self.mailbox.database.url.clear();
        }
        if self.binding.database.url.expose().starts_with("sqlite:") {
            self.binding.database.url = SecretUrl::new("");
        }
        self.resolve();
    }
}

/// Sets `path` to `data_dir`/`name` when it was left empty.
fn place(path: &mut PathBuf, data_dir: &std::path::Path, name: &str) {
    if path.as_os_str().is_empty() {
        *path = data_dir.join(name);
    }
}

impl ServiceConfig for StandaloneConfig {
    const NAME: &'static str = "standalone";

    fn resolve(&mut self) {
        let data = self.data_dir.clone();
        place(&mut self.bus.sqlite.path, &data, "bus.db");
        place(&mut self.transcode.blob.dir, &data, "blobs");
        place(&mut self.ingest.blob.dir, &data, "blobs");
        place(&mut self.session.outbox.sqlite_path, &data, "outbox.db");
        place(&mut self.dispatch.state.sqlite_path, &data, "dispatch.db");
        place(&mut self.ingest.marks.sqlite_path, &data, "marks.db");
        place(&mut self.mailbox.blob.dir, &data, "blobs");
        if self.mailbox.database.url.is_empty() {
            self.mailbox.database.url = format!("sqlite://{}", data.join("mailbox.db").display());
        }
        if self.binding.database.url.expose().is_empty() {
            self.binding.database.url = SecretUrl::new(format!(
                "sqlite://{}?mode=rwc",
                data.join("binding.db").display()
            ));
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.telemetry.validate("telemetry.")?;
        self.bus.validate("bus.")?;
        self.shutdown.validate("shutdown.")?;
        self.binding.validate().map_err(|e| e.nested("binding."))?;
        self.session.validate().map_err(|e| e.nested("session."))?;
        self.transcode
            .validate()
            .map_err(|e| e.nested("transcode."))?;
        self.ingest.validate().map_err(|e| e.nested("ingest."))?;
        self.dispatch
            .validate()
            .map_err(|e| e.nested("dispatch."))?;
        self.gateway.validate().map_err(|e| e.nested("gateway."))?;
        self.mailbox.validate().map_err(|e| e.nested("mailbox."))?;
        self.activesync
            .validate()
            .map_err(|e| e.nested("activesync."))
    }
}

pushmail_common::impl_hosted!(StandaloneConfig);
