//! The Kafka bus, on librdkafka through rdkafka.
//!
//! Producer: `acks=all` with idempotence, so "published" means durable on
//! every in-sync replica, and a bounded queue whose wait is the backpressure.
//! Consumer: an offset is committed only after the handler succeeded;
//! commits are batched per interval and made synchronously on close.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers as _, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::{
    BusError, Delivered, EventBus, Headers, InboundRecord, KafkaConfig, OutboundRecord,
    SubscribeOptions, Subscription,
};

/// Kafka [`EventBus`].
pub struct KafkaBus {
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    config: KafkaConfig,
    client_id: String,
}

impl KafkaBus {
    /// Creates the producer and admin clients (connections open lazily).
    pub fn new(config: &KafkaConfig, client_id: &str) -> Result<Self, BusError> {
        let mut producer_config = base_config(config, client_id);
        producer_config
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", config.message_timeout_ms.to_string())
            .set(
                "queue.buffering.max.messages",
                config.queue_max_messages.to_string(),
            )
            .set("linger.ms", config.linger_ms.to_string())
            .set("compression.type", &config.compression)
            // Java-compatible key hashing, so partner consumers agree on placement.
            .set("partitioner", "murmur2_random");
        apply_extra(&mut producer_config, config);
        let producer: FutureProducer = producer_config.create().map_err(unavailable)?;
        let admin: AdminClient<DefaultClientContext> = base_config(config, client_id)
            .create()
            .map_err(unavailable)?;
        Ok(Self {
            producer,
            admin,
            config: config.clone(),
            client_id: client_id.to_owned(),
        })
    }
}

fn unavailable(err: KafkaError) -> BusError {
    BusError::Unavailable(err.to_string())
}

fn base_config(config: &KafkaConfig, client_id: &str) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        .set("client.id", client_id)
        .set("security.protocol", &config.security_protocol);
    if !config.sasl_mechanism.is_empty() {
        client
            .set("sasl.mechanism", &config.sasl_mechanism)
            .set("sasl.username", &config.sasl_username)
            .set("sasl.password", config.sasl_password.expose());
    }
    if !config.ssl_ca_location.is_empty() {
        client.set("ssl.ca.location", &config.ssl_ca_location);
    }
    client
}

fn apply_extra(client: &mut ClientConfig, config: &KafkaConfig) {
    for (key, value) in &config.extra {
        client.set(key, value);
    }
}

fn to_kafka_headers(headers: &Headers) -> OwnedHeaders {
    headers.iter().fold(
        OwnedHeaders::new_with_capacity(headers.len()),
        |acc, (key, value)| {
            acc.insert(Header {
                key,
                value: Some(value.as_bytes()),
            })
        },
    )
}

#[async_trait]
impl EventBus for KafkaBus {
    async fn ensure_topic(&self, topic: &str, partitions: i32) -> Result<(), BusError> {
        let new_topic = NewTopic::new(
            topic,
            partitions,
            TopicReplication::Fixed(self.config.replication_factor),
        );
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = self
            .admin
            .create_topics([&new_topic], &options)
            .await
            .map_err(|e| BusError::Admin {
                topic: topic.to_owned(),
                reason: e.to_string(),
            })?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(BusError::Admin {
                        topic: topic.to_owned(),
                        reason: code.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    async fn publish(&self, topic: &str, record: OutboundRecord) -> Result<Delivered, BusError> {
        let headers = to_kafka_headers(&record.headers);
        let mut future_record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
            .payload(&record.payload[..])
            .headers(headers);
        if !record.key.is_empty() {
            future_record = future_record.key(&record.key[..]);
        }
        let queue_timeout = Duration::from_millis(u64::from(self.config.queue_timeout_ms));
        match self.producer.send(future_record, queue_timeout).await {
            Ok(delivery) => Ok(Delivered {
                topic: topic.to_owned(),
                partition: delivery.partition,
                offset: delivery.offset,
            }),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                Err(BusError::QueueFull {
                    topic: topic.to_owned(),
                })
            }
            Err((err, _)) => Err(BusError::Publish {
                topic: topic.to_owned(),
                reason: err.to_string(),
            }),
        }
    }

    async fn subscribe(
        &self,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, BusError> {
        let mut consumer_config = base_config(&self.config, &self.client_id);
        consumer_config
            .set("group.id", &options.group)
            // Commits are ours (see KafkaSubscription): librdkafka's
            // auto-commit was seen to commit past unhandled records when a
            // consumer closed.
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "session.timeout.ms",
                self.config.session_timeout_ms.to_string(),
            )
            .set(
                "fetch.wait.max.ms",
                self.config.fetch_wait_max_ms.to_string(),
            );
        apply_extra(&mut consumer_config, &self.config);
        let consumer: StreamConsumer<LoggingContext> = consumer_config
            .create_with_context(LoggingContext {
                group: options.group.clone(),
            })
            .map_err(unavailable)?;
        let topics: Vec<&str> = options.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(|e| BusError::Consume {
            topics: options.topics.join(","),
            reason: e.to_string(),
        })?;
        Ok(Box::new(KafkaSubscription {
            consumer,
            topics: options.topics.join(","),
            pending: HashMap::new(),
            last_commit: Instant::now(),
            interval: Duration::from_millis(u64::from(self.config.auto_commit_interval_ms)),
        }))
    }

    async fn check(&self) -> Result<(), BusError> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, Duration::from_secs(2))
                .map(|_| ())
        })
        .await
        .map_err(|e| BusError::Unavailable(e.to_string()))?
        .map_err(unavailable)
    }
}

