//! The push path as separate processes — binding, session, dispatch and
//! ingest, each its own binary with its own telemetry — on a Kafka broker,
//! PostgreSQL and Redis, for the full-platform and fault-injection tests.
//! Any of them can be killed with SIGKILL and started again on the same
//! ports and state, or stopped with SIGTERM (which flushes its spans).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use pushmail_common::bus::{BusConfig, KafkaConfig};
use pushmail_common::config::{AdminServerConfig, ServerConfig};
use pushmail_common::grpc::UpstreamConfig;
use pushmail_common::redact::SecretUrl;
use pushmail_common::redis::{StateStoreConfig, StateStoreKind};
use tokio::process::{Child, Command};

use crate::nodes::BindingAdmin;
use crate::{TestDatabase, credential_secret, free_port, wait_ready};

/// How long dispatch waits for a phone's ack before it falls back: a
/// duplicate still on its way is one that waited this long, so a test that
/// asserts "never twice" watches for at least twice this.
pub const ACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The platform's node binaries as cargo built them for the calling test:
/// `CARGO_BIN_EXE_*` is set only while a test crate compiles, so this
/// expands there.
#[macro_export]
macro_rules! binaries {
    () => {
        $crate::platform::Binaries {
            binding: env!("CARGO_BIN_EXE_binding-node").into(),
            session: env!("CARGO_BIN_EXE_session-node").into(),
            dispatch: env!("CARGO_BIN_EXE_dispatch-node").into(),
            ingest: env!("CARGO_BIN_EXE_ingest-node").into(),
            transcode: env!("CARGO_BIN_EXE_transcode-node").into(),
            gateway: env!("CARGO_BIN_EXE_gateway-node").into(),
        }
    };
}

/// The service binaries (the test passes `env!("CARGO_BIN_EXE_…")`).
pub struct Binaries {
    pub binding: PathBuf,
    pub session: PathBuf,
    pub dispatch: PathBuf,
    pub ingest: PathBuf,
    pub transcode: PathBuf,
    pub gateway: PathBuf,
}

/// One service process.
pub struct Service {
    name: &'static str,
    exe: PathBuf,
    config: PathBuf,
    log: PathBuf,
    admin: SocketAddr,
    child: Option<Child>,
}

impl Service {
    async fn start(
        name: &'static str,
        exe: &Path,
        config: &impl serde::Serialize,
        admin: SocketAddr,
        dir: &Path,
    ) -> anyhow::Result<Self> {
        let file = dir.join(format!("{name}.toml"));
        std::fs::write(&file, toml::to_string(config)?)?;
        let mut service = Self {
            name,
            exe: exe.to_path_buf(),
            config: file,
            log: dir.join(format!("{name}.log")),
            admin,
            child: None,
        };
        service.restart().await?;
        Ok(service)
    }

    /// Starts it (again) and waits until it reports ready.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill().await?;
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(&self.exe)
            .arg("--config")
            .arg(&self.config)
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", self.exe.display()))?;
        self.child = Some(child);
        wait_ready(self.admin, Duration::from_secs(60))
            .await
            .with_context(|| format!("{} not ready; its log:\n{}", self.name, self.log()))
    }

    /// SIGKILL: nothing is flushed, closed or released.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// SIGTERM, then waits for the exit (spans are flushed on the way out).
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Some(pid) = child.id() {
            Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await?;
        }
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .with_context(|| format!("{} did not stop within 30 s", self.name))??;
        anyhow::ensure!(
            status.success(),
            "{} stopped with {status}; its log:\n{}",
            self.name,
            self.log()
        );
        Ok(())
    }

    /// Its admin address (`/healthz`, `/readyz`, `/metrics`).
    pub fn admin(&self) -> SocketAddr {
        self.admin
    }

    /// What it logged, every start included.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Every service as a process: binding, session, dispatch, ingest, and the
