//! Transcode service configuration (`PUSHMAIL_TRANSCODE__…`).

use pushmail_common::blob::BlobConfig;
use pushmail_common::config::{ConfigError, ServerConfig, ServiceConfig, ShutdownConfig};
use pushmail_common::telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

/// The whole transcode config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listen addresses.
    pub server: ServerConfig,
    /// Logs, traces, metrics.
    pub telemetry: TelemetryConfig,
    /// Stop behaviour.
    pub shutdown: ShutdownConfig,
    /// Where raw messages are read from.
    pub blob: BlobConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::on_ports(7103, 9103),
            telemetry: TelemetryConfig::default(),
            shutdown: ShutdownConfig::default(),
            blob: BlobConfig::default(),
        }
    }
}

impl ServiceConfig for Config {
    const NAME: &'static str = "transcode";

    fn validate(&self) -> Result<(), ConfigError> {
        self.telemetry.validate("telemetry.")?;
        self.shutdown.validate("shutdown.")
    }
}

pushmail_common::impl_hosted!(Config);
