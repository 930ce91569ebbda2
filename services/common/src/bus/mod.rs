//! The event bus seam: Kafka in production, an in-process log kept in a
//! SQLite file in standalone, the same log in memory only for tests.
//!
//! The three implementations keep the same contract, and one behaviour test
//! runs against each:
//! - `publish` returns only once the record is durable (Kafka: acked by all
//!   in-sync replicas; SQLite: in a committed transaction on disk; memory:
//!   appended to the log, lost with the process), or with an error
//!   the caller can act on (answer 4xx, keep the IMAP high-water mark).
//! - consumers in a group share partitions; a record's offset is committed
//!   only after [`Subscription::commit`], which [`consume`] calls only after
//!   the handler succeeded. A crash redelivers, never skips: at least once.
//! - a full buffer pushes back on the producer instead of growing.

mod config;
mod consumer;
mod dead_letter;
mod error;
mod kafka;
mod kafka_consumer;
mod lanes;
mod log;
mod memory;
mod receipt;
mod record;
mod sqlite;
mod typed;

use std::sync::Arc;

use async_trait::async_trait;

pub use config::{BusConfig, BusKind, KafkaConfig, MemoryBusConfig, SqliteBusConfig};
pub use consumer::{Handler, HandlerError, METRIC_CONSUMED, METRIC_HANDLER_ERRORS, Tail, consume};
pub use dead_letter::dead_letter;
pub use error::{BusError, Cause, Undecodable};
pub use kafka::KafkaBus;
pub use lanes::consume_concurrently;
pub use memory::MemoryBus;
pub use receipt::{METRIC_RECEIPTS_LOST, publish_receipt};
pub use record::{Delivered, Headers, InboundRecord, OutboundRecord, header};
pub use sqlite::SqliteBus;
pub use typed::{EventContext, decode, encode};

/// Options of a consumer-group subscription.
#[derive(Debug, Clone)]
pub struct SubscribeOptions {
    /// Consumer group id; members of one group share the partitions.
    pub group: String,
    /// Topics to read.
    pub topics: Vec<String>,
}

/// Publishes records and hands out consumer-group subscriptions.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Creates `topic` with `partitions` partitions if it does not exist.
    async fn ensure_topic(&self, topic: &str, partitions: i32) -> Result<(), BusError>;

    /// Publishes one record and waits until it is durable.
    async fn publish(&self, topic: &str, record: OutboundRecord) -> Result<Delivered, BusError>;

    /// Joins a consumer group.
    async fn subscribe(&self, options: SubscribeOptions)
    -> Result<Box<dyn Subscription>, BusError>;

    /// Whether the bus is reachable, for `/readyz`.
    async fn check(&self) -> Result<(), BusError>;
}

/// One member of a consumer group.
#[async_trait]
pub trait Subscription: Send {
    /// Waits for the next record of the partitions assigned to this member.
    async fn next(&mut self) -> Result<InboundRecord, BusError>;

    /// Marks `record` (and everything before it on its partition) handled.
    async fn commit(&mut self, record: &InboundRecord) -> Result<(), BusError>;

    /// Leaves the group after committing what was marked handled.
    async fn close(self: Box<Self>) -> Result<(), BusError>;
}

/// Builds the bus a service's config asks for (the SQLite bus reads its
/// file back here).
pub async fn connect(config: &BusConfig, client_id: &str) -> Result<Arc<dyn EventBus>, BusError> {
    Ok(match config.kind {
        BusKind::Kafka => Arc::new(KafkaBus::new(&config.kafka, client_id)?),
        BusKind::Memory => Arc::new(MemoryBus::new(&config.memory)),
        BusKind::Sqlite => Arc::new(SqliteBus::open(&config.sqlite).await?),
    })
}
