//! Redis connections: a multiplexed, self-reconnecting connection and a
//! key prefix, so several tenants of one Redis (and parallel tests) never
//! see each other's keys.

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::redact::SecretUrl;

/// Redis settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[:password@]host:port/db` or `rediss://` for TLS.
    pub url: SecretUrl,
    /// Prefix of every key this service writes, e.g. `pushmail:`.
    pub key_prefix: String,
    /// How long a command waits for its answer. The client's own default
    /// (500 ms) failed reads on a loaded node that Redis answered soon after.
    pub response_timeout_ms: u64,
    /// How long (re)connecting may take.
    pub connect_timeout_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: SecretUrl::new("redis://127.0.0.1:6379/0"),
            key_prefix: "pushmail:".to_owned(),
            response_timeout_ms: 2_000,
            connect_timeout_ms: 2_000,
        }
    }
}

impl RedisConfig {
    /// Checks the URL scheme.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        let url = self.url.expose();
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(ConfigError::invalid(
                format!("{prefix}url"),
                "must start with redis:// or rediss://",
            ));
        }
        if self.response_timeout_ms == 0 || self.connect_timeout_ms == 0 {
            return Err(ConfigError::invalid(
                format!("{prefix}response_timeout_ms"),
                "and connect_timeout_ms must be positive",
            ));
        }
        Ok(())
    }
}

/// Redis could not be reached.
#[derive(Debug, thiserror::Error)]
#[error("redis at {url}: {source}")]
pub struct RedisError {
    url: String,
    #[source]
    source: redis::RedisError,
}

/// Connects (failing fast if Redis is down at start-up).
pub async fn connect(config: &RedisConfig) -> Result<ConnectionManager, RedisError> {
    let wrap = |source| RedisError {
        url: config.url.masked(),
        source,
    };
    let client = redis::Client::open(config.url.expose()).map_err(wrap)?;
    let timeouts = redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(Some(std::time::Duration::from_millis(
            config.response_timeout_ms,
        )))
        .set_connection_timeout(Some(std::time::Duration::from_millis(
            config.connect_timeout_ms,
        )));
    ConnectionManager::new_with_config(client, timeouts)
        .await
        .map_err(wrap)
}

/// `PING`, for `/readyz`.
pub async fn ping(mut connection: ConnectionManager) -> Result<(), String> {
    redis::cmd("PING")
        .query_async::<String>(&mut connection)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Where a service keeps shared state: Redis, or process memory (standalone).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum StateStoreKind {
    /// Redis (production, several replicas).
    #[default]
    Redis,
    /// This process only (standalone, one replica).
    Memory,
}

/// A state store selection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct StateStoreConfig {
    /// `redis` or `memory`.
    pub kind: StateStoreKind,
    /// Used when `kind = "redis"`.
    pub redis: RedisConfig,
}

impl StateStoreConfig {
    /// In-process state, for standalone mode.
    pub fn memory() -> Self {
        Self {
            kind: StateStoreKind::Memory,
            redis: RedisConfig::default(),
        }
    }

    /// Checks the Redis settings when Redis is selected.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        match self.kind {
            StateStoreKind::Redis => self.redis.validate(&format!("{prefix}redis.")),
            StateStoreKind::Memory => Ok(()),
        }
    }

    /// Connects to Redis when selected; `None` means in-process state.
    pub async fn connect(&self) -> Result<Option<ConnectionManager>, RedisError> {
        match self.kind {
            StateStoreKind::Redis => connect(&self.redis).await.map(Some),
            StateStoreKind::Memory => Ok(None),
        }
    }
}
