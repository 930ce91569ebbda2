//! The Kafka bus, on librdkafka through rdkafka.
//!
//! Producer: `acks=all` with idempotence, so "published" means durable on
//! every in-sync replica, and a bounded queue whose wait is the backpressure.
//! Consumer: an offset is committed only after the handler succeeded;
//! commits are batched per interval and made synchronously on close.

use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use super::kafka_consumer::{GroupContext, KafkaSubscription};
use super::{
    BusError, Delivered, EventBus, Headers, KafkaConfig, OutboundRecord, SubscribeOptions,
    Subscription,
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
    BusError::Unavailable(Box::new(err))
}

fn base_config(config: &KafkaConfig, client_id: &str) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        .set("client.id", client_id)
        .set("security.protocol", &config.security_protocol)
        // librdkafka leaves Nagle on; a mail's 250 waits for its produce,
        // which must not wait for the previous segment's ACK.
        .set("socket.nagle.disable", "true");
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
                source: Box::new(e),
            })?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(BusError::Admin {
                        topic: topic.to_owned(),
                        source: Box::new(code),
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
                source: Box::new(err),
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
            // Commits are ours (see kafka_consumer). librdkafka must neither
            // commit nor *store* offsets: by default it stores the offset of
            // every message handed to the application, handled or not, and
            // commits those stored offsets when partitions are revoked —
            // which skipped unhandled records at every rebalance in our tests.
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
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
        let consumer: StreamConsumer<GroupContext> = consumer_config
            .create_with_context(GroupContext::new(&options.group))
            .map_err(unavailable)?;
        let topics: Vec<&str> = options.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(|e| BusError::Consume {
            topics: options.topics.join(","),
            source: Box::new(e),
        })?;
        let interval = Duration::from_millis(u64::from(self.config.auto_commit_interval_ms));
        Ok(Box::new(KafkaSubscription::new(
            consumer,
            options.topics.join(","),
            interval,
        )))
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
        .map_err(|e| BusError::Unavailable(Box::new(e)))?
        .map_err(unavailable)
    }
}
