//! Mailbox service configuration (`PUSHMAIL_MAILBOX__…`).

use std::path::PathBuf;
use std::time::Duration;

use pushmail_common::bus::BusConfig;
use pushmail_common::config::{ConfigError, ServerConfig, ServiceConfig, ShutdownConfig};
use pushmail_common::egress::EgressConfig;
use pushmail_common::grpc::UpstreamConfig;
use pushmail_common::telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

use crate::sync::Retention;

/// The whole mailbox config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listen addresses.
    pub server: ServerConfig,
    /// Logs, traces, metrics.
    pub telemetry: TelemetryConfig,
    /// Stop behaviour.
    pub shutdown: ShutdownConfig,
    /// Who may call.
    pub security: SecurityConfig,
    /// Bounds of the gRPC server (`listeners.grpc.*`).
    pub listeners: pushmail_common::listen::GrpcListenersConfig,
    /// Binding, for the account's server and password, with the mailbox
    /// service's own credential.
    pub binding: UpstreamConfig,
    /// Where sync tokens' states live.
    pub database: DatabaseConfig,
    /// Talking to the accounts' IMAP servers.
    pub imap: ImapConfig,
    /// Sync windows and token retention.
    pub sync: SyncConfig,
    /// Sending through the accounts' submission servers.
    pub submission: SubmissionConfig,
    /// The blob store (the volume ingest writes): completed uploads are
    /// blobs, and chunks in progress are staged on the same volume.
    pub blob: pushmail_common::blob::BlobConfig,
    /// Resumable uploads of attachments.
    pub uploads: UploadsConfig,
    /// The event bus: arrived mail of accounts kept in the platform's own
    /// store, and accounts deleted.
    pub bus: BusConfig,
    /// The platform's own store (forwarded, webhook and POP3 accounts).
    pub local: LocalConfig,
}

/// The platform's own store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LocalConfig {
    /// Consumer group reading arrived mail and binding changes.
    pub group: String,
    /// Days a message is kept after it arrived, for every tenant not in
    /// `tenant_retention_days`; 0 keeps it as long as the blob store does.
    /// At most `blob.retention_days` (where that is not 0).
    pub retention_days: u32,
    /// Tenants that keep their mail a different number of days (same
    /// bound).
    pub tenant_retention_days: std::collections::BTreeMap<String, u32>,
    /// How often messages past retention are removed.
    pub sweep_interval_seconds: u64,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            group: "pushmail-mailbox".to_owned(),
            retention_days: 30,
            tenant_retention_days: std::collections::BTreeMap::new(),
            sweep_interval_seconds: 3_600,
        }
    }
}

impl LocalConfig {
    /// The retention the sweep applies. Where the blob store keeps mail a
    /// bounded time, "keep" means as long as it does.
    pub fn retention(&self, blob_days: u32) -> crate::local::Retention {
        let cap = |days: u32| if days == 0 { blob_days } else { days };
        crate::local::Retention {
            days: cap(self.retention_days),
            tenants: self
                .tenant_retention_days
                .iter()
                .map(|(tenant, days)| (tenant.clone(), cap(*days)))
                .collect(),
        }
    }

    fn validate(&self, blob_days: u32) -> Result<(), ConfigError> {
        if self.group.trim().is_empty() || self.sweep_interval_seconds == 0 {
            return Err(ConfigError::invalid(
                "local",
                "group must be set and sweep_interval_seconds positive",
            ));
        }
        // A listed message whose bytes the blob sweep removed would be an
        // entry the phone cannot open.
        let too_long = |days: u32| blob_days != 0 && days > blob_days;
        if too_long(self.retention_days) {
            return Err(ConfigError::invalid(
                "local.retention_days",
                format!("must be at most blob.retention_days ({blob_days})"),
            ));
        }
        if let Some((tenant, _)) = self
            .tenant_retention_days
            .iter()
            .find(|(_, days)| too_long(**days))
        {
            return Err(ConfigError::invalid(
                "local.tenant_retention_days",
                format!("{tenant}: must be at most blob.retention_days ({blob_days})"),
            ));
        }
        Ok(())
    }
}

/// Resumable uploads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct UploadsConfig {
    /// Largest upload (its declared size).
    pub max_bytes: u64,
    /// Largest chunk; the gRPC message bound follows it.
    pub max_chunk_bytes: u64,
    /// Uploads in progress per account.
    pub max_open_per_account: u32,
    /// Hours an upload may take, and a complete one stays usable.
    pub ttl_hours: u32,
    /// How often expired uploads are swept.
    pub sweep_interval_seconds: u64,
}

