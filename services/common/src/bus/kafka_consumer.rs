//! The Kafka group member: offsets are committed by pushmail, never by
//! librdkafka's auto-commit, and only for handled records.
//!
//! Handled offsets collect in a pending map shared with the rebalance
//! callback. They are committed synchronously by the consuming task at most
//! once per interval, and on `close`; those of partitions being revoked are
//! dropped, so a commit batch never carries a partition this member no
//! longer owns (which would fail the whole batch, forever).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers as _, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::{BusError, InboundRecord, Subscription};

/// Next offset to commit per (topic, partition).
type Pending = Arc<Mutex<HashMap<(String, i32), i64>>>;

fn lock(pending: &Pending) -> MutexGuard<'_, HashMap<(String, i32), i64>> {
    // Entries are plain numbers; a panic elsewhere cannot leave them torn.
    pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn to_list(entries: &HashMap<(String, i32), i64>) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    for ((topic, partition), next) in entries {
        // Only fails for an invalid offset, and `next` is always a real one.
        let _ = list.add_partition_offset(topic, *partition, Offset::Offset(*next));
    }
    list
}

/// Rebalance callbacks: forget revoked partitions' pending offsets, log.
pub(super) struct GroupContext {
    pub(super) group: String,
    pending: Pending,
}

impl GroupContext {
    pub(super) fn new(group: &str) -> Self {
        Self {
            group: group.to_owned(),
            pending: Arc::default(),
        }
    }
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(revoked) = rebalance else {
            return;
        };
        // Offsets handled on partitions that are leaving are dropped, not
        // committed here: an OffsetCommit overlapping a rebalance can hold
        // the fetchers back (librdkafka issue 2933), and a synchronous one
        // would block this runtime worker inside `recv`. The next owner
        // redelivers those records instead: at least once, never lost.
        let mut pending = lock(&self.pending);
        for element in revoked.elements() {
            pending.remove(&(element.topic().to_owned(), element.partition()));
        }
        drop(pending);
        tracing::info!(group = %self.group, partitions = %describe(revoked), "partitions revoked");
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                tracing::info!(group = %self.group, partitions = %describe(list), "partitions assigned");
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(err) => {
                tracing::warn!(group = %self.group, error = %err, "rebalance failed");
            }
        }
    }
}

fn describe(list: &TopicPartitionList) -> String {
    list.elements()
        .iter()
        .map(|e| format!("{}/{}", e.topic(), e.partition()))
        .collect::<Vec<_>>()
        .join(",")
}

/// One member of a consumer group.
pub(super) struct KafkaSubscription {
    consumer: StreamConsumer<GroupContext>,
    topics: String,
    pending: Pending,
    last_commit: Instant,
    interval: Duration,
}

impl KafkaSubscription {
    pub(super) fn new(
        consumer: StreamConsumer<GroupContext>,
        topics: String,
        interval: Duration,
    ) -> Self {
        let pending = consumer.context().pending.clone();
        Self {
            consumer,
            topics,
            pending,
            last_commit: Instant::now(),
            interval,
        }
    }
}

/// Commits every pending offset; on failure they stay pending unless a
/// newer offset was handled meanwhile.
fn flush(
    consumer: &StreamConsumer<GroupContext>,
    pending: &Pending,
    mode: CommitMode,
) -> Result<(), BusError> {
    let entries = std::mem::take(&mut *lock(pending));
    if entries.is_empty() {
        return Ok(());
    }
    consumer.commit(&to_list(&entries), mode).map_err(|e| {
        let mut pending = lock(pending);
        for (key, next) in &entries {
            pending.entry(key.clone()).or_insert(*next);
        }
        BusError::Commit {
            topic: entries
                .keys()
                .map(|(t, _)| t.as_str())
                .next()
                .unwrap_or_default()
                .to_owned(),
            partition: -1,
            offset: -1,
            source: Box::new(e),
        }
    })
}

/// Keeps the log to a line per pause while a topic is missing.
const TRANSIENT_PAUSE: Duration = Duration::from_millis(500);

fn transient(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::UnknownPartition
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::PartitionEOF
        )
    )
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn next(&mut self) -> Result<InboundRecord, BusError> {
        let message = loop {
            match self.consumer.recv().await {
                Ok(message) => break message,
                Err(e) if transient(&e) => {
                    // A topic not created yet (a consumer started before its
                    // producer) or a broker restart: librdkafka keeps
                    // fetching, so the member waits instead of failing.
                    tracing::warn!(topics = %self.topics, error = %crate::report::Report(&e), "consume stalled, retrying");
                    tokio::time::sleep(TRANSIENT_PAUSE).await;
                }
                Err(e) => {
                    return Err(BusError::Consume {
                        topics: self.topics.clone(),
                        source: Box::new(e),
                    });
                }
            }
        };
        let headers = message
            .headers()
            .map(|hs| {
                hs.iter()
                    .filter_map(|h| {
                        let value = std::str::from_utf8(h.value?).ok()?;
                        Some((h.key.to_owned(), value.to_owned()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(InboundRecord {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec).unwrap_or_default(),
            payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            headers,
            timestamp_ms: message.timestamp().to_millis(),
        })
    }

    async fn commit(&mut self, record: &InboundRecord) -> Result<(), BusError> {
        {
            // Kafka commits name the next record to read.
            let mut pending = lock(&self.pending);
            let next = pending
                .entry((record.topic.clone(), record.partition))
                .or_insert(0);
            *next = (*next).max(record.offset + 1);
        }
        // Synchronous, from the consuming task, at most once per interval:
        // asynchronous commits racing a rebalance were seen to leave a
        // member that never returned its newly fetched records.
        if self.last_commit.elapsed() >= self.interval {
            self.last_commit = Instant::now();
            let commit = || flush(&self.consumer, &self.pending, CommitMode::Sync);
            // The commit waits for the broker: tell a multi-threaded runtime
            // so its other tasks move off this worker meanwhile.
            let flavor = tokio::runtime::Handle::current().runtime_flavor();
            let result = if flavor == tokio::runtime::RuntimeFlavor::MultiThread {
                tokio::task::block_in_place(commit)
            } else {
                commit()
            };
            if let Err(err) = result {
                // Kept pending; the worst case is redelivery.
                tracing::warn!(error = %crate::report::Report(&err), "offset commit failed");
            }
        }
        Ok(())
    }

    async fn close(self: Box<Self>) -> Result<(), BusError> {
        tokio::task::spawn_blocking(move || {
            let result = flush(&self.consumer, &self.pending, CommitMode::Sync);
            self.consumer.unsubscribe();
            result
        })
        .await
        .map_err(|e| BusError::Unavailable(Box::new(e)))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_topic_or_a_broker_hiccup_is_waited_out_other_errors_are_not() {
        let consume = KafkaError::MessageConsumption;
        assert!(transient(&consume(
            RDKafkaErrorCode::UnknownTopicOrPartition
        )));
        assert!(transient(&consume(RDKafkaErrorCode::AllBrokersDown)));
        assert!(transient(&consume(RDKafkaErrorCode::NotLeaderForPartition)));
        assert!(!transient(&consume(
            RDKafkaErrorCode::TopicAuthorizationFailed
        )));
        assert!(!transient(&consume(
            RDKafkaErrorCode::GroupAuthorizationFailed
        )));
        assert!(!transient(&KafkaError::Canceled));
    }
}