/// phone's fetch path, transcode and the gateway.
pub struct ProcessPlatform {
    pub binding: Service,
    pub session: Service,
    pub dispatch: Service,
    pub ingest: Service,
    pub transcode: Service,
    pub gateway: Service,
    /// Binding's admin API.
    pub api: BindingAdmin,
    /// Ingest's SMTP receiver.
    pub smtp: SocketAddr,
    /// Session's device endpoint.
    pub devices: SocketAddr,
    /// Ingest's LMTP receiver.
    pub lmtp: SocketAddr,
    /// Ingest's Dovecot webhook listener.
    pub webhook: SocketAddr,
    /// The gateway's public HTTP port (REST, portal, device fetch).
    pub gateway_http: SocketAddr,
    /// The gRPC ports, for callers that are not a pushmail service.
    pub grpc: GrpcPorts,
    /// Ingest's config (its marks show when a mailbox is watched).
    pub ingest_config: pushmail_ingest::Config,
    /// The key prefix of everything the platform keeps in Redis (ingest's
    /// marks have their own, in `ingest_config`).
    pub redis_prefix: String,
    database: TestDatabase,
    _dir: tempfile::TempDir,
}

/// Every gRPC server of the platform.
#[derive(Debug, Clone, Copy)]
pub struct GrpcPorts {
    pub binding: SocketAddr,
    pub session: SocketAddr,
    pub transcode: SocketAddr,
}

/// Where the platform's services meet their dependencies.
pub struct Wiring {
    /// The broker every service uses.
    pub kafka: KafkaConfig,
    /// An OTLP/gRPC collector for every service's spans.
    pub otlp: Option<SocketAddr>,
    /// Ingest's `smtp.require_auth`: the production posture, in which a
    /// recipient needs its tenant's relay login, certificate or network.
    pub require_auth: bool,
    /// The outbox's coalescing window (0: every mail its own notification,
    /// so a test can count them).
    pub coalesce_ms: u64,
    /// Listener bounds from [`tight`] instead of the defaults: deadlines a
    /// test can wait out and caps it can reach with a few hundred sockets.
    pub tight_listeners: bool,
    /// A Redis of the test's own (it may restart it) instead of the
    /// shared one; every key still under a fresh prefix.
    pub redis_url: Option<String>,
}

/// The listener bounds of a platform started with
/// [`Wiring::tight_listeners`].
pub mod tight {
    use pushmail_common::listen::HttpLimits;

    /// Request-head deadline of every HTTP listener, seconds.
    pub const HEADER_SECONDS: u64 = 2;
    /// Idle timeout of the gateway and the webhook, seconds.
    pub const IDLE_SECONDS: u64 = 4;
    /// Connections from one address on each HTTP listener.
    pub const HTTP_PER_PEER: usize = 64;
    /// Connections from one address on SMTP and on LMTP.
    pub const SMTP_PER_PEER: usize = 16;
    /// Deadline of an SMTP command line, seconds.
    pub const SMTP_TIMEOUT_SECONDS: u64 = 5;
    /// Connections from one address on each gRPC server (every service
    /// connects from loopback too: room for theirs).
    pub const GRPC_PER_PEER: usize = 128;
    /// The gateway API's burst per credential (at 60 a minute).
    pub const API_BURST: u32 = 5;
    /// New credentials one address may present at once.
    pub const NEW_CREDENTIALS_BURST: u32 = 20;
    /// Credentials the gateway tracks (the old limiter cleared its whole
    /// table past its size).
    pub const TRACKED_CREDENTIALS: usize = 100;

    /// An HTTP listener's bounds.
    pub fn http(idle_seconds: u64) -> HttpLimits {
        HttpLimits {
            max_connections_per_peer: HTTP_PER_PEER,
            header_read_timeout_seconds: HEADER_SECONDS,
            idle_timeout_seconds: idle_seconds,
            ..HttpLimits::default()
        }
    }

    /// A gRPC server's bounds.
    pub fn grpc() -> pushmail_common::listen::GrpcLimits {
        pushmail_common::listen::GrpcLimits {
            max_connections_per_peer: GRPC_PER_PEER,
            ..Default::default()
        }
    }
}

impl ProcessPlatform {
    /// Starts the four services, each ready before the next starts.
    pub async fn start(binaries: &Binaries, wiring: &Wiring) -> anyhow::Result<Self> {
        // Ports are picked free, then bound by another process: a test
        // running beside (a connection flood takes hundreds of ephemeral
        // ports) can take one in between. Such a start is tried again on
        // fresh ports; any other failure is the test's.
        let mut attempt = 1;
        loop {
            match Self::start_once(binaries, wiring).await {
                Err(err)
                    if attempt < 3 && format!("{err:#}").contains("Address already in use") =>
                {
                    attempt += 1;
                }
                started => return started,
            }
        }
    }

