//! Session holder configuration (`PUSHMAIL_SESSION__…`).

use std::net::SocketAddr;
use std::time::Duration;

use pushmail_common::bus::BusConfig;
use pushmail_common::config::{
    ConfigError, RuntimeConfig, ServerConfig, ServiceConfig, ShutdownConfig,
};
use pushmail_common::listen::{GrpcLimits, HttpLimits};
use pushmail_common::redis::StateStoreConfig;
use pushmail_common::telemetry::TelemetryConfig;
use pushmail_outbox::OutboxSettings;
use serde::{Deserialize, Serialize};

use crate::machine::Rules;

/// The whole session config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// gRPC (for dispatch) and admin listen addresses.
    pub server: ServerConfig,
    /// The device endpoints (`/v1/connect`, `/v1/ping`).
    pub devices: DevicesConfig,
    /// Logs, traces, metrics.
    pub telemetry: TelemetryConfig,
    /// Stop behaviour; the drain window must fit in the grace period.
    pub shutdown: ShutdownConfig,
    /// The device → node directory: Redis, or memory standalone.
    pub directory: StateStoreConfig,
    /// Dispatch's per-device outbox (the same store dispatch writes):
    /// read on hello, trimmed on ack.
    pub outbox: OutboxSettings,
    /// Where device revocations (`BindingChanged`) are read from.
    pub bus: BusConfig,
    /// Heartbeat bounds.
    pub heartbeat: HeartbeatConfig,
    /// Per-connection limits.
    pub limits: LimitsConfig,
    /// Device-token verification.
    pub tokens: TokensConfig,
    /// Who may call the gRPC API.
    pub security: SecurityConfig,
    /// Bounds of the device and gRPC listeners.
    pub listeners: ListenersConfig,
    /// Worker threads. One by default: an idle device costs a thread wake-up
    /// per heartbeat, and with more workers a wake-up also rouses a sibling
    /// to steal work, doubling idle CPU. One thread runs tokio's
    /// current-thread scheduler (cheaper per wake-up than a one-worker
    /// pool). Use more cores by running one process per core on the same
    /// port (`devices.reuse_port`).
    pub runtime: RuntimeConfig,
}

/// Callers of the gRPC API (dispatch, the gateway, other session nodes)
/// and this node's own credential.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// Public key(s) of the service credential issuer, required
    /// (`PUSHMAIL_SERVICE_KEYS` of `pushmail keys`).
    pub service_keys: pushmail_common::service_identity::ServiceKeys,
    /// This node's own service credential, presented to peer nodes when
    /// it takes a device over (`PUSHMAIL_SESSION_CREDENTIAL`), required.
    pub credential: pushmail_common::redact::Secret,
}

/// The device listener.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DevicesConfig {
    /// Listen address of the device endpoints.
    pub addr: SocketAddr,
    /// This node's gRPC address as other services reach it (recorded in
    /// the directory), e.g. `http://session-0.session:7102`.
    pub advertise: String,
    /// Spread the connections of the session drain over this window.
    pub drain_window_seconds: u64,
    /// TLS on the device endpoints.
    pub tls: pushmail_common::tls::ServerTlsConfig,
    /// Bind with SO_REUSEPORT, so several session processes share the port.
    pub reuse_port: bool,
    /// Listen backlog (connections waiting to be accepted during a reconnect storm).
    pub backlog: u32,
}

/// Bounds of the session's listeners.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ListenersConfig {
    /// The device port. A connection must send a whole request head (the
    /// WebSocket upgrade or a long poll) within `header_read_timeout_seconds`
    /// from connect or from its previous answer, so a client that sends
    /// nothing, or a byte at a time, cannot hold a socket. No idle timeout
    /// by default: connections are held idle on purpose, and an upgraded
    /// one is ended by its heartbeat deadline. Many phones share one
    /// carrier NAT address, hence the high per-peer cap.
    pub devices: HttpLimits,
    /// The gRPC server (dispatch, the gateway, peer nodes, activesync's
    /// held Pings: one stream each).
    pub grpc: GrpcLimits,
}

