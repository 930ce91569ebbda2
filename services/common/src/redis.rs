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
    /// Where this Redis keeps a key family that must not be lost (outbox,
    /// held mail, SMS claims, ingest marks), the service refuses to start
    /// unless the Redis persists it (append-only file on, fsync not
    /// switched off). `true` accepts losing that state (a test Redis);
    /// `docs/operations.md` says what each family loses.
    pub allow_volatile: bool,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: SecretUrl::new("redis://127.0.0.1:6379/0"),
            key_prefix: "pushmail:".to_owned(),
            response_timeout_ms: 2_000,
            connect_timeout_ms: 2_000,
            allow_volatile: false,
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

/// Redis could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// Not reachable, or a command failed.
    #[error("redis at {url}: {source}")]
    Unreachable {
        /// The URL, password masked.
        url: String,
        /// What failed.
        #[source]
        source: redis::RedisError,
    },
    /// A key family that must survive a restart points at a Redis that
    /// would lose it.
    #[error(
        "redis at {url} does not persist {family} ({why}): turn on appendonly with appendfsync everysec (and a replica), or set allow_volatile = true to accept losing it"
    )]
    Volatile {
        /// The URL, password masked.
        url: String,
        /// What would be lost, e.g. "the per-device outbox".
        family: &'static str,
        /// What the Redis said.
        why: String,
    },
}

/// Whether a key family may be lost with its Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Rebuilt when lost (caches, directory leases): any Redis will do.
    Cache,
    /// Must survive a Redis restart; names the family for the operator.
    Durable(&'static str),
}

/// Connects (failing fast if Redis is down at start-up).
pub async fn connect(config: &RedisConfig) -> Result<ConnectionManager, RedisError> {
    let wrap = |source| RedisError::Unreachable {
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

/// Connects for a key family of `durability`: a durable family refuses a
/// Redis that does not persist it (unless `allow_volatile`).
pub async fn connect_for(
    config: &RedisConfig,
    durability: Durability,
) -> Result<ConnectionManager, RedisError> {
    let mut connection = connect(config).await?;
    if let Durability::Durable(family) = durability
        && !config.allow_volatile
    {
        check_persistence(&mut connection, &config.url.masked(), family).await?;
    }
    Ok(connection)
}

/// Refuses a Redis without an append-only file, or one whose fsync is off.
/// A missing replica is only warned about: the primary's AOF alone keeps
/// the state across restarts; a replica keeps it across the loss of a node.
async fn check_persistence(
    connection: &mut ConnectionManager,
    url: &str,
    family: &'static str,
) -> Result<(), RedisError> {
    let unreachable = |source| RedisError::Unreachable {
        url: url.to_owned(),
        source,
    };
    let volatile = |why: String| RedisError::Volatile {
        url: url.to_owned(),
        family,
        why,
    };
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query_async(connection)
        .await
        .map_err(unreachable)?;
    if info_field(&info, "aof_enabled") != Some("1") {
        return Err(volatile("appendonly is off".to_owned()));
    }
    // Managed services often refuse CONFIG; AOF on is then enough to go on.
    let fsync: Result<Vec<String>, _> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("appendfsync")
        .query_async(connection)
        .await;
    if let Ok(pair) = fsync
        && pair.get(1).is_some_and(|v| v.eq_ignore_ascii_case("no"))
    {
        return Err(volatile("appendfsync is no".to_owned()));
    }
    let replication: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(connection)
        .await
        .map_err(unreachable)?;
    if info_field(&replication, "role") == Some("master")
        && info_field(&replication, "connected_slaves") == Some("0")
    {
        tracing::warn!(
            url,
            family,
            "redis has no replica: the state survives a restart, not the loss of the node"
        );
    }
    Ok(())
}

/// `name:value` from an `INFO` answer.
fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

/// `PING`, for `/readyz`.
pub async fn ping(mut connection: ConnectionManager) -> Result<(), redis::RedisError> {
    redis::cmd("PING")
        .query_async::<String>(&mut connection)
        .await
        .map(|_| ())
}

/// Where a service keeps shared state: Redis, a SQLite file (standalone,
/// durable), or process memory.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum StateStoreKind {
    /// Redis (production, several replicas).
    #[default]
    Redis,
    /// This process only, lost when it exits.
    Memory,
    /// A SQLite file of this process (standalone): kept across restarts.
    Sqlite,
}

/// A state store selection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct StateStoreConfig {
    /// `redis`, `sqlite` or `memory`.
    pub kind: StateStoreKind,
    /// Used when `kind = "redis"`.
    pub redis: RedisConfig,
    /// The database file, when `kind = "sqlite"`.
    pub sqlite_path: std::path::PathBuf,
}

impl StateStoreConfig {
    /// In-process state.
    pub fn memory() -> Self {
        Self {
            kind: StateStoreKind::Memory,
            ..Self::default()
        }
    }

    /// State in the SQLite file at `path`.
    pub fn sqlite(path: impl Into<std::path::PathBuf>) -> Self {
        Self {
            kind: StateStoreKind::Sqlite,
            sqlite_path: path.into(),
            ..Self::default()
        }
    }

    /// Checks the selected store's settings.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        match self.kind {
            StateStoreKind::Redis => self.redis.validate(&format!("{prefix}redis.")),
            StateStoreKind::Memory => Ok(()),
            StateStoreKind::Sqlite if self.sqlite_path.as_os_str().is_empty() => {
                Err(ConfigError::invalid(
                    format!("{prefix}sqlite_path"),
                    "is required for kind = sqlite",
                ))
            }
            StateStoreKind::Sqlite => Ok(()),
        }
    }

    /// Connects to Redis when selected, for state of `durability`;
    /// `None` means in-process state.
    pub async fn connect(
        &self,
        durability: Durability,
    ) -> Result<Option<ConnectionManager>, RedisError> {
        match self.kind {
            StateStoreKind::Redis => connect_for(&self.redis, durability).await.map(Some),
            StateStoreKind::Memory | StateStoreKind::Sqlite => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields_are_read_by_name() {
        let info = "# Persistence\r\nloading:0\r\naof_enabled:1\r\naof_rewrite_in_progress:0\r\n";
        assert_eq!(info_field(info, "aof_enabled"), Some("1"));
        assert_eq!(info_field(info, "aof"), None, "a prefix is not a field");
        assert_eq!(info_field(info, "rdb_changes_since_last_save"), None);
    }
}
