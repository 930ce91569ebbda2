//! Gateway configuration (`PUSHMAIL_GATEWAY__…`).

use std::net::SocketAddr;

use pushmail_common::config::{ConfigError, ServiceConfig, ShutdownConfig};
use pushmail_common::grpc::UpstreamConfig;
use pushmail_common::telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

/// The whole gateway config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listen addresses.
    pub server: GatewayServerConfig,
    /// Logs, traces, metrics.
    pub telemetry: TelemetryConfig,
    /// Stop behaviour.
    pub shutdown: ShutdownConfig,
    /// The binding service (admin surface).
    pub binding: UpstreamConfig,
    /// The transcode service (previews).
    pub transcode: UpstreamConfig,
    /// Device tokens.
    pub tokens: TokensConfig,
    /// The device fetch API.
    pub fetch: FetchConfig,
}

/// How device tokens are checked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TokensConfig {
    /// The binding service's Ed25519 public key, hex (binding logs it at start).
    pub public_key: String,
}

/// The device fetch API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FetchConfig {
    /// How often fetch counts go to binding's traffic statistics.
    pub traffic_flush_ms: u64,
    /// How long an account's devices (who may fetch) are reused; a resumed
    /// download asks once, not once per range. 0: ask every time.
    pub targets_cache_ms: u64,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            traffic_flush_ms: 10_000,
            targets_cache_ms: 5_000,
        }
    }
}

/// Where the gateway listens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GatewayServerConfig {
    /// Public HTTP: REST API, portal, device fetch.
    pub http_addr: SocketAddr,
    /// Admin HTTP: probes and metrics.
    pub admin_addr: SocketAddr,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: GatewayServerConfig {
                http_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
                admin_addr: SocketAddr::from(([0, 0, 0, 0], 9106)),
            },
            telemetry: TelemetryConfig::default(),
            shutdown: ShutdownConfig::default(),
            binding: UpstreamConfig::at("http://127.0.0.1:7101"),
            transcode: UpstreamConfig::at("http://127.0.0.1:7103"),
            tokens: TokensConfig::default(),
            fetch: FetchConfig::default(),
        }
    }
}

impl ServiceConfig for Config {
    const NAME: &'static str = "gateway";

    fn validate(&self) -> Result<(), ConfigError> {
        self.telemetry.validate("telemetry.")?;
        self.shutdown.validate("shutdown.")?;
        self.binding.validate("binding.")?;
        self.transcode.validate("transcode.")?;
        if self.fetch.traffic_flush_ms == 0 {
            return Err(ConfigError::invalid(
                "fetch.traffic_flush_ms",
                "must be positive",
            ));
        }
        Ok(())
    }
}

pushmail_common::impl_hosted!(Config);
