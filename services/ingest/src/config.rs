//! Ingest configuration (`PUSHMAIL_INGEST__…`).

use pushmail_common::blob::BlobConfig;
use pushmail_common::bus::BusConfig;
use pushmail_common::config::{AdminServerConfig, ConfigError, ServiceConfig, ShutdownConfig};
use pushmail_common::grpc::UpstreamConfig;
use pushmail_common::telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

/// The whole ingest config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Admin listen address.
    pub server: AdminServerConfig,
    /// Logs, traces, metrics.
    pub telemetry: TelemetryConfig,
    /// Stop behaviour.
    pub shutdown: ShutdownConfig,
    /// Where `MailArrived` goes.
    pub bus: BusConfig,
    /// The binding service, for accounts and credentials.
    pub binding: UpstreamConfig,
    /// Where raw messages are stored.
    pub blob: BlobConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: AdminServerConfig::on_port(9104),
            telemetry: TelemetryConfig::default(),
            shutdown: ShutdownConfig::default(),
            bus: BusConfig::default(),
            binding: UpstreamConfig::at("http://127.0.0.1:7101"),
            blob: BlobConfig::default(),
        }
    }
}

impl ServiceConfig for Config {
    const NAME: &'static str = "ingest";

    fn validate(&self) -> Result<(), ConfigError> {
        self.telemetry.validate("telemetry.")?;
        self.shutdown.validate("shutdown.")?;
        self.bus.validate("bus.")?;
        self.binding.validate("binding.")
    }
}

pushmail_common::impl_hosted!(Config);
