//! The in-process bus: the shared [`Log`](super::log) in memory only, lost
//! when the process exits. Records become visible as soon as they are
//! appended; the log's bounds push back on publishers.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::log::{Limits, Log, LogSubscription, State, Stored};
use super::{
    BusError, Delivered, EventBus, InboundRecord, MemoryBusConfig, OutboundRecord,
    SubscribeOptions, Subscription,
};

/// In-process [`EventBus`]; clones share the same logs.
#[derive(Clone)]
pub struct MemoryBus {
    log: Arc<Log>,
}

impl MemoryBus {
    /// An empty bus.
    pub fn new(config: &MemoryBusConfig) -> Self {
        let limits = Limits {
            partitions: config.partitions,
            records: config.partition_capacity,
            // Bounded by records only: the memory bus has no byte setting.
            bytes: usize::MAX,
            publish_timeout: Duration::from_millis(config.publish_timeout_ms),
        };
        Self {
            log: Log::new(limits, State::default()),
        }
    }
}

#[async_trait]
impl EventBus for MemoryBus {
    async fn ensure_topic(&self, topic: &str, partitions: i32) -> Result<(), BusError> {
        self.log.ensure_topic(topic, partitions)
    }

    async fn publish(&self, topic: &str, record: OutboundRecord) -> Result<Delivered, BusError> {
        let record = Stored::new(record);
        let reservation = self.log.reserve(topic, &record).await?;
        self.log
            .append([(reservation, record)])
            .pop()
            .ok_or(BusError::Closed)
    }

    async fn subscribe(
        &self,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, BusError> {
        Ok(Box::new(MemorySubscription(self.log.subscribe(options))))
    }

    async fn check(&self) -> Result<(), BusError> {
        Ok(())
    }
}

struct MemorySubscription(LogSubscription);

#[async_trait]
impl Subscription for MemorySubscription {
    async fn next(&mut self) -> Result<InboundRecord, BusError> {
        self.0.next().await
    }

    async fn commit(&mut self, record: &InboundRecord) -> Result<(), BusError> {
        self.0.commit(record)
    }

    async fn close(self: Box<Self>) -> Result<(), BusError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::Headers;

    fn bus(capacity: usize) -> MemoryBus {
        MemoryBus::new(&MemoryBusConfig {
            partition_capacity: capacity,
            partitions: 1,
            publish_timeout_ms: 50,
        })
    }

    fn record(n: u8) -> OutboundRecord {
        OutboundRecord {
            key: vec![1],
            payload: vec![n],
            headers: Headers::new(),
        }
    }

    #[tokio::test]
    async fn full_partition_pushes_back_then_recovers_after_commit() {
        let bus = bus(2);
        let mut sub = bus
            .subscribe(SubscribeOptions {
                group: "g".into(),
                topics: vec!["t".into()],
            })
            .await
            .unwrap();
        bus.publish("t", record(1)).await.unwrap();
        bus.publish("t", record(2)).await.unwrap();
        let err = bus.publish("t", record(3)).await.unwrap_err();
        assert!(matches!(err, BusError::QueueFull { .. }), "{err}");
        let first = sub.next().await.unwrap();
        sub.commit(&first).await.unwrap();
        let delivered = bus.publish("t", record(3)).await.unwrap();
        assert_eq!(delivered.offset, 2);
    }

    #[tokio::test]
    async fn unsubscribed_topic_keeps_newest_records() {
        let bus = bus(2);
        for n in 0..5 {
            bus.publish("t", record(n)).await.unwrap();
        }
        let mut sub = bus
            .subscribe(SubscribeOptions {
                group: "late".into(),
                topics: vec!["t".into()],
            })
            .await
            .unwrap();
        assert_eq!(sub.next().await.unwrap().payload, vec![3]);
        assert_eq!(sub.next().await.unwrap().payload, vec![4]);
    }

    #[tokio::test]
    async fn uncommitted_records_are_redelivered_to_the_next_member() {
        let bus = bus(10);
        for n in 0..3 {
            bus.publish("t", record(n)).await.unwrap();
        }
        let options = SubscribeOptions {
            group: "g".into(),
            topics: vec!["t".into()],
        };
        let mut first = bus.subscribe(options.clone()).await.unwrap();
        let r0 = first.next().await.unwrap();
        first.commit(&r0).await.unwrap();
        let _r1 = first.next().await.unwrap();
        drop(first);
        let mut second = bus.subscribe(options).await.unwrap();
        assert_eq!(
            second.next().await.unwrap().offset,
            1,
            "uncommitted record comes back"
        );
    }
}
