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
        }
    }
}

impl ServiceConfig for Config {
    const NAME: &'static str = "gateway";

    fn validate(&self) -> Result<(), ConfigError> {
        self.telemetry.validate("telemetry.")?;
        self.shutdown.validate("shutdown.")?;
        self.binding.validate("binding.")?;
        self.transcode.validate("transcode.")
    }
}

pushmail_common::impl_hosted!(Config);
