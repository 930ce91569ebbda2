//! SMPP connector configuration (`PUSHMAIL_SMPP__…`). The SMS centres are
//! a list of tables, most easily given in the TOML file:
//!
//! ```toml
//! [[smsc]]
//! name = "cmcc-gd"
//! address = "10.1.2.3:2775"
//! system_id = "pushmail"
//! password = "secret"
//! prefixes = ["+86138", "+86139"]
//! ```

use pushmail_common::bus::BusConfig;
use pushmail_common::config::{AdminServerConfig, ConfigError, ServiceConfig, ShutdownConfig};
use pushmail_common::redact::Secret;
use pushmail_common::redis::StateStoreConfig;
use pushmail_common::telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

/// The whole connector config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Admin listen address (health, metrics).
    pub server: AdminServerConfig,
    /// Logs, traces, metrics.
    pub telemetry: TelemetryConfig,
    /// Stop behaviour.
    pub shutdown: ShutdownConfig,
    /// `pushmail.sms.outbound.v1` in; receipts out.
    pub bus: BusConfig,
    /// Submit progress and message ids awaiting receipts: Redis, or memory.
    pub state: StateStoreConfig,
    /// How the topic is consumed.
    pub connector: ConnectorConfig,
    /// The SMS centres, tried by longest matching `prefixes`; one without
    /// prefixes takes what no other matches.
    pub smsc: Vec<SmscConfig>,
}

/// How messages are taken from the topic.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectorConfig {
    /// Consumer group of `pushmail.sms.outbound.v1`.
    pub group: String,
    /// Messages in flight at once (one number's stay in order).
    pub concurrency: usize,
    /// How long a submitted message's id is kept for its delivery receipt.
    pub receipt_ttl_seconds: u64,
    /// How long a submit waits for a bound link before it is retried.
    pub bind_wait_ms: u64,
}

impl Default for ConnectorConfig {
    fn default() -> Self {
        Self {
            group: "pushmail-smpp".to_owned(),
            concurrency: 64,
            receipt_ttl_seconds: 3 * 24 * 3600,
            bind_wait_ms: 5_000,
        }
    }
}

/// One SMS centre and the ESME account we hold there.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SmscConfig {
    /// Name in logs, metrics and receipts.
    pub name: String,
    /// `host:port`.
    pub address: String,
    /// Bind credentials.
    pub system_id: String,
    pub password: Secret,
    pub system_type: String,
    /// Our sender: a short code or an alphanumeric name.
    pub source_addr: String,
    /// Type of number of `source_addr` (5: alphanumeric, 3: network specific, 1: international).
    pub source_ton: u8,
    /// Numbering plan of `source_addr` (0: unknown, 1: E.164).
    pub source_npi: u8,
    /// E.164 prefixes this SMS centre serves (`+86138`); empty: the default route.
    pub prefixes: Vec<String>,
    /// submit_sm unanswered at once (the SMSC's window).
    pub window: usize,
    /// Submits per second the SMS centre allows this account.
    pub submits_per_second: u32,
    /// Submits allowed back to back after a quiet spell.
    pub burst: u32,
    /// How long every submit waits after an ESME_RTHROTTLED answer.
    pub throttled_pause_ms: u64,
    /// Quiet time before enquire_link probes the link.
    pub enquire_link_seconds: u64,
    /// How long a request waits for its response.
    pub response_timeout_ms: u64,
    /// First reconnect delay (doubling, with jitter).
    pub reconnect_initial_ms: u64,
    /// Longest reconnect delay.
    pub reconnect_max_ms: u64,
}

