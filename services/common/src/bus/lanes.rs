//! The consume loop with records handled concurrently: each record goes to
//! a lane by its key (one key, one lane: per-key order holds), lanes run
//! side by side, and a partition's offset is committed only up to the
//! oldest record still in a lane, so a crash redelivers what was not done.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash as _, Hasher as _};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::consumer::{Handler, METRIC_CONSUMED, handle_with_retry};
use super::{BusError, InboundRecord, Subscription};
use crate::backoff::Backoff;

/// Records waiting per lane.
const LANE_QUEUE: usize = 16;

/// Handled records of one lane whose tails are still running; past it the
/// lane waits (backpressure when the broker is slow to ack).
const TAILS_PER_LANE: usize = 64;

/// Records of one partition by offset: `None` while in a lane.
type InFlight = BTreeMap<i64, Option<InboundRecord>>;

/// Records a lane finished (`true`) or gave up on at shutdown (`false`).
type Done = (InboundRecord, bool);

/// Runs `handler` over `subscription` with `lanes` records in flight at
/// most, until `shutdown`; then finishes what the lanes hold (a record
/// waiting for a retry is left uncommitted) and leaves the group.
pub async fn consume_concurrently<H: Handler + 'static>(
    mut subscription: Box<dyn Subscription>,
    handler: Arc<H>,
    lanes: usize,
    retry: Backoff,
    shutdown: CancellationToken,
) -> Result<(), BusError> {
    let lanes = lanes.max(1);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let mut senders = Vec::with_capacity(lanes);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..lanes {
        // A few records wait per lane; past that the reader stops (so one
        // slow key holds back others only once its lane is full).
        let (tx, mut rx) = mpsc::channel::<InboundRecord>(LANE_QUEUE);
        senders.push(tx);
        let handler = handler.clone();
        let done = done_tx.clone();
        let shutdown = shutdown.clone();
        let tails = Arc::new(tokio::sync::Semaphore::new(TAILS_PER_LANE));
        workers.spawn(async move {
            while let Some(record) = rx.recv().await {
                match handle_with_retry(&record, handler.as_ref(), retry, &shutdown).await {
                    None => {
                        let _ = done.send((record, false));
                        return;
                    }
                    Some(None) => {
                        if done.send((record, true)).is_err() {
                            return;
                        }
                    }
                    Some(Some(tail)) => {
                        let Ok(slot) = tails.clone().acquire_owned().await else {
                            return;
                        };
                        let done = done.clone();
                        // The record counts as done (and may be committed)
                        // only when its tail is.
                        tokio::spawn(async move {
                            tail.await;
                            drop(slot);
                            let _ = done.send((record, true));
                        });
                    }
                }
            }
        });
    }
    drop(done_tx);
    let mut in_flight: HashMap<(String, i32), InFlight> = HashMap::new();
    loop {
        tokio::select! {
            biased;
            Some(done) = done_rx.recv() => finish(&mut *subscription, &mut in_flight, done).await,
            () = shutdown.cancelled() => break,
            next = subscription.next() => match next {
                Ok(record) => {
                    in_flight
                        .entry((record.topic.clone(), record.partition))
                        .or_default()
                        .insert(record.offset, None);
                    let lane = lane_of(&record.key, lanes);
                    // Waiting here is the backpressure: the lane is busy.
                    tokio::select! {
                        sent = senders[lane].send(record) => if sent.is_err() { break },
                        () = shutdown.cancelled() => break,
                    }
                }
                Err(BusError::Closed) => break,
                Err(err) => {
                    tracing::warn!(error = %crate::report::Report(&err), "bus receive failed; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(retry.initial) => {}
                    }
                }
            },
        }
    }
    // Lanes finish their current record; queued ones are left for the next owner.
    drop(senders);
    while let Some(done) = done_rx.recv().await {
        finish(&mut *subscription, &mut in_flight, done).await;
    }
    while workers.join_next().await.is_some() {}
    subscription.close().await
}

