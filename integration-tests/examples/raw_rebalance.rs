//! Diagnostic: the member-joins scenario with raw rdkafka and librdkafka's
//! defaults (auto-commit, auto offset store), no pushmail code, to tell a
//! broker or client behaviour from ours. Prints the counts. Against tansu
//! 0.6 with memory storage it loses records (a fetch from inside a batch
//! is answered with the next batch); with sqlite storage it does not.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a diagnostic that fails should stop loudly

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use pushmail_integration_tests::{kafka_bus, kafka_config, unique};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};

fn member(group: &str, topic: &str, seen: Arc<Mutex<HashSet<u32>>>) -> tokio::task::JoinHandle<()> {
    let config = kafka_config();
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("fetch.wait.max.ms", "10")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    tokio::spawn(async move {
        loop {
            let m = consumer.recv().await.unwrap();
            let id = u32::from_be_bytes(m.payload().unwrap().try_into().unwrap());
            seen.lock().unwrap().insert(id);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let topic = unique("pushmail.diag.rebalance");
    kafka_bus()
        .await
        .unwrap()
        .ensure_topic(&topic, 3)
        .await
        .unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka_config().brokers)
        .create()
        .unwrap();
    futures::stream::iter(0u32..10_000)
        .map(|i| {
            let producer = producer.clone();
            let topic = topic.clone();
            async move {
                let key = format!("k{}", i % 97);
                producer
                    .send(
                        FutureRecord::to(&topic)
                            .key(&key)
                            .payload(&i.to_be_bytes()[..]),
                        Duration::from_secs(5),
                    )
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(512)
        .for_each(|_| async {})
        .await;
    let group = unique("diag");
    let (a, b) = (
        Arc::new(Mutex::new(HashSet::new())),
        Arc::new(Mutex::new(HashSet::new())),
    );
    let _first = member(&group, &topic, a.clone());
    while a.lock().unwrap().len() < 3_000 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _second = member(&group, &topic, b.clone());
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(40) {
        let union = a.lock().unwrap().union(&b.lock().unwrap()).count();
        if union == 10_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (na, nb) = (a.lock().unwrap().len(), b.lock().unwrap().len());
    let union = a.lock().unwrap().union(&b.lock().unwrap()).count();
    println!(
        "raw rdkafka member-joins: first {na} second {nb} union {union} of 10000 after {:?}",
        start.elapsed()
    );
    std::process::exit(0);
}
