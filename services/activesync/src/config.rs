//! ActiveSync service configuration (`PUSHMAIL_ACTIVESYNC__…`).

use std::net::SocketAddr;

use pushmail_common::config::{ConfigError, ServiceConfig, ShutdownConfig};
use pushmail_common::grpc::UpstreamConfig;
use pushmail_common::listen::HttpLimits;
use pushmail_common::telemetry::TelemetryConfig;
use pushmail_common::tls::ServerTlsConfig;
use serde::{Deserialize, Serialize};

use crate::policy::PolicyConfig;

/// The whole activesync config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listen addresses.
    pub server: ActiveSyncServerConfig,
    /// Logs, traces, metrics.
    pub telemetry: TelemetryConfig,
    /// Stop behaviour.
    pub shutdown: ShutdownConfig,
    /// Binding: logins and provisioning, with the activesync service's own
    /// credential.
    pub binding: UpstreamConfig,
    /// The mailbox service: folders, sync, bodies and the phone's changes,
    /// with the activesync service's own credential.
    pub mailbox: UpstreamConfig,
    /// The session service, which holds Pings, with the activesync
    /// service's own credential. A held Ping is one stream on this
    /// channel; the timeout bounds starting it, not holding it.
    pub session: UpstreamConfig,
    /// TLS on the phones' port; off where an ingress terminates it (the
    /// ingress must then pass `Authorization` through and allow long
    /// requests: see `docs/activesync.md`).
    pub tls: ServerTlsConfig,
    /// The device policy phones are given at Provision.
    pub policy: PolicyConfig,
    /// Bounds of the phones' port. Its idle timeout must exceed the longest
    /// Ping a phone holds (3,540 s).
    pub listeners: ListenersConfig,
    /// Bounds of a request's WBXML.
    pub wbxml: WbxmlConfig,
    /// The URL phones reach the ActiveSync endpoint at, as Autodiscover
    /// hands it out (`https://eas.carrier.example/Microsoft-Server-ActiveSync`);
    /// empty: Autodiscover is not served (404).
    pub public_url: String,
    /// Proxies (CIDRs or addresses) whose `X-Forwarded-For` names the
    /// phone: the ingress in front of the service. Without them, behind an
    /// ingress every phone shares the ingress's lockout budget.
    pub trusted_proxies: Vec<String>,
}

/// Where the service listens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ActiveSyncServerConfig {
    /// The phones' port: HTTP, or HTTPS with `tls.enabled`.
    pub http_addr: SocketAddr,
    /// Admin HTTP: probes and metrics.
    pub admin_addr: SocketAddr,
}

/// Bounds of the listeners.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ListenersConfig {
    /// The phones' port.
    pub http: HttpLimits,
}

impl Default for ListenersConfig {
    fn default() -> Self {
        Self {
            http: HttpLimits {
                // Phones held in Ping, many of them behind one carrier NAT
                // address (or all behind an ingress's few).
                max_connections: 200_000,
                max_connections_per_peer: 10_000,
                // A Ping is held up to 3,540 s with nothing moving.
                idle_timeout_seconds: 3_700,
                // A SendMail with its attachments, MIME-encoded.
                max_body_bytes: 32 * 1024 * 1024,
                ..HttpLimits::default()
            },
        }
    }
}

/// Bounds of a decoded request: a hostile phone cannot make the decoder
/// hold more.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct WbxmlConfig {
    /// Deepest nesting of elements.
    pub max_depth: usize,
    /// Most elements, strings and opaque values.
    pub max_nodes: usize,
}

impl Default for WbxmlConfig {
    fn default() -> Self {
        Self {
            // A Sync nests about 8 deep.
            max_depth: 32,
            // A Ping of 300 folders or a Sync of a few hundred changes is
            // a few thousand nodes.
            max_nodes: 200_000,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ActiveSyncServerConfig {
                http_addr: SocketAddr::from(([0, 0, 0, 0], 8082)),
                admin_addr: SocketAddr::from(([0, 0, 0, 0], 9109)),
            },
            telemetry: TelemetryConfig::default(),
            shutdown: ShutdownConfig::default(),
            binding: UpstreamConfig::at("http://127.0.0.1:7101"),
            mailbox: UpstreamConfig {
                // A Sync's bodies are read whole from the provider before
                // they are cut: the 5 s other upstreams get would cut a
                // window of large messages.
                timeout_ms: 120_000,
                ..UpstreamConfig::at("http://127.0.0.1:7108")
            },
            session: UpstreamConfig::at("http://127.0.0.1:7102"),
            tls: ServerTlsConfig::default(),
            policy: PolicyConfig::default(),
            listeners: ListenersConfig::default(),
            wbxml: WbxmlConfig::default(),
            public_url: String::new(),
            trusted_proxies: Vec::new(),
        }
    }
}

impl ServiceConfig for Config {
    const NAME: &'static str = "activesync";

    fn validate(&self) -> Result<(), ConfigError> {
        self.telemetry.validate("telemetry.")?;
        self.shutdown.validate("shutdown.")?;
        self.binding.validate("binding.")?;
        self.mailbox.validate("mailbox.")?;
        self.session.validate("session.")?;
        self.tls.validate("tls.")?;
        self.policy.validate()?;
        self.listeners.http.validate("listeners.http.")?;
        let url = self.public_url.trim();
        let web = url.starts_with("https://") || url.starts_with("http://");
        if !url.is_empty() && !web {
            return Err(ConfigError::invalid(
                "public_url",
                "must be an http(s) URL, e.g. https://eas.carrier.example/Microsoft-Server-ActiveSync",
            ));
        }
        crate::peer::TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|e| ConfigError::invalid("trusted_proxies", e.to_string()))?;
        if self.wbxml.max_depth == 0 || self.wbxml.max_nodes == 0 {
            return Err(ConfigError::invalid(
                "wbxml.max_depth",
                "wbxml.max_depth and wbxml.max_nodes must be positive",
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
    fn defaults_validate_and_bad_bounds_are_named() {
        Config::default().validate().unwrap();
        let mut config = Config::default();
        config.wbxml.max_nodes = 0;
        assert!(config.validate().unwrap_err().to_string().contains("wbxml"));
        let mut config = Config::default();
        config.tls.enabled = true;
        assert!(config.validate().unwrap_err().to_string().contains("tls"));
        let config = Config {
            public_url: "eas.example".to_owned(),
            ..Config::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("public_url")
        );
    }
}
