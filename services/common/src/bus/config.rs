//! Bus configuration, shared by every service that publishes or consumes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::redact::Secret;

/// Which bus implementation to use.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum BusKind {
    /// Apache Kafka or a Kafka-compatible broker.
    #[default]
    Kafka,
    /// In-process log: tests and benchmarks, lost when the process exits.
    Memory,
    /// In-process log kept in a SQLite file: standalone, survives a crash.
    Sqlite,
}

/// Bus settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    /// `kafka`, `memory` or `sqlite`.
    pub kind: BusKind,
    /// Used when `kind = "kafka"`.
    pub kafka: KafkaConfig,
    /// Used when `kind = "memory"`.
    pub memory: MemoryBusConfig,
    /// Used when `kind = "sqlite"`.
    pub sqlite: SqliteBusConfig,
}

impl BusConfig {
    /// Checks the selected implementation's settings.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        match self.kind {
            BusKind::Kafka => self.kafka.validate(&format!("{prefix}kafka.")),
            BusKind::Memory => self.memory.validate(&format!("{prefix}memory.")),
            BusKind::Sqlite => self.sqlite.validate(&format!("{prefix}sqlite.")),
        }
    }

    /// Partitions given to the topics a service creates on this bus.
    pub fn partitions(&self) -> i32 {
        match self.kind {
            BusKind::Kafka => self.kafka.default_partitions,
            BusKind::Memory => self.memory.partitions,
            BusKind::Sqlite => self.sqlite.partitions,
        }
    }
}

/// Kafka client settings (librdkafka underneath).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Comma-separated bootstrap servers.
    pub brokers: String,
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub security_protocol: String,
    /// SASL mechanism when SASL is used: `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`.
    pub sasl_mechanism: String,
    /// SASL user name.
    pub sasl_username: String,
    /// SASL password.
    pub sasl_password: Secret,
    /// CA bundle for TLS to the brokers; empty: system roots.
    pub ssl_ca_location: String,
    /// Consumer session timeout; a member silent this long leaves its group.
    pub session_timeout_ms: u32,
    /// Longest a fetch waits for data (bounds produce-to-consume latency).
    pub fetch_wait_max_ms: u32,
    /// How often handled offsets are committed.
    pub auto_commit_interval_ms: u32,
    /// Longest a publish waits for the broker's acknowledgement.
    pub message_timeout_ms: u32,
    /// Longest a publish waits for room in a full producer queue.
    pub queue_timeout_ms: u32,
    /// Producer queue bound, in messages.
    pub queue_max_messages: u32,
    /// Producer batching delay.
    pub linger_ms: u32,
    /// `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    pub compression: String,
    /// Partitions given to topics this service creates.
    pub default_partitions: i32,
    /// Replication factor of topics this service creates.
    pub replication_factor: i32,
    /// Any other librdkafka property, passed through unchanged.
    pub extra: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".to_owned(),
            security_protocol: "plaintext".to_owned(),
            sasl_mechanism: String::new(),
            sasl_username: String::new(),
            sasl_password: Secret::default(),
            ssl_ca_location: String::new(),
            session_timeout_ms: 10_000,
            fetch_wait_max_ms: 50,
            auto_commit_interval_ms: 1_000,
            message_timeout_ms: 30_000,
            queue_timeout_ms: 5_000,
            queue_max_messages: 100_000,
            linger_ms: 5,
            compression: "none".to_owned(),
            default_partitions: 12,
            replication_factor: 3,
            extra: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        let key = |name: &str| format!("{prefix}{name}");
        if self.brokers.trim().is_empty() {
            return Err(ConfigError::invalid(
                key("brokers"),
                "must name at least one broker",
            ));
        }
        let protocols = ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"];
        if !protocols.contains(&self.security_protocol.as_str()) {
            return Err(ConfigError::invalid(
                key("security_protocol"),
                format!("must be one of {}", protocols.join(", ")),
            ));
        }
        if self.security_protocol.starts_with("sasl") && self.sasl_mechanism.is_empty() {
            return Err(ConfigError::invalid(
                key("sasl_mechanism"),
                "required with SASL",
            ));
        }
        let codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
        if !codecs.contains(&self.compression.as_str()) {
            return Err(ConfigError::invalid(
                key("compression"),
                format!("must be one of {}", codecs.join(", ")),
            ));
        }
        if self.session_timeout_ms < 1_000 {
            return Err(ConfigError::invalid(
                key("session_timeout_ms"),
                "must be at least 1000",
            ));
        }
        if self.default_partitions < 1 || self.replication_factor < 1 {
            return Err(ConfigError::invalid(
                key("default_partitions"),
                "partitions and replication_factor must be at least 1",
            ));
        }
        if self.queue_max_messages == 0 {
            return Err(ConfigError::invalid(
                key("queue_max_messages"),
                "must be positive",
            ));
        }
        Ok(())
    }
}

