//! Proof that the bus keeps its contract on the real broker, in process
//! and in the SQLite file: 10,000 events over 3 partitions, a consumer
//! stopped abruptly half-way (for SQLite: with the whole bus, read back
//! from its file), a new one in the same group finishing the job — every
//! event handled at least once, none lost.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt as _;
use pushmail_common::backoff::Backoff;
use pushmail_common::bus::{
    EventBus, Handler, HandlerError, InboundRecord, OutboundRecord, SubscribeOptions, consume,
};
use pushmail_integration_tests::{kafka_bus, memory_bus, sqlite_bus, unique};
use tokio_util::sync::CancellationToken;

const EVENTS: u32 = 10_000;
const PARTITIONS: i32 = 3;

/// Records which event ids were handled, and how often in all.
#[derive(Default)]
struct Recorder {
    seen: Mutex<HashSet<u32>>,
    handled: AtomicUsize,
    fail_every: Option<usize>,
    /// Time each record takes, so a rebalance happens mid-stream.
    pace: Option<Duration>,
}

#[async_trait]
impl Handler for Recorder {
    async fn handle(&self, record: &InboundRecord) -> Result<(), HandlerError> {
        let n = self.handled.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(pace) = self.pace {
            tokio::time::sleep(pace).await;
        }
        // Transient failures must be retried, not skipped.
        if self.fail_every.is_some_and(|every| n.is_multiple_of(every)) {
            return Err(HandlerError::new("transient failure injected by the test"));
        }
        let bytes: [u8; 4] = record
            .payload
            .as_slice()
            .try_into()
            .map_err(|_| HandlerError::new("payload is not a u32"))?;
        self.seen.lock().unwrap().insert(u32::from_be_bytes(bytes));
        Ok(())
    }
}