/// Logs group rebalances; does nothing else (callbacks must not block).
struct LoggingContext {
    group: String,
}

impl ClientContext for LoggingContext {}

impl ConsumerContext for LoggingContext {
    fn post_rebalance(
        &self,
        _base: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &Rebalance<'_>,
    ) {
        match rebalance {
            Rebalance::Assign(list) => {
                tracing::info!(group = %self.group, partitions = %describe(list), "partitions assigned");
            }
            Rebalance::Revoke(list) => {
                tracing::info!(group = %self.group, partitions = %describe(list), "partitions revoked");
            }
            Rebalance::Error(err) => {
                tracing::warn!(group = %self.group, error = %err, "rebalance failed")
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

/// A group member. Handled offsets collect in `pending` and are committed
/// every `interval` (asynchronously, also when idle) and synchronously on
/// close; an abrupt end loses at most the last interval's commits, which
/// the next owner then redelivers.
struct KafkaSubscription {
    consumer: StreamConsumer<LoggingContext>,
    topics: String,
    pending: HashMap<(String, i32), i64>,
    last_commit: Instant,
    interval: Duration,
}

impl KafkaSubscription {
    fn flush(&mut self, mode: CommitMode) -> Result<(), BusError> {
        self.last_commit = Instant::now();
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut list = TopicPartitionList::new();
        for ((topic, partition), next) in &self.pending {
            list.add_partition_offset(topic, *partition, Offset::Offset(*next))
                .map_err(|e| BusError::Commit {
                    topic: topic.clone(),
                    partition: *partition,
                    offset: *next - 1,
                    reason: e.to_string(),
                })?;
        }
        self.consumer
            .commit(&list, mode)
            .map_err(|e| BusError::Commit {
                topic: self.topics.clone(),
                partition: -1,
                offset: -1,
                reason: e.to_string(),
            })?;
        self.pending.clear();
        Ok(())
    }

    fn flush_if_due(&mut self) {
        if self.last_commit.elapsed() >= self.interval
            && let Err(err) = self.flush(CommitMode::Async)
        {
            // Kept for the next attempt; the worst case is redelivery.
            tracing::warn!(error = %err, "offset commit failed");
        }
    }
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn next(&mut self) -> Result<InboundRecord, BusError> {
        let message = loop {
            match tokio::time::timeout(self.interval, self.consumer.recv()).await {
                Ok(received) => {
                    break received.map_err(|e| BusError::Consume {
                        topics: self.topics.clone(),
                        reason: e.to_string(),
                    })?;
                }
                // Idle: commit what was handled rather than wait for traffic.
                Err(_) => self.flush_if_due(),
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
        // Kafka commits name the next record to read.
        let next = self
            .pending
            .entry((record.topic.clone(), record.partition))
            .or_insert(0);
        *next = (*next).max(record.offset + 1);
        self.flush_if_due();
        Ok(())
    }

    async fn close(mut self: Box<Self>) -> Result<(), BusError> {
        tokio::task::spawn_blocking(move || {
            let result = self.flush(CommitMode::Sync);
            self.consumer.unsubscribe();
            result
        })
        .await
        .map_err(|e| BusError::Unavailable(e.to_string()))?
    }
}