fn lane_of(key: &[u8], lanes: usize) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    usize::try_from(hasher.finish() % lanes as u64).unwrap_or(0)
}

/// Marks a record done and commits the partition's finished prefix.
async fn finish(
    subscription: &mut dyn Subscription,
    in_flight: &mut HashMap<(String, i32), InFlight>,
    (record, handled): Done,
) {
    if !handled {
        return;
    }
    metrics::counter!(METRIC_CONSUMED, "topic" => record.topic.clone()).increment(1);
    let partition = (record.topic.clone(), record.partition);
    let Some(offsets) = in_flight.get_mut(&partition) else {
        return;
    };
    offsets.insert(record.offset, Some(record));
    let mut last = None;
    while let Some(entry) = offsets.first_entry() {
        if entry.get().is_none() {
            break;
        }
        last = entry.remove();
    }
    if let Some(last) = last
        && let Err(err) = subscription.commit(&last).await
    {
        // The partition moved to another member: it will redeliver.
        tracing::warn!(error = %crate::report::Report(&err), "commit failed; records will be redelivered");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use async_trait::async_trait;

    use super::*;
    use crate::bus::consumer::HandlerError;
    use crate::bus::{EventBus, MemoryBus, MemoryBusConfig, OutboundRecord, SubscribeOptions};

    /// Sleeps longer for key "slow"; records the order per key.
    #[derive(Default)]
    struct Recorder {
        seen: Mutex<Vec<(Vec<u8>, i64)>>,
    }

    #[async_trait]
    impl Handler for Recorder {
        async fn handle(&self, record: &InboundRecord) -> Result<(), HandlerError> {
            let wait = if record.key == b"slow" { 20 } else { 1 };
            tokio::time::sleep(Duration::from_millis(wait)).await;
            self.seen
                .lock()
                .unwrap()
                .push((record.key.clone(), record.offset));
            Ok(())
        }
    }

    #[tokio::test]
    async fn keys_keep_their_order_while_other_keys_overtake() {
        let bus = MemoryBus::new(&MemoryBusConfig {
            partitions: 1,
            ..Default::default()
        });
        bus.ensure_topic("t", 1).await.unwrap();
        for i in 0..20u8 {
            let key = if i % 2 == 0 {
                b"slow".to_vec()
            } else {
                vec![b'k', i]
            };
            let record = OutboundRecord {
                key,
                payload: vec![i],
                headers: Default::default(),
            };
            bus.publish("t", record).await.unwrap();
        }
        let subscription = bus
            .subscribe(SubscribeOptions {
                group: "g".into(),
                topics: vec!["t".into()],
            })
            .await
            .unwrap();
        let recorder = Arc::new(Recorder::default());
        let shutdown = CancellationToken::new();
        let run = tokio::spawn(consume_concurrently(
            subscription,
            recorder.clone(),
            8,
            Backoff::default(),
            shutdown.clone(),
        ));
        while recorder.seen.lock().unwrap().len() < 20 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        shutdown.cancel();
        run.await.unwrap().unwrap();
        let seen = recorder.seen.lock().unwrap().clone();
        let slow: Vec<i64> = seen
            .iter()
            .filter(|(k, _)| k == b"slow")
            .map(|(_, o)| *o)
            .collect();
        assert!(
            slow.windows(2).all(|w| w[0] < w[1]),
            "one key in order: {slow:?}"
        );
        // Ten slow records take 200 ms in their lane; the others pass them.
        let last_fast = seen.iter().rposition(|(k, _)| k != b"slow").unwrap();
        let fifth_slow = seen
            .iter()
            .enumerate()
            .filter(|(_, (k, _))| k == b"slow")
            .nth(4)
            .unwrap()
            .0;
        assert!(
            last_fast < fifth_slow,
            "other keys overtook the slow one: {seen:?}"
        );

        // Everything was committed: a new member of the group gets nothing.
        let mut again = bus
            .subscribe(SubscribeOptions {
                group: "g".into(),
                topics: vec!["t".into()],
            })
            .await
            .unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(100), again.next())
                .await
                .is_err()
        );
    }

    /// Two records of one key, then nothing; commits are recorded.
    struct Scripted {
        records: Vec<InboundRecord>,
        commits: Arc<Mutex<Vec<i64>>>,
    }

    #[async_trait]
    impl Subscription for Scripted {
        async fn next(&mut self) -> Result<InboundRecord, BusError> {
            match self.records.pop() {
                Some(record) => Ok(record),
                None => std::future::pending().await,
            }
        }

        async fn commit(&mut self, record: &InboundRecord) -> Result<(), BusError> {
            self.commits.lock().unwrap().push(record.offset);
            Ok(())
        }

        async fn close(self: Box<Self>) -> Result<(), BusError> {
            Ok(())
        }
    }

    /// Record 0's tail waits for `gate`; every record is logged when handled.
    struct Gated {
        gate: Arc<tokio::sync::Notify>,
        handled: Mutex<Vec<i64>>,
    }

    #[async_trait]
    impl Handler for Gated {
        async fn handle(&self, _record: &InboundRecord) -> Result<(), HandlerError> {
            Ok(())
        }

        async fn handle_pipelined(
            &self,
            record: &InboundRecord,
        ) -> Result<Option<crate::bus::Tail>, HandlerError> {
            self.handled.lock().unwrap().push(record.offset);
            if record.offset != 0 {
                return Ok(None);
            }
            let gate = self.gate.clone();
            Ok(Some(Box::pin(async move { gate.notified().await })))
        }
    }

    #[tokio::test]
    async fn the_next_record_goes_ahead_but_nothing_is_committed_before_the_tail_is_done() {
        let record = |offset| InboundRecord {
            topic: "t".into(),
            partition: 0,
            offset,
            key: b"one-key".to_vec(),
            payload: Vec::new(),
            headers: Default::default(),
            timestamp_ms: None,
        };
        let commits = Arc::new(Mutex::new(Vec::new()));
        let subscription = Box::new(Scripted {
            records: vec![record(1), record(0)],
            commits: commits.clone(),
        });
        let handler = Arc::new(Gated {
            gate: Arc::new(tokio::sync::Notify::new()),
            handled: Mutex::default(),
        });
        let shutdown = CancellationToken::new();
        let run = tokio::spawn(consume_concurrently(
            subscription,
            handler.clone(),
            4,
            Backoff::default(),
            shutdown.clone(),
        ));
        while handler.handled.lock().unwrap().len() < 2 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // Record 1 was handled while record 0's tail runs: nothing committed.
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(commits.lock().unwrap().is_empty());
        handler.gate.notify_one();
        while commits.lock().unwrap().last() != Some(&1) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        shutdown.cancel();
        run.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn only_the_finished_prefix_is_committed() {
        let mut in_flight: HashMap<(String, i32), InFlight> = HashMap::new();
        let record = |offset| InboundRecord {
            topic: "t".into(),
            partition: 0,
            offset,
            key: Vec::new(),
            payload: Vec::new(),
            headers: Default::default(),
            timestamp_ms: None,
        };
        let offsets = in_flight.entry(("t".into(), 0)).or_default();
        for o in 0..3 {
            offsets.insert(o, None);
        }
        let bus = MemoryBus::new(&MemoryBusConfig::default());
        bus.ensure_topic("t", 1).await.unwrap();
        let mut subscription = bus
            .subscribe(SubscribeOptions {
                group: "g".into(),
                topics: vec!["t".into()],
            })
            .await
            .unwrap();
        // 1 and 2 finish first: nothing can be committed past 0.
        finish(&mut *subscription, &mut in_flight, (record(2), true)).await;
        finish(&mut *subscription, &mut in_flight, (record(1), true)).await;
        assert_eq!(in_flight[&("t".to_owned(), 0)].len(), 3);
        finish(&mut *subscription, &mut in_flight, (record(0), true)).await;
        assert!(
            in_flight[&("t".to_owned(), 0)].is_empty(),
            "0..=2 committed together"
        );
    }
}