impl Default for ListenersConfig {
    fn default() -> Self {
        Self {
            devices: HttpLimits {
                max_connections: 200_000,
                max_connections_per_peer: 10_000,
                header_read_timeout_seconds: 30,
                idle_timeout_seconds: 0,
                max_body_bytes: 16 * 1024,
            },
            grpc: GrpcLimits {
                // Each phone held in an EAS Ping is one open stream from
                // activesync, which keeps one connection per node.
                max_concurrent_streams: 100_000,
                ..GrpcLimits::default()
            },
        }
    }
}

/// Heartbeat bounds (Exchange ActiveSync uses 60–3540 s).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// Shortest interval granted.
    pub min_seconds: u64,
    /// Longest interval granted.
    pub max_seconds: u64,
    /// How late a heartbeat may be before the connection is dropped.
    pub grace_seconds: u64,
    /// How long a new connection may take to say hello.
    pub hello_timeout_seconds: u64,
}

/// Per-connection limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Most frames a device may send per window before it is cut off.
    pub flood_frames: u32,
    /// The window, seconds.
    pub flood_window_seconds: u64,
    /// A device that does not take a frame within this is a slow reader and is dropped.
    pub write_timeout_ms: u64,
    /// Most notifications awaiting a device's ack.
    pub max_unacked: usize,
    /// Heartbeats' lease renewals are written in batches gathered over
    /// this window: one Redis call per window instead of a round trip per
    /// heartbeat. A lease runs for the interval plus the grace, so a
    /// second late changes nothing; a longer window spreads each call's
    /// fixed cost over more heartbeats. Must be shorter than
    /// `heartbeat.grace_seconds` (0: write at once).
    pub batch_window_ms: u64,
}

/// Device-token verification.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TokensConfig {
    /// The binding service's Ed25519 public key, hex (binding logs it at start).
    pub public_key: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::on_ports(7102, 9102),
            devices: DevicesConfig::default(),
            telemetry: TelemetryConfig::default(),
            shutdown: ShutdownConfig::default(),
            directory: StateStoreConfig::default(),
            bus: BusConfig::default(),
            heartbeat: HeartbeatConfig::default(),
            limits: LimitsConfig::default(),
            tokens: TokensConfig::default(),
            security: SecurityConfig::default(),
            runtime: RuntimeConfig::default(),
            outbox: OutboxSettings::default(),
            listeners: ListenersConfig::default(),
        }
    }
}

impl Default for DevicesConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([0, 0, 0, 0], 8102)),
            advertise: "http://127.0.0.1:7102".to_owned(),
            drain_window_seconds: 10,
            tls: pushmail_common::tls::ServerTlsConfig::default(),
            reuse_port: false,
            backlog: 4_096,
        }
    }
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self {
            min_seconds: 60,
            max_seconds: 3_540,
            grace_seconds: 30,
            hello_timeout_seconds: 10,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            flood_frames: 30,
            flood_window_seconds: 10,
            write_timeout_ms: 10_000,
            max_unacked: 64,
            batch_window_ms: 1_000,
        }
    }
}

impl Config {
    /// The session rules these settings describe.
    pub(crate) fn rules(&self) -> Rules {
        Rules {
            hb_min: Duration::from_secs(self.heartbeat.min_seconds),
            hb_max: Duration::from_secs(self.heartbeat.max_seconds),
            grace: Duration::from_secs(self.heartbeat.grace_seconds),
            hello_timeout: Duration::from_secs(self.heartbeat.hello_timeout_seconds),
            flood_frames: self.limits.flood_frames,
            flood_window: Duration::from_secs(self.limits.flood_window_seconds),
        }
    }
}

impl ServiceConfig for Config {
    const NAME: &'static str = "session";

