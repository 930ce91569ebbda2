//! Ingest configuration (`PUSHMAIL_INGEST__…`).

use pushmail_common::blob::BlobConfig;
use pushmail_common::bus::BusConfig;
use pushmail_common::config::{AdminServerConfig, ConfigError, ServiceConfig, ShutdownConfig};
use pushmail_common::grpc::UpstreamConfig;
use pushmail_common::redis::StateStoreConfig;
use pushmail_common::telemetry::TelemetryConfig;
use pushmail_common::tls::ServerTlsConfig;
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
    /// The SMTP and LMTP receivers.
    pub smtp: SmtpConfig,
    /// IMAP IDLE watchers.
    pub imap: ImapConfig,
    /// The webhook for servers that push events.
    pub webhook: WebhookConfig,
    /// Bounds of the HTTP listeners (the SMTP/LMTP bounds are `smtp.*`).
    pub listeners: ListenersConfig,
    /// Mailbox ownership among replicas (leases in the `marks` Redis).
    pub sharding: ShardingConfig,
    /// Mailbox servers of tenant accounts: the networks ingest may connect
    /// to besides the public internet (`allowed_networks`; default none).
    pub accounts: pushmail_common::egress::EgressConfig,
}

/// Mailbox ownership among replicas.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ShardingConfig {
    /// Lease length: a dead replica's mailboxes are taken over within this
    /// plus a third of it; renewed every third.
    pub lease_ms: u64,
}

impl Default for ShardingConfig {
    fn default() -> Self {
        Self { lease_ms: 30_000 }
    }
}

/// Bounds of ingest's HTTP listeners.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ListenersConfig {
    /// The webhook: mail servers post small JSON events.
    pub webhook: pushmail_common::listen::HttpLimits,
}

impl Default for ListenersConfig {
    fn default() -> Self {
        Self {
            webhook: pushmail_common::listen::HttpLimits {
                max_connections: 1_000,
                max_connections_per_peer: 64,
                header_read_timeout_seconds: 10,
                idle_timeout_seconds: 30,
                max_body_bytes: crate::webhook::MAX_BODY,
            },
        }
    }
}

/// The webhook (Dovecot push_notification, OX driver).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// HTTP listen address; empty turns the webhook off.
    pub listen: String,
    /// How long a checked tenant key is trusted without asking binding.
    pub key_cache_seconds: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8104".to_owned(),
            key_cache_seconds: 60,
        }
    }
}

/// IMAP IDLE watchers (TLS trust comes from `pop3.extra_ca_file` too).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ImapConfig {
    /// One IDLE lasts this long before it is re-issued (RFC 2177 servers may
    /// drop an IDLE after 30 minutes).
    pub idle_seconds: u64,
    /// NOOP interval for servers without IDLE.
    pub noop_seconds: u64,
    /// Deadline of one server exchange.
    pub timeout_seconds: u64,
    /// Largest message fetched whole (larger ones are announced from their header).
    pub max_message_bytes: usize,
    /// How often the account list is refreshed from binding.
    pub refresh_seconds: u64,
    /// Longest wait between reconnects.
    pub max_backoff_seconds: u64,
    /// How often an account's folders watched besides INBOX are asked for
    /// news (STATUS on the account's one connection); an IDLE on INBOX
    /// lasts at most this long when the account has such folders.
    pub folder_poll_seconds: u64,
}

impl Default for ImapConfig {
    fn default() -> Self {
        Self {
            idle_seconds: 25 * 60,
            noop_seconds: 120,
            timeout_seconds: 30,
            max_message_bytes: 50 * 1024 * 1024,
            refresh_seconds: 60,
            max_backoff_seconds: 300,
            folder_poll_seconds: 120,
        }
    }
}

