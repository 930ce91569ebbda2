//! Dispatch configuration (`PUSHMAIL_DISPATCH__…`).

use pushmail_common::bus::BusConfig;
use pushmail_common::config::{AdminServerConfig, ConfigError, ServiceConfig, ShutdownConfig};
use pushmail_common::grpc::UpstreamConfig;
use pushmail_common::redis::StateStoreConfig;
use pushmail_common::telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

/// The whole dispatch config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Admin listen address.
    pub server: AdminServerConfig,
    /// Logs, traces, metrics.
    pub telemetry: TelemetryConfig,
    /// Stop behaviour.
    pub shutdown: ShutdownConfig,
    /// `MailArrived` in; SMS, receipts and dead letters out.
    pub bus: BusConfig,
    /// The binding service, for targets and preferences.
    pub binding: UpstreamConfig,
    /// The session service, for `Deliver` (addresses from the directory).
    pub session: UpstreamConfig,
    /// Outbox, directory reads and wake-up windows: Redis, or memory standalone.
    pub state: StateStoreConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: AdminServerConfig::on_port(9105),
            telemetry: TelemetryConfig::default(),
            shutdown: ShutdownConfig::default(),
            bus: BusConfig::default(),
            binding: UpstreamConfig::at("http://127.0.0.1:7101"),
            session: UpstreamConfig::at("http://127.0.0.1:7102"),
            state: StateStoreConfig::default(),
        }
    }
}

impl ServiceConfig for Config {
    const NAME: &'static str = "dispatch";

    fn validate(&self) -> Result<(), ConfigError> {
        self.telemetry.validate("telemetry.")?;
        self.shutdown.validate("shutdown.")?;
        self.bus.validate("bus.")?;
        self.binding.validate("binding.")?;
        self.session.validate("session.")?;
        self.state.validate("state.")
    }
}

pushmail_common::impl_hosted!(Config);
