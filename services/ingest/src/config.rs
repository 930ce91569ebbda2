//! Ingest configuration (`PUSHMAIL_INGEST__…`).

use pushmail_common::blob::BlobConfig;
use pushmail_common::bus::BusConfig;
use pushmail_common::config::{AdminServerConfig, ConfigError, ServiceConfig, ShutdownConfig};
use pushmail_common::grpc::UpstreamConfig;
use pushmail_common::redis::StateStoreConfig;
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
    /// Where what was announced is remembered (POP3 UIDLs): Redis, or memory standalone.
    pub marks: StateStoreConfig,
    /// POP3 polling.
    pub pop3: Pop3Config,
}

/// POP3 polling.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Pop3Config {
    /// Seconds between polls of one account (and between account-list refreshes).
    pub interval_seconds: u64,
    /// Deadline of one server exchange.
    pub timeout_seconds: u64,
    /// Largest message fetched.
    pub max_message_bytes: usize,
    /// Accounts polled at once.
    pub concurrency: usize,
    /// Extra trusted CA certificates (PEM), for servers with a private CA.
    pub extra_ca_file: Option<std::path::PathBuf>,
}

impl Default for Pop3Config {
    fn default() -> Self {
        Self {
            interval_seconds: 60,
            timeout_seconds: 30,
            max_message_bytes: 50 * 1024 * 1024,
            concurrency: 16,
            extra_ca_file: None,
        }
    }
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
            marks: StateStoreConfig::default(),
            pop3: Pop3Config::default(),
        }
    }
}

impl ServiceConfig for Config {
    const NAME: &'static str = "ingest";

    fn validate(&self) -> Result<(), ConfigError> {
        self.telemetry.validate("telemetry.")?;
        self.shutdown.validate("shutdown.")?;
        self.bus.validate("bus.")?;
        self.binding.validate("binding.")?;
        self.marks.validate("marks.")?;
        if self.pop3.max_message_bytes < 64 * 1024 {
            return Err(ConfigError::invalid(
                "pop3.max_message_bytes",
                "must be at least 65536 (larger mails are announced from their headers)",
            ));
        }
        if self.pop3.interval_seconds == 0
            || self.pop3.timeout_seconds == 0
            || self.pop3.concurrency == 0
        {
            return Err(ConfigError::invalid(
                "pop3",
                "interval_seconds, timeout_seconds and concurrency must be positive",
            ));
        }
        Ok(())
    }
}

pushmail_common::impl_hosted!(Config);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fetch_limit_that_would_drop_mail_is_refused() {
        assert!(Config::default().validate().is_ok());
        let tiny = Config {
            pop3: Pop3Config {
                max_message_bytes: 0,
                ..Pop3Config::default()
            },
            ..Config::default()
        };
        let err = tiny.validate().unwrap_err().to_string();
        assert!(err.contains("pop3.max_message_bytes"), "{err}");
    }
}
