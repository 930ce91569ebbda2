//! Dispatch configuration (`PUSHMAIL_DISPATCH__…`).

use pushmail_common::bus::BusConfig;
use pushmail_common::config::{AdminServerConfig, ConfigError, ServiceConfig, ShutdownConfig};
use pushmail_common::grpc::UpstreamConfig;
use pushmail_common::redis::StateStoreConfig;
use pushmail_common::telemetry::TelemetryConfig;
use pushmail_outbox::OutboxSettings;
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
    /// The session service (any node; a node that does not hold the device
    /// names the one that does). Its `timeout_ms` must exceed the ack wait.
    pub session: UpstreamConfig,
    /// Wake-up claims and mails held for quiet hours: Redis, or memory standalone.
    pub state: StateStoreConfig,
    /// The per-device outbox (the store session reads).
    pub outbox: OutboxSettings,
    /// The delivery ladder.
    pub delivery: DeliveryConfig,
}

/// How notifications are delivered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Consumer group of `pushmail.mail.arrived.v1`.
    pub group: String,
    /// How long `Deliver` waits for the device's ack before the SMS wake-up.
    pub ack_timeout_ms: u32,
    /// At most one SMS wake-up per device within this window.
    pub wake_up_window_seconds: u64,
    /// An SMS not delivered within this is dropped by the SMS centre.
    pub sms_validity_seconds: u64,
    /// Attempts at a mail before it goes to the dead-letter topic.
    pub attempts: u32,
    /// First retry delay (doubling, with jitter).
    pub retry_initial_ms: u64,
    /// Longest retry delay.
    pub retry_max_ms: u64,
    /// Base of the URLs in notifications (the gateway's device fetch API),
    /// e.g. `https://push.example.com`.
    pub public_url: String,
    /// How often held mails are checked for their digest.
    pub digest_interval_ms: u64,
    /// Most mails (events) in flight at once; one account's stay in order.
    pub concurrency: usize,
    /// How often push counts go to binding's traffic statistics.
    pub traffic_flush_ms: u64,
    /// How long an account's targets (devices, numbers, preferences) are
    /// reused; binding's change events drop them sooner (0: ask every time).
    pub targets_cache_ms: u64,
    /// The window of the tenants' push rates: a tenant may push its
    /// `push_per_minute` scaled to this window within each window.
    pub rate_window_ms: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            group: "pushmail-dispatch".to_owned(),
            ack_timeout_ms: 3_000,
            wake_up_window_seconds: 300,
            sms_validity_seconds: 24 * 3600,
            attempts: 5,
            retry_initial_ms: 200,
            retry_max_ms: 10_000,
            public_url: "http://127.0.0.1:8080".to_owned(),
            digest_interval_ms: 1_000,
            concurrency: 256,
            traffic_flush_ms: 10_000,
            targets_cache_ms: 5_000,
            rate_window_ms: 60_000,
        }
    }
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
            outbox: OutboxSettings::default(),
            delivery: DeliveryConfig::default(),
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
        self.state.validate("state.")?;
        self.outbox.validate("outbox.")?;
        let d = &self.delivery;
        if d.group.is_empty() {
            return Err(ConfigError::invalid("delivery.group", "must not be empty"));
        }
        if d.ack_timeout_ms == 0 || u64::from(d.ack_timeout_ms) + 500 > self.session.timeout_ms {
            return Err(ConfigError::invalid(
                "delivery.ack_timeout_ms",
                "must be positive and at least 500 ms below session.timeout_ms",
            ));
        }
        if d.attempts == 0 || d.retry_initial_ms == 0 || d.retry_max_ms < d.retry_initial_ms {
            return Err(ConfigError::invalid(
                "delivery.attempts",
                "and retry_initial_ms must be positive, retry_max_ms at least retry_initial_ms",
            ));
        }
        if !(d.public_url.starts_with("http://") || d.public_url.starts_with("https://")) {
            return Err(ConfigError::invalid(
                "delivery.public_url",
                "must be an http:// or https:// URL",
            ));
        }
        if d.digest_interval_ms == 0 || d.traffic_flush_ms == 0 || d.rate_window_ms < 1_000 {
            return Err(ConfigError::invalid(
                "delivery.digest_interval_ms",
                "and delivery.traffic_flush_ms must be positive, delivery.rate_window_ms at least 1000",
            ));
        }
        if !(1..=10_000).contains(&d.concurrency) {
            return Err(ConfigError::invalid(
                "delivery.concurrency",
                "must be between 1 and 10000",
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
    fn defaults_validate_and_the_ack_wait_fits_the_session_timeout() {
        let mut config = Config::default();
        config.session.timeout_ms = 10_000;
        config.validate().unwrap();
        config.delivery.ack_timeout_ms = 9_800;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("delivery.ack_timeout_ms"), "{err}");
        let mut config = Config::default();
        config.session.timeout_ms = 10_000;
        config.delivery.public_url = "push.example.com".into();
        assert!(config.validate().is_err());
        let mut config = Config::default();
        config.session.timeout_ms = 10_000;
        config.delivery.rate_window_ms = 999;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("rate_window_ms"), "{err}");
    }
}
