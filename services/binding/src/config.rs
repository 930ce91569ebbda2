//! Binding service configuration (`PUSHMAIL_BINDING__…`).

use pushmail_common::bus::BusConfig;
use pushmail_common::config::{ConfigError, ServerConfig, ServiceConfig, ShutdownConfig};
use pushmail_common::redact::SecretUrl;
use pushmail_common::telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

/// The whole binding config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listen addresses.
    pub server: ServerConfig,
    /// Logs, traces, metrics.
    pub telemetry: TelemetryConfig,
    /// Stop behaviour.
    pub shutdown: ShutdownConfig,
    /// Where `BindingChanged` and OTP SMS events go.
    pub bus: BusConfig,
    /// The system of record.
    pub database: DatabaseConfig,
    /// Secrets: credentials key, OTP key, device-token seed, caller tokens.
    pub security: crate::keys::SecurityConfig,
    /// The delivery-target cache.
    pub cache: crate::cache::CacheConfig,
    /// The delivery log (receipts from `pushmail.delivery.v1`).
    pub deliveries: crate::deliveries::DeliveriesConfig,
    /// The SMS outbox (every SMS from `pushmail.sms.outbound.v1`, for the
    /// portal; off unless enabled: standalone, no SMS centre).
    pub sms_outbox: crate::sms_outbox::SmsOutboxConfig,
    /// Verification codes: resend cooldown and daily caps.
    pub verification: crate::settings::VerificationConfig,
    /// SMTP relay logins: lockout and the verified-login cache.
    pub relay: crate::settings::LoginConfig,
    /// App password logins (Exchange ActiveSync): lockout per account
    /// address and per peer, and the verified-login cache.
    pub app_passwords: crate::settings::LoginConfig,
    /// Mailbox servers of tenant accounts: the networks allowed besides
    /// the public internet (`allowed_networks`; default none).
    pub accounts: pushmail_common::egress::EgressConfig,
    /// Bounds of the gRPC server (`listeners.grpc.*`).
    pub listeners: pushmail_common::listen::GrpcListenersConfig,
}

/// Database settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://…` in production, `sqlite://path?mode=rwc` standalone.
    pub url: SecretUrl,
    /// Pool size.
    pub max_connections: u32,
    /// Longest wait for a pooled connection.
    pub acquire_timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::on_ports(7101, 9101),
            telemetry: TelemetryConfig::default(),
            shutdown: ShutdownConfig::default(),
            bus: BusConfig::default(),
            database: DatabaseConfig::default(),
            security: crate::keys::SecurityConfig::default(),
            cache: crate::cache::CacheConfig::default(),
            deliveries: crate::deliveries::DeliveriesConfig::default(),
            sms_outbox: crate::sms_outbox::SmsOutboxConfig::default(),
            verification: crate::settings::VerificationConfig::default(),
            relay: crate::settings::LoginConfig::default(),
            app_passwords: crate::settings::LoginConfig::app_passwords(),
            accounts: pushmail_common::egress::EgressConfig::default(),
            listeners: pushmail_common::listen::GrpcListenersConfig::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: SecretUrl::new("postgres://postgres@127.0.0.1:5432/pushmail"),
            max_connections: 10,
            acquire_timeout_ms: 5_000,
        }
    }
}

impl ServiceConfig for Config {
    const NAME: &'static str = "binding";

    fn validate(&self) -> Result<(), ConfigError> {
        self.telemetry.validate("telemetry.")?;
        self.shutdown.validate("shutdown.")?;
        self.bus.validate("bus.")?;
        self.security.validate("security.")?;
        self.cache.validate("cache.")?;
        self.listeners.grpc.validate("listeners.grpc.")?;
        let url = self.database.url.expose();
        if !(url.starts_with("postgres://")
            || url.starts_with("postgresql://")
            || url.starts_with("sqlite:"))
        {
            return Err(ConfigError::invalid(
                "database.url",
                "must be a postgres:// or sqlite: URL",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::invalid(
                "database.max_connections",
                "must be positive",
            ));
        }
        self.verification.validate("verification.")?;
        self.relay.validate("relay.")?;
        self.app_passwords.validate("app_passwords.")?;
        self.accounts.validate("accounts.")?;
        self.sms_outbox.validate("sms_outbox.")?;
        self.deliveries.validate("deliveries.")
    }
}

pushmail_common::impl_hosted!(Config);
