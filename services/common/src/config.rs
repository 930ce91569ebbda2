//! Layered configuration: built-in defaults → TOML file → environment.
//!
//! Every service's config is one serde struct with `deny_unknown_fields`
//! throughout, so a misspelt key fails start-up instead of silently keeping
//! its default. Environment variables are `PUSHMAIL_<SERVICE>__<SECTION>__<KEY>`.

use std::net::SocketAddr;
use std::path::Path;

use figment::Figment;
use figment::error::Kind;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::redact::redacted;

/// A configuration that fails start-up with one line naming the key.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    /// A key has a value that cannot be used, or is not a known key.
    #[error("config error: key `{key}`: {reason}{}", origin.as_ref().map(|o| format!(" (from {o})")).unwrap_or_default())]
    Invalid {
        /// Dotted path of the key, e.g. `server.grpc_addr`.
        key: String,
        /// What is wrong with it.
        reason: String,
        /// Where the value came from: a file, an environment variable.
        origin: Option<String>,
    },
    /// The config file named on the command line cannot be used.
    #[error("config error: file {path}: {reason}")]
    File {
        /// The path given.
        path: String,
        /// Why it cannot be read.
        reason: String,
    },
}

impl ConfigError {
    /// A validation failure of `key`.
    pub fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            reason: reason.into(),
            origin: None,
        }
    }

    /// The same error for a key nested under `prefix` (e.g. `binding.`).
    pub fn nested(self, prefix: &str) -> Self {
        match self {
            Self::Invalid {
                key,
                reason,
                origin,
            } => Self::Invalid {
                key: format!("{prefix}{key}"),
                reason,
                origin,
            },
            other => other,
        }
    }

    fn from_figment(err: figment::Error) -> Self {
        let mut path = err.path.clone();
        if let Kind::UnknownField(field, _) = &err.kind
            && path.last() != Some(field)
        {
            path.push(field.clone());
        }
        let origin = err.metadata.as_ref().map(|meta| {
            if meta.name.contains("environment") {
                // The provider's name is "`PUSHMAIL_X__` environment variable(s)".
                let prefix = meta.name.split('`').nth(1).unwrap_or_default();
                let name = path
                    .iter()
                    .map(|k| k.to_ascii_uppercase())
                    .collect::<Vec<_>>();
                format!("environment variable {prefix}{}", name.join("__"))
            } else {
                match &meta.source {
                    Some(source) => format!("{} {source}", meta.name),
                    None => meta.name.to_string(),
                }
            }
        });
        let key = if path.is_empty() {
            "<root>".to_owned()
        } else {
            path.join(".")
        };
        let reason = match &err.kind {
            Kind::UnknownField(field, _) => format!("unknown key `{field}`"),
            other => other.to_string(),
        };
        Self::Invalid {
            key,
            reason,
            origin,
        }
    }
}

/// A service's whole configuration.
pub trait ServiceConfig: Serialize + DeserializeOwned + Default {
    /// The service name; the environment prefix is `PUSHMAIL_<NAME>__`.
    const NAME: &'static str;

    /// Checks what serde cannot: ranges, relations between keys.
    fn validate(&self) -> Result<(), ConfigError>;

    /// Fills in what is derived from other keys once every layer is read,
    /// before [`ServiceConfig::validate`] (standalone places its embedded
    /// stores under its data directory). Nothing by default.
    fn resolve(&mut self) {}
}

/// The environment prefix of a service, e.g. `PUSHMAIL_BINDING__`.
pub fn env_prefix(service: &str) -> String {
    format!("PUSHMAIL_{}__", service.to_ascii_uppercase())
}

/// Loads `C` from its defaults, an optional TOML file and the environment.
pub fn load<C: ServiceConfig>(file: Option<&Path>) -> Result<C, ConfigError> {
    load_from_env::<C>(file, Env::prefixed(&env_prefix(C::NAME)).split("__"))
}

fn load_from_env<C: ServiceConfig>(file: Option<&Path>, env: Env) -> Result<C, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(C::default()));
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        // Parsed here first so a syntax error names the file and line.
        toml::from_str::<toml::Value>(&text).map_err(|e| ConfigError::File {
            path: path.display().to_string(),
            reason: e.message().to_owned(),
        })?;
        figment = figment.merge(Toml::file_exact(path));
    }
    let mut config: C = figment
        .merge(env)
        .extract()
        .map_err(ConfigError::from_figment)?;
    config.resolve();
    config.validate()?;
    Ok(config)
}

/// The effective config as TOML, with every secret masked.
pub fn dump<C: Serialize>(config: &C) -> String {
    redacted(|| toml::to_string_pretty(config))
        .unwrap_or_else(|e| format!("# config cannot be shown as TOML: {e}\n"))
}

/// Where a service listens for gRPC and for its admin HTTP
/// (`/healthz`, `/readyz`, `/metrics`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// gRPC listen address.
    pub grpc_addr: SocketAddr,
    /// Admin HTTP listen address: health probes and Prometheus metrics.
    pub admin_addr: SocketAddr,
}

impl ServerConfig {
    /// Listens on all interfaces on the given ports.
    pub fn on_ports(grpc: u16, admin: u16) -> Self {
        Self {
            grpc_addr: SocketAddr::from(([0, 0, 0, 0], grpc)),
            admin_addr: SocketAddr::from(([0, 0, 0, 0], admin)),
        }
    }
}

/// Where a service without a gRPC server listens for admin HTTP.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminServerConfig {
    /// Admin HTTP listen address: health probes and Prometheus metrics.
    pub admin_addr: SocketAddr,
}