impl ImapConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.idle_seconds == 0 || self.idle_seconds > 29 * 60 {
            return Err(ConfigError::invalid(
                "imap.idle_seconds",
                "must be between 1 and 1740 (servers end an IDLE after 30 minutes)",
            ));
        }
        if self.folder_poll_seconds < 5 {
            return Err(ConfigError::invalid(
                "imap.folder_poll_seconds",
                "must be at least 5 (each poll is a STATUS per folder)",
            ));
        }
        if self.max_message_bytes < 64 * 1024 {
            return Err(ConfigError::invalid(
                "imap.max_message_bytes",
                "must be at least 65536",
            ));
        }
        if self.noop_seconds == 0
            || self.timeout_seconds == 0
            || self.refresh_seconds == 0
            || self.max_backoff_seconds == 0
        {
            return Err(ConfigError::invalid(
                "imap",
                "noop_seconds, timeout_seconds, refresh_seconds and max_backoff_seconds must be positive",
            ));
        }
        Ok(())
    }
}

/// The SMTP and LMTP receivers for enterprise forwarding.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// SMTP listen address; empty turns the SMTP receiver off.
    pub listen: String,
    /// LMTP listen address; empty turns the LMTP receiver off.
    pub lmtp_listen: String,
    /// Our name in greetings.
    pub hostname: String,
    /// Largest message accepted (announced as `SIZE`).
    pub max_message_bytes: usize,
    /// Recipients per message.
    pub max_recipients: usize,
    /// Connections per listener at once; more are answered `421` and closed.
    pub max_connections: usize,
    /// Connections per listener at once from one address (IPv6: one /64);
    /// more are answered `421` and closed. A relay opens a few in parallel.
    pub max_connections_per_peer: usize,
    /// Deadline of each command line (the idle limit between commands,
    /// and of a line dribbled a byte at a time), and of a whole message
    /// body.
    pub timeout_seconds: u64,
    /// Refuse mail before STARTTLS.
    pub require_tls: bool,
    /// Accept a recipient only from a connection its tenant authorised:
    /// a relay login (`AUTH` over STARTTLS), a client certificate its
    /// relay policy names (`tls.client_ca_path`), or a source network the
    /// policy allows. Off only where no one untrusted can connect
    /// (standalone on loopback).
    pub require_auth: bool,
    /// The certificate offered with STARTTLS (not offered when disabled);
    /// `tls.client_ca_path` asks relays for client certificates.
    pub tls: ServerTlsConfig,
    /// Recipient answers kept in memory.
    pub recipient_cache_entries: usize,
    /// How long a known recipient is trusted without asking binding again.
    pub recipient_found_ttl_seconds: u64,
    /// How long an unknown recipient stays unknown.
    pub recipient_unknown_ttl_seconds: u64,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:2525".to_owned(),
            lmtp_listen: "0.0.0.0:2424".to_owned(),
            hostname: "pushmail-ingest".to_owned(),
            max_message_bytes: 25 * 1024 * 1024,
            max_recipients: 100,
            max_connections: 1_000,
            max_connections_per_peer: 50,
            timeout_seconds: 300,
            require_tls: false,
            require_auth: true,
            tls: ServerTlsConfig::default(),
            recipient_cache_entries: 100_000,
            recipient_found_ttl_seconds: 60,
            recipient_unknown_ttl_seconds: 10,
        }
    }
}

impl SmtpConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        for (key, addr) in [
            ("smtp.listen", &self.listen),
            ("smtp.lmtp_listen", &self.lmtp_listen),
        ] {
            if !addr.is_empty() && addr.parse::<std::net::SocketAddr>().is_err() {
                return Err(ConfigError::invalid(key, "must be host:port (IP) or empty"));
            }
        }
        if self.max_message_bytes < 1024 || self.max_recipients == 0 || self.max_connections == 0 {
            return Err(ConfigError::invalid(
                "smtp",
                "max_message_bytes (at least 1024), max_recipients and max_connections must be positive",
            ));
        }
        pushmail_common::listen::ConnectionLimits {
            max_connections: self.max_connections,
            max_connections_per_peer: self.max_connections_per_peer,
        }
        .validate("smtp.")?;
        if self.timeout_seconds == 0 || self.hostname.trim().is_empty() {
            return Err(ConfigError::invalid(
                "smtp",
                "timeout_seconds and hostname are required",
            ));
        }
        if self.require_tls && !self.tls.enabled {
            return Err(ConfigError::invalid(
                "smtp.require_tls",
                "needs smtp.tls.enabled with a certificate",
            ));
        }
        self.tls.validate("smtp.tls.")
    }
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
    /// At an account's first poll (or after its marks were lost), how many
    /// of the newest messages already on the server are filed in the
    /// platform's store for the phone to read, without a notification
    /// (0: none; the phone then sees only mail that arrives later).
    pub backfill_messages: usize,
}

