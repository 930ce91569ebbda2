//! Gateway configuration (`PUSHMAIL_GATEWAY__…`).

use std::net::SocketAddr;

use pushmail_common::config::{ConfigError, ServiceConfig, ShutdownConfig};
use pushmail_common::grpc::UpstreamConfig;
use pushmail_common::listen::HttpLimits;
use pushmail_common::telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

/// The whole gateway config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listen addresses.
    pub server: GatewayServerConfig,
    /// Logs, traces, metrics.
    pub telemetry: TelemetryConfig,
    /// Stop behaviour.
    pub shutdown: ShutdownConfig,
    /// The binding service (admin surface).
    pub binding: UpstreamConfig,
    /// The transcode service (previews).
    pub transcode: UpstreamConfig,
    /// The session service (which devices are connected), with the gateway's credential.
    pub session: UpstreamConfig,
    /// The mailbox service (the device mailbox API), with the gateway's
    /// credential.
    pub mailbox: UpstreamConfig,
    /// The admin API.
    pub api: ApiConfig,
    /// Portal sign-in sessions.
    pub portal: PortalConfig,
    /// Device tokens.
    pub tokens: TokensConfig,
    /// The device fetch API.
    pub fetch: FetchConfig,
    /// Bounds of the listeners.
    pub listeners: ListenersConfig,
}

/// Bounds of the gateway's listeners.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ListenersConfig {
    /// The public HTTP port (REST, portal, device fetch and mailbox).
    pub http: HttpLimits,
}

impl Default for ListenersConfig {
    fn default() -> Self {
        Self {
            http: HttpLimits {
                // An upload chunk (the mailbox service's 1 MiB by default)
                // and its headers; the admin API keeps its own 64 KiB.
                max_body_bytes: 1024 * 1024 + 64 * 1024,
                ..HttpLimits::default()
            },
        }
    }
}

/// The admin API's limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Requests per minute per credential (per gateway replica).
    pub requests_per_minute: u32,
    /// Requests at once above the rate.
    pub burst: u32,
    /// Credentials whose rate is tracked at most (per replica). When the
    /// table is full a credential it does not hold waits (429) until an
    /// entry's state is as good as fresh; no live entry is ever dropped.
    pub max_tracked_credentials: usize,
    /// Credentials not yet tracked that one address may present per
    /// minute: a flood of made-up keys from one address is answered 429
    /// after this, before binding is asked.
    pub new_credentials_per_minute_per_peer: u32,
    /// New credentials at once from one address above that rate.
    pub new_credentials_burst_per_peer: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            requests_per_minute: 600,
            burst: 60,
            max_tracked_credentials: 100_000,
            new_credentials_per_minute_per_peer: 60,
            new_credentials_burst_per_peer: 30,
        }
    }
}

/// Portal sessions (a sealed cookie; see `api::session`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PortalConfig {
    /// 64 hex digits shared by every gateway replica; empty: a random key
    /// per process (sessions end with it and work on one replica only).
    pub session_key: pushmail_common::redact::Secret,
    /// How long a sign-in lasts.
    pub session_ttl_minutes: u64,
    /// Mark the cookie `Secure` (HTTPS only); off only for plain-HTTP local use.
    pub secure_cookie: bool,
}

impl Default for PortalConfig {
    fn default() -> Self {
        Self {
            session_key: pushmail_common::redact::Secret::default(),
            session_ttl_minutes: 60,
            secure_cookie: true,
        }
    }
}

/// How device tokens are checked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TokensConfig {
    /// The binding service's Ed25519 public key, hex (binding logs it at start).
    pub public_key: String,
}

/// The device fetch API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FetchConfig {
    /// How often fetch counts go to binding's traffic statistics.
    pub traffic_flush_ms: u64,
    /// How long an account's devices (who may fetch) are reused; a resumed
    /// download asks once, not once per range. 0: ask every time.
    pub targets_cache_ms: u64,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            traffic_flush_ms: 10_000,
            targets_cache_ms: 5_000,
        }
    }
}

/// Where the gateway listens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GatewayServerConfig {
    /// Public HTTP: REST API, portal, device fetch.
    pub http_addr: SocketAddr,
    /// Admin HTTP: probes and metrics.
    pub admin_addr: SocketAddr,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: GatewayServerConfig {
                http_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
                admin_addr: SocketAddr::from(([0, 0, 0, 0], 9106)),
            },
            telemetry: TelemetryConfig::default(),
            shutdown: ShutdownConfig::default(),
            binding: UpstreamConfig::at("http://127.0.0.1:7101"),
            transcode: UpstreamConfig::at("http://127.0.0.1:7103"),
            session: UpstreamConfig::at("http://127.0.0.1:7102"),
            mailbox: UpstreamConfig {
                // A Send waits for the provider's submission server (60 s
                // per answer there) and a raw fetch reads the whole
                // message first: the 5 s other upstreams get would cut
                // them.
                timeout_ms: 120_000,
                ..UpstreamConfig::at("http://127.0.0.1:7108")
            },
            api: ApiConfig::default(),
            portal: PortalConfig::default(),
            tokens: TokensConfig::default(),
            fetch: FetchConfig::default(),
            listeners: ListenersConfig::default(),
        }
    }
}

impl ServiceConfig for Config {
    const NAME: &'static str = "gateway";

    fn validate(&self) -> Result<(), ConfigError> {
        self.telemetry.validate("telemetry.")?;
        self.shutdown.validate("shutdown.")?;
        self.binding.validate("binding.")?;
        self.transcode.validate("transcode.")?;
        self.session.validate("session.")?;
        self.mailbox.validate("mailbox.")?;
        if self.api.requests_per_minute == 0 || self.portal.session_ttl_minutes == 0 {
            return Err(ConfigError::invalid(
                "api.requests_per_minute",
                "api.requests_per_minute and portal.session_ttl_minutes must be positive",
            ));
        }
        if self.api.max_tracked_credentials == 0
            || self.api.new_credentials_per_minute_per_peer == 0
        {
            return Err(ConfigError::invalid(
                "api.max_tracked_credentials",
                "api.max_tracked_credentials and api.new_credentials_per_minute_per_peer must be positive",
            ));
        }
        self.listeners.http.validate("listeners.http.")?;
        if self.fetch.traffic_flush_ms == 0 {
            return Err(ConfigError::invalid(
                "fetch.traffic_flush_ms",
                "must be positive",
            ));
        }
        Ok(())
    }
}

pushmail_common::impl_hosted!(Config);
