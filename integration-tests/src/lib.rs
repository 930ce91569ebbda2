//! Test kit for cross-service tests against real dependencies.
//!
//! Every dependency is named by an environment variable that
//! `scripts/env.sh` sets (defaults match `scripts/provision.sh`). A test
//! that cannot reach one fails with the reason; nothing is skipped.

use std::sync::Arc;

use pushmail_common::bus::{EventBus, KafkaBus, KafkaConfig, MemoryBus, MemoryBusConfig};

/// A name no other test (or earlier run) uses: topics, groups, databases.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// The test broker's address (`PUSHMAIL_TEST_KAFKA`, default `127.0.0.1:9092`).
pub fn kafka_brokers() -> String {
    std::env::var("PUSHMAIL_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// Kafka settings tuned for tests: a short group session (a join waits half
/// of it) and short fetch waits, on a single-broker cluster.
pub fn kafka_config() -> KafkaConfig {
    KafkaConfig {
        brokers: kafka_brokers(),
        session_timeout_ms: 6_000,
        fetch_wait_max_ms: 10,
        auto_commit_interval_ms: 20,
        replication_factor: 1,
        ..KafkaConfig::default()
    }
}

/// A Kafka bus on the test broker; fails the test if the broker is down.
pub async fn kafka_bus() -> anyhow::Result<Arc<dyn EventBus>> {
    let bus = KafkaBus::new(&kafka_config(), &unique("test"))?;
    bus.check().await.map_err(|e| {
        anyhow::anyhow!(
            "Kafka broker at {} unreachable ({e}); run `bash scripts/provision.sh`",
            kafka_brokers()
        )
    })?;
    Ok(Arc::new(bus))
}

/// An in-process bus with the given partition capacity.
pub fn memory_bus(partition_capacity: usize) -> Arc<dyn EventBus> {
    Arc::new(MemoryBus::new(&MemoryBusConfig {
        partition_capacity,
        partitions: 3,
        publish_timeout_ms: 30_000,
    }))
}