impl Default for Pop3Config {
    fn default() -> Self {
        Self {
            interval_seconds: 60,
            timeout_seconds: 30,
            max_message_bytes: 50 * 1024 * 1024,
            concurrency: 16,
            extra_ca_file: None,
            backfill_messages: 200,
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
            smtp: SmtpConfig::default(),
            imap: ImapConfig::default(),
            webhook: WebhookConfig::default(),
            listeners: ListenersConfig::default(),
            sharding: ShardingConfig::default(),
            accounts: pushmail_common::egress::EgressConfig::default(),
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
        self.blob.validate("blob.")?;
        self.smtp.validate()?;
        self.listeners.webhook.validate("listeners.webhook.")?;
        self.imap.validate()?;
        self.accounts.validate("accounts.")?;
        if !(1_000..=600_000).contains(&self.sharding.lease_ms) {
            return Err(ConfigError::invalid(
                "sharding.lease_ms",
                "must be between 1000 and 600000",
            ));
        }
        if !self.webhook.listen.is_empty()
            && self.webhook.listen.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(ConfigError::invalid(
                "webhook.listen",
                "must be host:port (IP) or empty",
            ));
        }
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
        if self.pop3.backfill_messages > 10_000 {
            return Err(ConfigError::invalid(
                "pop3.backfill_messages",
                "must be at most 10000 (each is fetched at the account's first poll)",
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

    #[test]
    fn folder_polls_and_backfills_are_bounded() {
        let mut fast = Config::default();
        fast.imap.folder_poll_seconds = 1;
        let err = fast.validate().unwrap_err().to_string();
        assert!(err.contains("imap.folder_poll_seconds"), "{err}");
        let mut huge = Config::default();
        huge.pop3.backfill_messages = 10_001;
        let err = huge.validate().unwrap_err().to_string();
        assert!(err.contains("pop3.backfill_messages"), "{err}");
        let mut none = Config::default();
        none.pop3.backfill_messages = 0;
        none.imap.folder_poll_seconds = 5;
        assert!(
            none.validate().is_ok(),
            "no backfill and the fastest poll are allowed"
        );
    }

    #[test]
    fn smtp_settings_are_checked() {
        let with = |smtp: SmtpConfig| Config {
            smtp,
            ..Config::default()
        };
        for (smtp, key) in [
            (
                SmtpConfig {
                    listen: "not an address".into(),
                    ..SmtpConfig::default()
                },
                "smtp.listen",
            ),
            (
                SmtpConfig {
                    require_tls: true,
                    ..SmtpConfig::default()
                },
                "smtp.require_tls",
            ),
            (
                SmtpConfig {
                    tls: ServerTlsConfig {
                        enabled: true,
                        ..ServerTlsConfig::default()
                    },
                    ..SmtpConfig::default()
                },
                "smtp.tls",
            ),
        ] {
            let err = with(smtp).validate().unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
        let off = SmtpConfig {
            listen: String::new(),
            lmtp_listen: String::new(),
            ..SmtpConfig::default()
        };
        assert!(with(off).validate().is_ok(), "both receivers may be off");
    }

    #[test]
    fn imap_webhook_and_lease_settings_are_checked() {
        let cases = [
            (
                Config {
                    imap: ImapConfig {
                        idle_seconds: 30 * 60,
                        ..ImapConfig::default()
                    },
                    ..Config::default()
                },
                "imap.idle_seconds",
            ),
            (
                Config {
                    imap: ImapConfig {
                        max_message_bytes: 10,
                        ..ImapConfig::default()
                    },
                    ..Config::default()
                },
                "imap.max_message_bytes",
            ),
            (
                Config {
                    webhook: WebhookConfig {
                        listen: "8104".into(),
                        ..WebhookConfig::default()
                    },
                    ..Config::default()
                },
                "webhook.listen",
            ),
            (
                Config {
                    sharding: ShardingConfig { lease_ms: 10 },
                    ..Config::default()
                },
                "sharding.lease_ms",
            ),
        ];
        for (config, key) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }
}