impl Default for SmscConfig {
    fn default() -> Self {
        Self {
            name: "default".to_owned(),
            address: "127.0.0.1:2775".to_owned(),
            system_id: "pushmail".to_owned(),
            password: Secret::default(),
            system_type: String::new(),
            source_addr: "pushmail".to_owned(),
            source_ton: 5,
            source_npi: 0,
            prefixes: Vec::new(),
            window: 10,
            submits_per_second: 100,
            burst: 10,
            throttled_pause_ms: 1_000,
            enquire_link_seconds: 30,
            response_timeout_ms: 10_000,
            reconnect_initial_ms: 1_000,
            reconnect_max_ms: 30_000,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: AdminServerConfig::on_port(9107),
            telemetry: TelemetryConfig::default(),
            shutdown: ShutdownConfig::default(),
            bus: BusConfig::default(),
            state: StateStoreConfig::default(),
            connector: ConnectorConfig::default(),
            smsc: vec![SmscConfig::default()],
        }
    }
}

impl SmscConfig {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        let key = |field: &str| format!("{prefix}{field}");
        if self.name.is_empty() {
            return Err(ConfigError::invalid(key("name"), "must not be empty"));
        }
        if !self.address.contains(':') {
            return Err(ConfigError::invalid(key("address"), "must be host:port"));
        }
        if self.system_id.is_empty() || self.system_id.len() > 15 {
            return Err(ConfigError::invalid(
                key("system_id"),
                "must be 1 to 15 characters",
            ));
        }
        if self.password.expose().len() > 8 || self.system_type.len() > 12 {
            return Err(ConfigError::invalid(
                key("password"),
                "must be at most 8 characters (system_type at most 12)",
            ));
        }
        if self.source_addr.is_empty() || self.source_addr.len() > 20 {
            return Err(ConfigError::invalid(
                key("source_addr"),
                "must be 1 to 20 characters",
            ));
        }
        if let Some(bad) = self
            .prefixes
            .iter()
            .find(|p| !p.starts_with('+') || !p[1..].bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(ConfigError::invalid(
                key("prefixes"),
                format!("{bad:?} is not + followed by digits"),
            ));
        }
        if !(1..=1_000).contains(&self.window)
            || self.submits_per_second == 0
            || self.burst == 0
            || self.enquire_link_seconds == 0
            || self.response_timeout_ms == 0
            || self.reconnect_initial_ms == 0
            || self.reconnect_max_ms < self.reconnect_initial_ms
        {
            return Err(ConfigError::invalid(
                key("window"),
                "window must be 1..=1000; rates, timers and reconnect delays positive",
            ));
        }
        Ok(())
    }
}

impl ServiceConfig for Config {
    const NAME: &'static str = "smpp";

    fn validate(&self) -> Result<(), ConfigError> {
        self.telemetry.validate("telemetry.")?;
        self.shutdown.validate("shutdown.")?;
        self.bus.validate("bus.")?;
        self.state.validate("state.")?;
        let c = &self.connector;
        if c.group.is_empty() || !(1..=10_000).contains(&c.concurrency) || c.bind_wait_ms == 0 {
            return Err(ConfigError::invalid(
                "connector",
                "group must be set, concurrency 1..=10000, bind_wait_ms positive",
            ));
        }
        if self.smsc.is_empty() {
            return Err(ConfigError::invalid("smsc", "name at least one SMS centre"));
        }
        let mut names = std::collections::HashSet::new();
        for (i, smsc) in self.smsc.iter().enumerate() {
            smsc.validate(&format!("smsc[{i}]."))?;
            if !names.insert(smsc.name.as_str()) {
                return Err(ConfigError::invalid(
                    format!("smsc[{i}].name"),
                    "names must be unique",
                ));
            }
        }
        Ok(())
    }
}

pushmail_common::impl_hosted!(Config);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_smsc_entries_are_named() {
        Config::default().validate().unwrap();
        let mut config = Config::default();
        config.smsc[0].prefixes = vec!["86138".into()];
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("smsc[0].prefixes"), "{err}");
        let mut config = Config::default();
        config.smsc.push(SmscConfig::default());
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("smsc[1].name"), "{err}");
        let mut config = Config::default();
        config.smsc[0].password = Secret::new("longer-than-eight");
        assert!(config.validate().is_err());
        config.smsc.clear();
        assert!(config.validate().is_err());
    }
}