impl Recorder {
    fn distinct(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

async fn publish_all(bus: &Arc<dyn EventBus>, topic: &str) {
    let results: Vec<_> = futures::stream::iter(0..EVENTS)
        .map(|i| {
            let bus = bus.clone();
            let topic = topic.to_owned();
            async move {
                let record = OutboundRecord {
                    key: format!("account-{}", i % 97).into_bytes(),
                    payload: i.to_be_bytes().to_vec(),
                    headers: Default::default(),
                };
                bus.publish(&topic, record).await
            }
        })
        .buffer_unordered(512)
        .collect()
        .await;
    let partitions: HashSet<i32> = results
        .iter()
        .map(|r| r.as_ref().expect("publish failed").partition)
        .collect();
    assert_eq!(
        partitions.len(),
        PARTITIONS as usize,
        "keys spread over every partition"
    );
}

async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until two members together handled every event; prints progress
/// every few seconds so a stalled run shows where it stalled.
async fn wait_for_all(first: &Recorder, second: &Recorder) {
    let started = std::time::Instant::now();
    let mut polls = 0u32;
    wait_until("every event", Duration::from_secs(180), || {
        polls += 1;
        let union = union(first, second);
        if polls.is_multiple_of(250) {
            eprintln!(
                "progress {:?}: first {} second {} union {union}",
                started.elapsed(),
                first.distinct(),
                second.distinct(),
            );
        }
        union == EVENTS as usize
    })
    .await;
}

fn union(first: &Recorder, second: &Recorder) -> usize {
    first
        .seen
        .lock()
        .unwrap()
        .union(&second.seen.lock().unwrap())
        .count()
}

/// A topic of its own with 3 partitions, and a group of its own to read it.
async fn fresh_topic(bus: &Arc<dyn EventBus>, prefix: &str) -> (String, SubscribeOptions) {
    let topic = unique(prefix);
    bus.ensure_topic(&topic, PARTITIONS)
        .await
        .expect("create topic");
    let options = SubscribeOptions {
        group: unique("group"),
        topics: vec![topic.clone()],
    };
    (topic, options)
}

/// The shared body: publish, consume half, stop abruptly, resume, check.
async fn survives_abrupt_consumer_stop(bus: Arc<dyn EventBus>) {
    survives_abrupt_stop(bus, None).await;
}

/// Reopens a bus from where the last one kept its records.
type Reopen = Box<dyn Fn() -> futures::future::BoxFuture<'static, Arc<dyn EventBus>>>;

/// Publish, consume half, stop the consumer abruptly (and with `reopen`,
/// drop the whole bus once every publish returned and open it again),
/// resume in the same group, check.
async fn survives_abrupt_stop(mut bus: Arc<dyn EventBus>, reopen: Option<Reopen>) {
    let (topic, options) = fresh_topic(&bus, "pushmail.test.bus").await;
    let retry = Backoff {
        initial: Duration::from_millis(5),
        max: Duration::from_millis(50),
    };

    let producer = {
        let bus = bus.clone();
        let topic = topic.clone();
        tokio::spawn(async move { publish_all(&bus, &topic).await })
    };

    // First consumer: stopped abruptly (task aborted, no close, no final
    // commit of its own) once about half the events were handled.
    let first = Arc::new(Recorder {
        fail_every: Some(997),
        ..Recorder::default()
    });
    let subscription = bus.subscribe(options.clone()).await.expect("subscribe");
    let task = {
        let first = first.clone();
        tokio::spawn(async move {
            consume(
                subscription,
                first.as_ref(),
                retry,
                CancellationToken::new(),
            )
            .await
        })
    };
    wait_until("half the events", Duration::from_secs(120), || {
        first.distinct() >= (EVENTS / 2) as usize
    })
    .await;
    task.abort();
    let _ = task.await;
    let handled_by_first = first.distinct();
    let producer = match reopen {
        Some(reopen) => {
            // Everything published is on disk; what the first member
            // handled but had not committed must come again.
            producer.await.expect("producer task");
            drop(bus);
            bus = reopen().await;
            None
        }
        None => Some(producer),
    };

    // Second consumer in the same group takes over every partition.
    let second = Arc::new(Recorder::default());
    let shutdown = CancellationToken::new();
    let subscription = bus.subscribe(options).await.expect("resubscribe");
    let task = {
        let second = second.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move { consume(subscription, second.as_ref(), retry, shutdown).await })
    };
    if let Some(producer) = producer {
        producer.await.expect("producer task");
    }
    wait_for_all(&first, &second).await;
    shutdown.cancel();
    task.await.expect("consumer task").expect("clean close");

    let redelivered = first.distinct() + second.distinct() - EVENTS as usize;
    eprintln!(
        "bus: {EVENTS} events, first consumer handled {handled_by_first} before its abrupt stop, \
         second handled {}, redelivered {redelivered}",
        second.distinct()
    );
    assert_eq!(union(&first, &second), EVENTS as usize, "no event lost");
    assert!(second.distinct() > 0, "the second consumer did the rest");
    assert!(
        second.distinct() < EVENTS as usize,
        "the second consumer resumed from the first one's commits, not from the start"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_bus_delivers_at_least_once_across_abrupt_stop() {
    // A broker of its own: group rebalances on the shared one slow down as
    // other tests fill it. Its records on disk, not in memory: tansu 0.6's
    // memory storage answers a fetch from inside a record batch with the
    // next batch, so a member resuming at a mid-batch commit skips records
    // (seen here: a plain consumer asking for offset 1918 got 2037 first;
    // the second member then never saw 41 records). Kafka returns the
    // batch holding the offset, as the sqlite storage does.
    let broker = pushmail_integration_tests::broker::PrivateBroker::start()
        .await
        .expect("private broker");
    survives_abrupt_consumer_stop(broker.bus("abrupt-stop").await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bus_delivers_at_least_once_across_abrupt_stop() {
    // Capacity below the event count: the producer must wait for the
    // consumers (backpressure) rather than buffer everything.
    survives_abrupt_consumer_stop(memory_bus(1_000)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_bus_delivers_at_least_once_across_abrupt_stop() {
    // Capacity below the event count, as for the memory bus.
    let dir = tempfile::tempdir().unwrap();
    survives_abrupt_consumer_stop(sqlite_bus(dir.path(), 1_000).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_bus_delivers_at_least_once_across_a_restart() {
    // The capacity holds every event: the producer finishes before the
    // bus is dropped, with the first member stopped half-way.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let reopen: Reopen = Box::new(move || {
        let path = path.clone();
        Box::pin(async move { sqlite_bus(&path, EVENTS as usize).await.unwrap() })
    });
    let bus = sqlite_bus(dir.path(), EVENTS as usize).await.unwrap();
    survives_abrupt_stop(bus, Some(reopen)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_publish_pushes_back_with_queue_full_instead_of_buffering() {
    use pushmail_common::bus::{BusError, KafkaBus};
    let config = pushmail_common::bus::KafkaConfig {
        queue_max_messages: 1,
        queue_timeout_ms: 0,
        linger_ms: 200,
        ..pushmail_integration_tests::kafka_config()
    };
    let bus = KafkaBus::new(&config, "queue-full-test").unwrap();
    let topic = unique("pushmail.test.full");
    bus.ensure_topic(&topic, 1).await.unwrap();
    let results: Vec<_> = futures::future::join_all((0..20).map(|i| {
        bus.publish(
            &topic,
            OutboundRecord {
                payload: vec![i],
                ..Default::default()
            },
        )
    }))
    .await;
    let full = results
        .iter()
        .filter(|r| matches!(r, Err(BusError::QueueFull { .. })))
        .count();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert!(full > 0, "a one-message queue must refuse: {results:?}");
    assert!(ok > 0, "what fits is published: {results:?}");
    assert_eq!(full + ok, 20, "no other outcome: {results:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_outage_is_an_error_not_a_hang() {
    use pushmail_common::bus::{BusError, KafkaBus};
    // A port nothing listens on stands for a broker that is down.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = pushmail_common::bus::KafkaConfig {
        brokers: closed.to_string(),
        message_timeout_ms: 1_500,
        ..pushmail_integration_tests::kafka_config()
    };
    let bus = KafkaBus::new(&config, "outage-test").unwrap();
    assert!(bus.check().await.is_err(), "readiness sees the outage");
    let started = std::time::Instant::now();
    let err = bus
        .publish(
            "pushmail.test.outage",
            OutboundRecord {
                payload: vec![1],
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, BusError::Publish { .. }), "{err}");
    assert!(
        err.to_string().contains("pushmail.test.outage"),
        "names the topic: {err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded by message_timeout_ms"
    );
}

/// A second member joins half-way (a rebalance moves partitions while
/// records are in flight); together they handle everything.
async fn survives_member_joining(bus: Arc<dyn EventBus>) {
    let (topic, options) = fresh_topic(&bus, "pushmail.test.join").await;
    let retry = Backoff::default();
    let shutdown = CancellationToken::new();
    let start_member = |recorder: Arc<Recorder>, subscription| {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { consume(subscription, recorder.as_ref(), retry, shutdown).await })
    };
    let paced = || Recorder {
        pace: Some(Duration::from_millis(1)),
        ..Recorder::default()
    };
    let first = Arc::new(paced());
    let a = start_member(first.clone(), bus.subscribe(options.clone()).await.unwrap());
    let producer = {
        let bus = bus.clone();
        let topic = topic.clone();
        tokio::spawn(async move { publish_all(&bus, &topic).await })
    };
    let mut polls = 0u32;
    wait_until("a third of the events", Duration::from_secs(120), || {
        polls += 1;
        if polls.is_multiple_of(250) {
            eprintln!("progress: first {}", first.distinct());
        }
        first.distinct() >= (EVENTS / 3) as usize
    })
    .await;
    let second = Arc::new(paced());
    let subscription = bus.subscribe(options).await.unwrap();
    let b = start_member(second.clone(), subscription);
    producer.await.unwrap();
    wait_for_all(&first, &second).await;
    shutdown.cancel();
    a.await.unwrap().expect("first member closes cleanly");
    b.await.unwrap().expect("second member closes cleanly");
    eprintln!(
        "join: first handled {}, second {}, union {}",
        first.distinct(),
        second.distinct(),
        union(&first, &second)
    );
    assert_eq!(
        union(&first, &second),
        EVENTS as usize,
        "no event lost across the rebalance"
    );
    // A rebalance that gave the newcomer nothing would pass the line
    // above with the first member alone: the join must share the work.
    assert!(
        second.distinct() > 0,
        "the member that joined handled nothing (first handled {})",
        first.distinct()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_bus_keeps_every_event_when_a_member_joins() {
    // The shared test broker keeps its records in sqlite: with tansu's
    // memory storage the new member skips records (see the abrupt-stop test).
    survives_member_joining(kafka_bus().await.expect("test broker")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bus_keeps_every_event_when_a_member_joins() {
    survives_member_joining(memory_bus(1_000)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_bus_keeps_every_event_when_a_member_joins() {
    let dir = tempfile::tempdir().unwrap();
    survives_member_joining(sqlite_bus(dir.path(), 1_000).await.unwrap()).await;
}