impl AdminServerConfig {
    /// Listens on all interfaces on `port`.
    pub fn on_port(port: u16) -> Self {
        Self {
            admin_addr: SocketAddr::from(([0, 0, 0, 0], port)),
        }
    }
}

/// Implements [`crate::cli::Hosted`] for a config with `telemetry` and
/// `shutdown` fields.
#[macro_export]
macro_rules! impl_hosted {
    ($config:ty) => {
        impl $crate::cli::Hosted for $config {
            fn telemetry(&self) -> &$crate::telemetry::TelemetryConfig {
                &self.telemetry
            }

            fn grace(&self) -> ::std::time::Duration {
                ::std::time::Duration::from_secs(self.shutdown.grace_seconds)
            }
        }
    };
}

/// The async runtime of a service that sizes it itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Worker threads of the process.
    pub worker_threads: usize,
}

impl Default for RuntimeConfig {
    /// One thread: such a service scales out by processes.
    fn default() -> Self {
        Self { worker_threads: 1 }
    }
}

impl RuntimeConfig {
    /// Rejects zero or more threads than any machine we size for has cores.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if !(1..=256).contains(&self.worker_threads) {
            return Err(ConfigError::invalid(
                format!("{prefix}worker_threads"),
                "must be between 1 and 256",
            ));
        }
        Ok(())
    }
}

/// How long a service may take to stop after SIGTERM/SIGINT.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// Seconds between the stop signal and a forced exit.
    pub grace_seconds: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self { grace_seconds: 30 }
    }
}

impl ShutdownConfig {
    /// Rejects a zero or absurd grace period.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if !(1..=3600).contains(&self.grace_seconds) {
            return Err(ConfigError::invalid(
                format!("{prefix}grace_seconds"),
                "must be between 1 and 3600",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::Secret;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Sample {
        server: ServerConfig,
        shutdown: ShutdownConfig,
        api_key: Secret,
    }

    impl Default for Sample {
        fn default() -> Self {
            Self {
                server: ServerConfig::on_ports(7000, 9000),
                shutdown: ShutdownConfig::default(),
                api_key: Secret::new("built-in"),
            }
        }
    }

    impl ServiceConfig for Sample {
        const NAME: &'static str = "sample";
        fn validate(&self) -> Result<(), ConfigError> {
            self.shutdown.validate("shutdown.")
        }
    }

    /// Loads in a figment `Jail`: a private working directory and an
    /// environment restored afterwards, serialised across tests.
    #[allow(clippy::result_large_err)] // figment's Jail API fixes the error type
    fn load_with(toml_text: Option<&str>, env: &[(&str, &str)]) -> Result<Sample, ConfigError> {
        let mut result = None;
        figment::Jail::expect_with(|jail| {
            if let Some(text) = toml_text {
                jail.create_file("sample.toml", text)?;
            }
            for (key, value) in env {
                jail.set_env(key, value);
            }
            result = Some(load::<Sample>(toml_text.map(|_| Path::new("sample.toml"))));
            Ok(())
        });
        result.unwrap()
    }

    #[test]
    fn layers_apply_in_order() {
        let config = load_with(Some("[server]\ngrpc_addr = \"127.0.0.1:7100\"\n"), &[]).unwrap();
        assert_eq!(config.server.grpc_addr.port(), 7100);
        assert_eq!(config.server.admin_addr.port(), 9000, "default kept");
    }

    #[test]
    fn unknown_key_in_file_names_the_key() {
        let err = load_with(Some("[server]\ngrpc_adr = \"127.0.0.1:1\"\n"), &[]).unwrap_err();
        let line = err.to_string();
        assert!(line.contains("server.grpc_adr"), "{line}");
        assert!(!line.contains('\n'), "one line: {line}");
    }

    #[test]
    fn bad_value_names_the_key() {
        let err = load_with(Some("[server]\ngrpc_addr = \"nowhere\"\n"), &[]).unwrap_err();
        assert!(err.to_string().contains("server.grpc_addr"), "{err}");
    }

    #[test]
    fn validation_names_the_key() {
        let err = load_with(Some("[shutdown]\ngrace_seconds = 0\n"), &[]).unwrap_err();
        assert_eq!(
            err,
            ConfigError::invalid("shutdown.grace_seconds", "must be between 1 and 3600")
        );
    }

    #[test]
    fn environment_overrides_file() {
        let config = load_with(
            Some("[server]\ngrpc_addr = \"127.0.0.1:7100\"\n"),
            &[("PUSHMAIL_SAMPLE__SERVER__GRPC_ADDR", "127.0.0.1:7200")],
        )
        .unwrap();
        assert_eq!(config.server.grpc_addr.port(), 7200);
    }

    #[test]
    fn unknown_env_key_names_the_variable() {
        let err = load_with(None, &[("PUSHMAIL_SAMPLE__SERVER__NOPE", "1")]).unwrap_err();
        let line = err.to_string();
        assert!(line.contains("server.nope"), "{line}");
        assert!(line.contains("PUSHMAIL_SAMPLE__SERVER__NOPE"), "{line}");
    }

    #[test]
    fn dump_masks_secrets() {
        let dumped = dump(&Sample::default());
        assert!(dumped.contains("<redacted>"), "{dumped}");
        assert!(!dumped.contains("built-in"), "{dumped}");
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = load_from_env::<Sample>(Some(Path::new("/nonexistent/x.toml")), Env::raw())
            .unwrap_err();
        assert!(matches!(err, ConfigError::File { .. }), "{err}");
    }
}
