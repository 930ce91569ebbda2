//! Session holder configuration (`PUSHMAIL_SESSION__…`).

use pushmail_common::config::{ConfigError, ServerConfig, ServiceConfig, ShutdownConfig};
use pushmail_common::redis::StateStoreConfig;
use pushmail_common::telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

/// The whole session config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listen addresses.
    pub server: ServerConfig,
    /// Logs, traces, metrics.
    pub telemetry: TelemetryConfig,
    /// Stop behaviour.
    pub shutdown: ShutdownConfig,
    /// The device → node directory: Redis, or memory standalone.
    pub directory: StateStoreConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::on_ports(7102, 9102),
            telemetry: TelemetryConfig::default(),
            shutdown: ShutdownConfig::default(),
            directory: StateStoreConfig::default(),
        }
    }
}

impl ServiceConfig for Config {
    const NAME: &'static str = "session";

    fn validate(&self) -> Result<(), ConfigError> {
        self.telemetry.validate("telemetry.")?;
        self.shutdown.validate("shutdown.")?;
        self.directory.validate("directory.")
    }
}

pushmail_common::impl_hosted!(Config);