/// In-process bus settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryBusConfig {
    /// Records a partition holds beyond the slowest group before publishers wait.
    pub partition_capacity: usize,
    /// Partitions of each topic.
    pub partitions: i32,
    /// Longest a publish waits for room before failing with `QueueFull`.
    pub publish_timeout_ms: u64,
}

impl Default for MemoryBusConfig {
    fn default() -> Self {
        Self {
            partition_capacity: 10_000,
            partitions: 4,
            publish_timeout_ms: 5_000,
        }
    }
}

impl MemoryBusConfig {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        require_positive(
            prefix,
            &[
                ("partition_capacity", self.partition_capacity > 0),
                ("partitions", self.partitions > 0),
            ],
        )
    }
}

/// The durable in-process bus: the memory bus's log, written to a SQLite
/// file (WAL, synchronous FULL) before a publish returns.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SqliteBusConfig {
    /// The database file; its directory is created. One process at a time.
    pub path: PathBuf,
    /// Partitions of each topic.
    pub partitions: i32,
    /// Records a partition holds beyond its slowest group before publishers wait.
    pub partition_capacity: usize,
    /// Bytes (key, payload, headers) a partition holds beyond its slowest
    /// group before publishers wait.
    pub partition_capacity_bytes: usize,
    /// Longest a publish waits for room before failing with `QueueFull`.
    pub publish_timeout_ms: u64,
    /// A group that committed nothing for this long is forgotten when the
    /// file is opened, so an abandoned group does not pin records forever
    /// (Kafka's `offsets.retention.minutes`, 7 days by default).
    pub group_retention_hours: u64,
}

impl Default for SqliteBusConfig {
    fn default() -> Self {
        let memory = MemoryBusConfig::default();
        Self {
            path: PathBuf::new(),
            partitions: memory.partitions,
            partition_capacity: memory.partition_capacity,
            partition_capacity_bytes: 64 * 1024 * 1024,
            publish_timeout_ms: memory.publish_timeout_ms,
            group_retention_hours: 7 * 24,
        }
    }
}

impl SqliteBusConfig {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        let key = |name: &str| format!("{prefix}{name}");
        if self.path.as_os_str().is_empty() {
            return Err(ConfigError::invalid(
                key("path"),
                "is required for kind = sqlite",
            ));
        }
        require_positive(
            prefix,
            &[
                ("partitions", self.partitions > 0),
                ("partition_capacity", self.partition_capacity > 0),
                (
                    "partition_capacity_bytes",
                    self.partition_capacity_bytes > 0,
                ),
                ("group_retention_hours", self.group_retention_hours > 0),
            ],
        )
    }
}

/// The first field of `fields` (name, whether it is positive) that is
/// not, as the error naming it.
fn require_positive(prefix: &str, fields: &[(&str, bool)]) -> Result<(), ConfigError> {
    match fields.iter().find(|(_, positive)| !positive) {
        Some((name, _)) => Err(ConfigError::invalid(
            format!("{prefix}{name}"),
            "must be positive",
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_bus_needs_a_path() {
        let config = BusConfig {
            kind: BusKind::Sqlite,
            ..BusConfig::default()
        };
        let err = config.validate("bus.").unwrap_err();
        assert!(err.to_string().contains("bus.sqlite.path"), "{err}");
        let config = BusConfig {
            sqlite: SqliteBusConfig {
                path: "bus.db".into(),
                partition_capacity_bytes: 0,
                ..SqliteBusConfig::default()
            },
            ..config
        };
        let err = config.validate("bus.").unwrap_err();
        assert!(
            err.to_string()
                .contains("bus.sqlite.partition_capacity_bytes"),
            "{err}"
        );
    }
}