impl Default for UploadsConfig {
    fn default() -> Self {
        Self {
            max_bytes: 50 * 1024 * 1024,
            max_chunk_bytes: 1024 * 1024,
            max_open_per_account: 16,
            ttl_hours: 24,
            sweep_interval_seconds: 600,
        }
    }
}

impl UploadsConfig {
    /// The bounds the uploads enforce.
    pub fn limits(&self) -> crate::uploads::UploadLimits {
        crate::uploads::UploadLimits {
            max_bytes: self.max_bytes,
            max_chunk_bytes: self.max_chunk_bytes,
            max_open: self.max_open_per_account,
            ttl: Duration::from_secs(u64::from(self.ttl_hours) * 3_600),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_bytes == 0
            || self.max_open_per_account == 0
            || self.ttl_hours == 0
            || self.sweep_interval_seconds == 0
        {
            return Err(ConfigError::invalid(
                "uploads",
                "max_bytes, max_open_per_account, ttl_hours and sweep_interval_seconds must be positive",
            ));
        }
        // A chunk rides in one gRPC message, bounded to 16 MiB.
        if self.max_chunk_bytes == 0 || self.max_chunk_bytes > 16 * 1024 * 1024 {
            return Err(ConfigError::invalid(
                "uploads.max_chunk_bytes",
                "must be between 1 and 16 MiB",
            ));
        }
        Ok(())
    }
}

/// Submission.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SubmissionConfig {
    /// Longest wait for any one answer of a submission server.
    pub timeout_seconds: u64,
    /// The name this platform greets with (EHLO).
    pub hello_name: String,
    /// Sends made at once by one replica. Each holds its attachments and
    /// its encoded message in memory (up to `imap.max_message_bytes`
    /// each), so this bounds the memory Sends take; one over it waits up
    /// to `busy_wait_seconds`, then is refused UNAVAILABLE `busy` with
    /// nothing claimed or sent.
    pub max_concurrent: u32,
    /// See `max_concurrent`.
    pub busy_wait_seconds: u64,
}

impl Default for SubmissionConfig {
    fn default() -> Self {
        Self {
            timeout_seconds: 60,
            hello_name: "pushmail.invalid".to_owned(),
            max_concurrent: 8,
            busy_wait_seconds: 10,
        }
    }
}

/// Callers' credentials.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// Public key(s) of the service credential issuer, required
    /// (`PUSHMAIL_SERVICE_KEYS` of `pushmail keys`); only the gateway's
    /// credential is accepted.
    pub service_keys: pushmail_common::service_identity::ServiceKeys,
}

/// The sync-state database.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://…` (a database of the mailbox service's own: it runs
    /// its own migrations) or `sqlite://<file>`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "postgres://postgres@127.0.0.1:5432/pushmail_mailbox".to_owned(),
            max_connections: 16,
        }
    }
}

/// Upstream IMAP.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ImapConfig {
    /// Longest wait for any one answer of a mail server.
    pub timeout_seconds: u64,
    /// Extra trusted CA certificates (PEM), for servers with a private CA.
    pub extra_ca_file: Option<PathBuf>,
    /// Which non-public networks mail servers may be in (none by default;
    /// binding refuses such hosts too unless allowed there).
    pub egress: EgressConfig,
    /// Logged-in sessions kept between requests, per account login.
    pub pool_per_account: usize,
    /// ... and in all.
    pub pool_total: usize,
    /// How long a kept session waits for its next request.
    pub pool_idle_seconds: u64,
    /// Largest message read whole (raw fetch, a replied or forwarded
    /// original); a larger one is FAILED_PRECONDITION.
    pub max_message_bytes: u64,
}

