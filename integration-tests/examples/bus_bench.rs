//! Event bus throughput, each measured against a baseline in the same run:
//! the in-process bus against a bounded tokio channel, the Kafka bus
//! against raw rdkafka with the same producer settings. Writes a Markdown
//! report to the path given as the first argument. Run by `make bench`.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark that fails should stop loudly

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt as _;
use pushmail_common::backoff::Backoff;
use pushmail_common::bus::{
    EventBus, Handler, HandlerError, InboundRecord, OutboundRecord, SubscribeOptions, consume,
};
use pushmail_integration_tests::{kafka_bus, kafka_config, memory_bus, unique};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const MEMORY_EVENTS: usize = 100_000;
const KAFKA_EVENTS: usize = 20_000;
const IN_FLIGHT: usize = 512;
const PAYLOAD: usize = 512;

struct Counter {
    target: usize,
    seen: std::sync::atomic::AtomicUsize,
    done: Notify,
}

#[async_trait]
impl Handler for Counter {
    async fn handle(&self, _record: &InboundRecord) -> Result<(), HandlerError> {
        let n = self.seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if n == self.target {
            self.done.notify_one();
        }
        Ok(())
    }
}

fn record(i: usize) -> OutboundRecord {
    OutboundRecord {
        key: format!("account-{}", i % 1000).into_bytes(),
        payload: vec![b'x'; PAYLOAD],
        headers: Default::default(),
    }
}

/// Publishes `n` records with `IN_FLIGHT` outstanding while one group member
/// consumes them; returns events per second end to end.
async fn bus_rate(bus: Arc<dyn EventBus>, n: usize) -> f64 {
    let topic = unique("pushmail.bench");
    bus.ensure_topic(&topic, 3).await.unwrap();
    let counter = Arc::new(Counter {
        target: n,
        seen: 0.into(),
        done: Notify::new(),
    });
    let shutdown = CancellationToken::new();
    let subscription = bus
        .subscribe(SubscribeOptions {
            group: unique("bench"),
            topics: vec![topic.clone()],
        })
        .await
        .unwrap();
    let consumer = {
        let counter = counter.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            consume(subscription, counter.as_ref(), Backoff::default(), shutdown).await
        })
    };
    bus.publish(&topic, record(0)).await.unwrap();
    while counter.seen.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let start = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let bus = bus.clone();
            let topic = topic.clone();
            async move { bus.publish(&topic, record(i)).await.unwrap() }
        })
        .buffer_unordered(IN_FLIGHT)
        .for_each(|_| async {})
        .await;
    counter.done.notified().await;
    let rate = n as f64 / start.elapsed().as_secs_f64();
    shutdown.cancel();
    consumer.await.unwrap().unwrap();
    rate
}

async fn channel_rate(n: usize) -> f64 {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<OutboundRecord>(1_000);
    let start = Instant::now();
    let consumer = tokio::spawn(async move {
        let mut seen = 0;
        while rx.recv().await.is_some() {
            seen += 1;
        }
        seen
    });
    for i in 0..n {
        tx.send(record(i)).await.unwrap();
    }
    drop(tx);
    assert_eq!(consumer.await.unwrap(), n);
    n as f64 / start.elapsed().as_secs_f64()
}

/// Raw rdkafka: the same producer settings and in-flight bound, and a
/// consumer that only counts.
async fn raw_kafka_rate(n: usize) -> f64 {
    let config = kafka_config();
    let topic = unique("pushmail.bench.raw");
    kafka_bus()
        .await
        .unwrap()
        .ensure_topic(&topic, 3)
        .await
        .unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", config.linger_ms.to_string())
        .set("partitioner", "murmur2_random")
        .create()
        .unwrap();
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", unique("bench-raw"))
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", config.session_timeout_ms.to_string())
        .set("fetch.wait.max.ms", config.fetch_wait_max_ms.to_string())
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let warm_up = record(0);
    producer
        .send(
            FutureRecord::to(&topic)
                .key(&warm_up.key)
                .payload(&warm_up.payload),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    consumer.recv().await.unwrap();
    let start = Instant::now();
    let counting = tokio::spawn(async move {
        for _ in 0..n {
            consumer.recv().await.unwrap();
        }
    });
    futures::stream::iter(0..n)
        .map(|i| {
            let producer = producer.clone();
            let topic = topic.clone();
            async move {
                let r = record(i);
                producer
                    .send(
                        FutureRecord::to(&topic).key(&r.key).payload(&r.payload),
                        Duration::from_secs(5),
                    )
                    .await
                    .unwrap()
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .for_each(|_| async {})
        .await;
    counting.await.unwrap();
    n as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "bench/reports/bus.md".to_owned());
    let rows = [
        (
            "in-process bus: publish + consume, events/s",
            bus_rate(memory_bus(10_000), MEMORY_EVENTS).await,
            "bounded tokio mpsc channel",
            channel_rate(MEMORY_EVENTS).await,
        ),
        (
            "Kafka bus (tansu): publish acks=all + group consume, events/s",
            bus_rate(kafka_bus().await.expect("broker"), KAFKA_EVENTS).await,
            "raw rdkafka, same settings",
            raw_kafka_rate(KAFKA_EVENTS).await,
        ),
    ];
    let mut report = String::from("# Event bus throughput\n\n");
    let _ = writeln!(
        report,
        "{MEMORY_EVENTS} in-process / {KAFKA_EVENTS} Kafka events of {PAYLOAD} B, {IN_FLIGHT} publishes in flight, 3 partitions, one consumer.\n"
    );
    report.push_str(pushmail_integration_tests::measure::TABLE_HEAD);
    for (metric, value, baseline, base_value) in rows {
        let _ = writeln!(
            report,
            "| {metric} | {value:.0} | {baseline} | {base_value:.0} | {:.2} | none set |",
            value / base_value
        );
    }
    std::fs::write(&out, &report).unwrap();
    print!("{report}");
}