    async fn start_once(binaries: &Binaries, wiring: &Wiring) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let database = TestDatabase::create().await?;
        let mut redis = crate::redis_config();
        if let Some(url) = &wiring.redis_url {
            redis.url = pushmail_common::redact::SecretUrl::new(url.clone());
        }
        let bus = BusConfig {
            kafka: wiring.kafka.clone(),
            ..BusConfig::default()
        };
        let telemetry = pushmail_common::telemetry::TelemetryConfig {
            otlp_endpoint: wiring
                .otlp
                .map(|a| format!("http://{a}"))
                .unwrap_or_default(),
            ..Default::default()
        };
        let redis_store = StateStoreConfig {
            kind: StateStoreKind::Redis,
            redis: redis.clone(),
            ..Default::default()
        };
        let loopback = || SocketAddr::from(([127, 0, 0, 1], free_port()));
        // Dispatch is the only caller configured here; the others' configs
        // come from their helpers with their own credentials.
        let upstream = |addr: SocketAddr| {
            let mut upstream = UpstreamConfig::at(format!("http://{addr}"));
            upstream.token =
                credential_secret(pushmail_common::service_identity::Service::Dispatch);
            upstream
        };

        let binding_grpc = loopback();
        let gateway_http = loopback();
        let mut binding = pushmail_binding::Config {
            server: ServerConfig {
                grpc_addr: binding_grpc,
                admin_addr: loopback(),
            },
            bus: bus.clone(),
            telemetry: telemetry.clone(),
            security: crate::test_security(),
            deliveries: crate::test_deliveries(),
            ..Default::default()
        };
        binding.database.url = SecretUrl::new(&database.url);
        binding.cache.shared = redis_store.clone();
        // The test Dovecot listens on loopback; every other internal
        // network stays refused, as in production.
        binding.accounts = pushmail_common::egress::EgressConfig::loopback();
        // Short enough for a test to wait out a resend cooldown.
        binding.verification.resend_cooldown_seconds = 5;
        if wiring.tight_listeners {
            binding.listeners.grpc = tight::grpc();
        }
        let binding_service = Service::start(
            "binding",
            &binaries.binding,
            &binding,
            binding.server.admin_addr,
            dir.path(),
        )
        .await?;

        let mut session = crate::session_config();
        let session_grpc = loopback();
        session.server = ServerConfig {
            grpc_addr: session_grpc,
            admin_addr: loopback(),
        };
        session.directory = redis_store.clone();
        session.outbox.redis = redis.clone();
        session.outbox.coalesce_ms = wiring.coalesce_ms;
        session.bus = bus.clone();
        session.telemetry = telemetry.clone();
        session.devices.addr = loopback();
        session.devices.advertise = format!("http://{session_grpc}");
        session.devices.drain_window_seconds = 1;
        if wiring.tight_listeners {
            session.listeners.devices = pushmail_common::listen::HttpLimits {
                max_body_bytes: session.listeners.devices.max_body_bytes,
                ..tight::http(0)
            };
            session.listeners.grpc = tight::grpc();
        }
        let session_service = Service::start(
            "session",
            &binaries.session,
            &session,
            session.server.admin_addr,
            dir.path(),
        )
        .await?;

        let mut dispatch = pushmail_dispatch::Config {
            server: AdminServerConfig {
                admin_addr: loopback(),
            },
            binding: upstream(binding_grpc),
            session: upstream(session_grpc),
            state: redis_store.clone(),
            outbox: pushmail_outbox::OutboxSettings {
                redis: redis.clone(),
                coalesce_ms: wiring.coalesce_ms,
                ..Default::default()
            },
            bus: bus.clone(),
            telemetry: telemetry.clone(),
            ..Default::default()
        };
        dispatch.delivery.group = crate::unique("dispatch");
        dispatch.delivery.public_url = format!("http://{gateway_http}");
        dispatch.delivery.ack_timeout_ms =
            u32::try_from(ACK_TIMEOUT.as_millis()).unwrap_or(u32::MAX);
        dispatch.delivery.digest_interval_ms = 200;
        dispatch.delivery.traffic_flush_ms = 200;
        let dispatch_service = Service::start(
            "dispatch",
            &binaries.dispatch,
            &dispatch,
            dispatch.server.admin_addr,
            dir.path(),
        )
        .await?;