    fn validate(&self) -> Result<(), ConfigError> {
        self.telemetry.validate("telemetry.")?;
        self.shutdown.validate("shutdown.")?;
        self.runtime.validate("runtime.")?;
        self.directory.validate("directory.")?;
        self.outbox.validate("outbox.")?;
        self.bus.validate("bus.")?;
        let hb = &self.heartbeat;
        if hb.min_seconds == 0 || hb.min_seconds > hb.max_seconds {
            return Err(ConfigError::invalid(
                "heartbeat.min_seconds",
                "must be positive and at most heartbeat.max_seconds",
            ));
        }
        if hb.hello_timeout_seconds == 0 {
            return Err(ConfigError::invalid(
                "heartbeat.hello_timeout_seconds",
                "must be positive",
            ));
        }
        let window = self.limits.batch_window_ms;
        if window > 0 && window >= hb.grace_seconds.saturating_mul(1_000) {
            return Err(ConfigError::invalid(
                "limits.batch_window_ms",
                "must be shorter than heartbeat.grace_seconds (a lease would lapse before its renewal)",
            ));
        }
        if self.limits.flood_frames == 0 || self.limits.flood_window_seconds == 0 {
            return Err(ConfigError::invalid(
                "limits.flood_frames",
                "and flood_window_seconds must be positive",
            ));
        }
        if self.limits.max_unacked == 0 {
            return Err(ConfigError::invalid(
                "limits.max_unacked",
                "must be positive",
            ));
        }
        self.listeners.devices.validate("listeners.devices.")?;
        self.listeners.grpc.validate("listeners.grpc.")?;
        if self.devices.drain_window_seconds >= self.shutdown.grace_seconds {
            return Err(ConfigError::invalid(
                "devices.drain_window_seconds",
                "must be shorter than shutdown.grace_seconds",
            ));
        }
        self.devices.tls.validate("devices.tls.")?;
        if !self.devices.advertise.starts_with("http://")
            && !self.devices.advertise.starts_with("https://")
        {
            return Err(ConfigError::invalid(
                "devices.advertise",
                "must be an http:// or https:// gRPC address",
            ));
        }
        if !self.tokens.public_key.is_empty()
            && pushmail_device_token::TokenVerifier::from_public_key_hex(&self.tokens.public_key)
                .is_err()
        {
            return Err(ConfigError::invalid(
                "tokens.public_key",
                "must be 64 hex digits (binding's public key)",
            ));
        }
        Ok(())
    }
}

impl pushmail_common::cli::Hosted for Config {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }

    fn grace(&self) -> Duration {
        Duration::from_secs(self.shutdown.grace_seconds)
    }

    fn worker_threads(&self) -> Option<usize> {
        Some(self.runtime.worker_threads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_worker_thread_by_default_and_never_zero() {
        let mut config = Config::default();
        assert_eq!(
            pushmail_common::cli::Hosted::worker_threads(&config),
            Some(1)
        );
        config.runtime.worker_threads = 0;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("runtime.worker_threads"), "{err}");
    }

    #[test]
    fn batched_writes_must_land_within_the_grace() {
        let mut config = Config::default();
        config.validate().unwrap();
        config.heartbeat.grace_seconds = 1;
        config.limits.batch_window_ms = 1_000;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("limits.batch_window_ms"), "{err}");
        config.limits.batch_window_ms = 999;
        config.validate().unwrap();
        config.heartbeat.grace_seconds = 0;
        config.limits.batch_window_ms = 0;
        config.validate().unwrap();
    }

    #[test]
    fn request_heads_are_always_timed() {
        let mut config = Config::default();
        assert_eq!(config.listeners.devices.header_read_timeout_seconds, 30);
        config.listeners.devices.header_read_timeout_seconds = 0;
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.contains("listeners.devices.header_read_timeout_seconds"),
            "{err}"
        );
    }
}