impl Default for ImapConfig {
    fn default() -> Self {
        Self {
            timeout_seconds: 20,
            extra_ca_file: None,
            egress: EgressConfig::default(),
            pool_per_account: 2,
            pool_total: 1_000,
            pool_idle_seconds: 60,
            max_message_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Sync windows and tokens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SyncConfig {
    /// Entries in one answer when the phone asks for none.
    pub default_window: u32,
    /// Most entries in one answer, whatever the phone asks.
    pub max_window: u32,
    /// Tokens kept per folder (one per device, and a few behind).
    pub tokens_per_folder: u32,
    /// Days after which a token is refused and the phone syncs from the
    /// start.
    pub token_max_age_days: u32,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            default_window: 100,
            max_window: 512,
            tokens_per_folder: 16,
            token_max_age_days: 30,
        }
    }
}

impl SyncConfig {
    /// The retention of the state store.
    pub fn retention(&self) -> Retention {
        Retention {
            per_folder: self.tokens_per_folder,
            max_age: Duration::from_secs(u64::from(self.token_max_age_days) * 86_400),
        }
    }

    /// The window for a request asking for `asked` (0: the default).
    pub fn window(&self, asked: u32) -> usize {
        let asked = if asked == 0 {
            self.default_window
        } else {
            asked
        };
        asked.clamp(1, self.max_window) as usize
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::on_ports(7108, 9108),
            telemetry: TelemetryConfig::default(),
            shutdown: ShutdownConfig::default(),
            security: SecurityConfig::default(),
            listeners: pushmail_common::listen::GrpcListenersConfig::default(),
            binding: UpstreamConfig::default(),
            database: DatabaseConfig::default(),
            imap: ImapConfig::default(),
            sync: SyncConfig::default(),
            submission: SubmissionConfig::default(),
            blob: pushmail_common::blob::BlobConfig::default(),
            uploads: UploadsConfig::default(),
            bus: BusConfig::default(),
            local: LocalConfig::default(),
        }
    }
}

impl ServiceConfig for Config {
    const NAME: &'static str = "mailbox";

    fn validate(&self) -> Result<(), ConfigError> {
        self.telemetry.validate("telemetry.")?;
        self.shutdown.validate("shutdown.")?;
        self.listeners.grpc.validate("listeners.grpc.")?;
        self.binding.validate("binding.")?;
        self.imap.egress.validate("imap.egress.")?;
        self.blob.validate("blob.")?;
        self.uploads.validate()?;
        self.bus.validate("bus.")?;
        self.local.validate(self.blob.retention_days)?;
        if self.imap.timeout_seconds == 0 {
            return Err(ConfigError::invalid(
                "imap.timeout_seconds",
                "must be positive",
            ));
        }
        if self.submission.timeout_seconds == 0
            || self.submission.max_concurrent == 0
            || self.submission.hello_name.trim().is_empty()
        {
            return Err(ConfigError::invalid(
                "submission",
                "timeout_seconds and max_concurrent must be positive and hello_name set",
            ));
        }
        if !(self.database.url.starts_with("postgres://")
            || self.database.url.starts_with("postgresql://")
            || self.database.url.starts_with("sqlite://"))
        {
            return Err(ConfigError::invalid(
                "database.url",
                "must be postgres://… or sqlite://<file>",
            ));
        }
        let s = &self.sync;
        if s.max_window == 0 || s.tokens_per_folder == 0 || s.token_max_age_days == 0 {
            return Err(ConfigError::invalid(
                "sync",
                "max_window, tokens_per_folder and token_max_age_days must be positive",
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
    fn defaults_validate_and_windows_are_capped() {
        let config = Config::default();
        assert!(config.validate().is_ok());
        assert_eq!(config.sync.window(0), 100);
        assert_eq!(config.sync.window(5), 5);
        assert_eq!(config.sync.window(100_000), 512);
    }

    #[test]
    fn the_local_store_keeps_nothing_longer_than_the_blob_store() {
        let mut config = Config::default();
        config.blob.retention_days = 10;
        config.local.retention_days = 11;
        assert!(config.validate().is_err());
        config.local.retention_days = 0;
        config.local.tenant_retention_days.insert("t1".into(), 20);
        assert!(config.validate().is_err());
        config.local.tenant_retention_days.insert("t1".into(), 3);
        assert!(config.validate().is_ok());
        let retention = config.local.retention(config.blob.retention_days);
        assert_eq!((retention.days_of("t1"), retention.days_of("t2")), (3, 10));
        // Blobs kept for ever: so are messages, unless a tenant says.
        config.blob.retention_days = 0;
        config.local.retention_days = 400;
        assert!(config.validate().is_ok());
    }

    #[test]
    fn a_database_that_is_neither_is_refused() {
        let mut config = Config::default();
        config.database.url = "mysql://x".to_owned();
        assert!(config.validate().is_err());
    }
}