        let mut ingest = crate::nodes::ingest_config(binding_grpc, &dir.path().join("blobs"));
        ingest.marks.redis.url = redis.url.clone();
        let smtp = loopback();
        ingest.bus = bus;
        ingest.telemetry = telemetry;
        ingest.server.admin_addr = loopback();
        ingest.smtp.listen = smtp.to_string();
        ingest.smtp.require_auth = wiring.require_auth;
        let lmtp = loopback();
        let webhook = loopback();
        ingest.smtp.lmtp_listen = lmtp.to_string();
        ingest.webhook.listen = webhook.to_string();
        ingest.imap.refresh_seconds = 1;
        if wiring.tight_listeners {
            ingest.listeners.webhook = tight::http(tight::IDLE_SECONDS);
            ingest.smtp.max_connections_per_peer = tight::SMTP_PER_PEER;
            ingest.smtp.timeout_seconds = tight::SMTP_TIMEOUT_SECONDS;
        }
        let ingest_service = Service::start(
            "ingest",
            &binaries.ingest,
            &ingest,
            ingest.server.admin_addr,
            dir.path(),
        )
        .await?;

        let blobs = dir.path().join("blobs");
        let mut transcode = crate::edge::transcode_config(&blobs);
        let transcode_grpc = loopback();
        transcode.server = ServerConfig {
            grpc_addr: transcode_grpc,
            admin_addr: loopback(),
        };
        transcode.telemetry = ingest.telemetry.clone();
        let transcode_service = Service::start(
            "transcode",
            &binaries.transcode,
            &transcode,
            transcode.server.admin_addr,
            dir.path(),
        )
        .await?;

        let mut gateway = crate::edge::gateway_config(binding_grpc, transcode_grpc);
        gateway.session.endpoint = format!("http://{session_grpc}");
        gateway.server.http_addr = gateway_http;
        gateway.server.admin_addr = loopback();
        gateway.telemetry = ingest.telemetry.clone();
        if wiring.tight_listeners {
            gateway.listeners.http = tight::http(tight::IDLE_SECONDS);
            gateway.api.requests_per_minute = 60;
            gateway.api.burst = tight::API_BURST;
            gateway.api.new_credentials_burst_per_peer = tight::NEW_CREDENTIALS_BURST;
            gateway.api.max_tracked_credentials = tight::TRACKED_CREDENTIALS;
        }
        let gateway_service = Service::start(
            "gateway",
            &binaries.gateway,
            &gateway,
            gateway.server.admin_addr,
            dir.path(),
        )
        .await?;

        Ok(Self {
            transcode: transcode_service,
            gateway: gateway_service,
            binding: binding_service,
            session: session_service,
            dispatch: dispatch_service,
            ingest: ingest_service,
            api: BindingAdmin::connect(binding_grpc).await?,
            smtp,
            devices: session.devices.addr,
            lmtp,
            webhook,
            gateway_http,
            grpc: GrpcPorts {
                binding: binding_grpc,
                session: session_grpc,
                transcode: transcode_grpc,
            },
            ingest_config: ingest,
            redis_prefix: redis.key_prefix.clone(),
            database,
            _dir: dir,
        })
    }

    /// Every service's log, for a failure report.
    pub fn logs(&self) -> String {
        [
            &self.binding,
            &self.session,
            &self.dispatch,
            &self.ingest,
            &self.transcode,
            &self.gateway,
        ]
        .iter()
        .map(|s| format!("==== {} ====\n{}", s.name, s.log()))
        .collect::<Vec<_>>()
        .join("\n")
    }

    /// Stops every service with SIGTERM (the edge first, binding last) and
    /// drops the database.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.gateway.stop().await?;
        self.transcode.stop().await?;
        self.ingest.stop().await?;
        self.dispatch.stop().await?;
        self.session.stop().await?;
        self.binding.stop().await?;
        self.database.drop_database().await
    }
}
