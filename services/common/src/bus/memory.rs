//! The in-process bus: partitioned logs in memory with consumer groups.
//!
//! A partition keeps records until every group subscribed to its topic has
//! committed past them; when the slowest group is `partition_capacity`
//! records behind, publishers wait (and after `publish_timeout_ms` fail
//! with `QueueFull`) instead of the log growing. A topic nobody subscribes
//! to keeps its newest `partition_capacity` records, like Kafka retention.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::sync::watch;

use super::{
    BusError, Delivered, EventBus, Headers, InboundRecord, MemoryBusConfig, OutboundRecord,
    SubscribeOptions, Subscription,
};

/// In-process [`EventBus`]; clones share the same logs.
#[derive(Clone)]
pub struct MemoryBus {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    // Bumped on every append, commit and membership change; waiters re-check.
    changed: watch::Sender<u64>,
    config: MemoryBusConfig,
}

#[derive(Default)]
struct State {
    topics: HashMap<String, Vec<PartitionLog>>,
    groups: HashMap<String, Group>,
    next_member: u64,
    round_robin: u64,
}

#[derive(Default)]
struct PartitionLog {
    base: i64,
    records: VecDeque<Stored>,
}

struct Stored {
    key: Vec<u8>,
    payload: Vec<u8>,
    headers: Headers,
    timestamp_ms: i64,
}

struct Group {
    committed: HashMap<(String, i32), i64>,
    members: Vec<u64>,
    generation: u64,
}

impl PartitionLog {
    fn end(&self) -> i64 {
        self.base + self.records.len() as i64
    }

    fn trim_below(&mut self, floor: i64) {
        while self.base < floor && self.records.pop_front().is_some() {
            self.base += 1;
        }
    }
}

impl State {
    fn topic(&mut self, name: &str, partitions: i32) -> &mut Vec<PartitionLog> {
        self.topics.entry(name.to_owned()).or_insert_with(|| {
            (0..partitions.max(1))
                .map(|_| PartitionLog::default())
                .collect()
        })
    }

    /// Lowest committed offset of any group reading `topic`/`partition`.
    fn floor(&self, topic: &str, partition: i32) -> Option<i64> {
        let key = (topic.to_owned(), partition);
        self.groups
            .values()
            .filter_map(|g| g.committed.get(&key).copied())
            .min()
    }

    fn trim(&mut self, topic: &str, partition: i32) {
        if let Some(floor) = self.floor(topic, partition)
            && let Some(log) = self
                .topics
                .get_mut(topic)
                .and_then(|t| t.get_mut(partition as usize))
        {
            log.trim_below(floor);
        }
    }
}

impl MemoryBus {
    /// An empty bus.
    pub fn new(config: &MemoryBusConfig) -> Self {
        let (changed, _) = watch::channel(0);
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                changed,
                config: config.clone(),
            }),
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every
        // mutation is a single step), so poisoning is not a reason to stop.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }
}

fn partition_for(key: &[u8], partitions: usize, round_robin: &mut u64) -> i32 {
    if key.is_empty() {
        *round_robin = round_robin.wrapping_add(1);
        return (*round_robin % partitions as u64) as i32;
    }
    // FNV-1a: stable, so one key always lands on one partition.
    let hash = key.iter().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    });
    (hash as usize % partitions) as i32
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[async_trait]
impl EventBus for MemoryBus {
    async fn ensure_topic(&self, topic: &str, partitions: i32) -> Result<(), BusError> {
        if partitions < 1 {
            return Err(BusError::Admin {
                topic: topic.to_owned(),
                reason: "partitions must be positive".to_owned(),
            });
        }
        self.inner.lock().topic(topic, partitions);
        Ok(())
    }

    async fn publish(&self, topic: &str, record: OutboundRecord) -> Result<Delivered, BusError> {
        let capacity = self.inner.config.partition_capacity as i64;
        let deadline = tokio::time::Instant::now()
            + Duration::from_millis(self.inner.config.publish_timeout_ms);
        let mut changed = self.inner.changed.subscribe();
        let partition = {
            let mut state = self.inner.lock();
            let count = state.topic(topic, self.inner.config.partitions).len();
            let mut rr = state.round_robin;
            let partition = partition_for(&record.key, count, &mut rr);
            state.round_robin = rr;
            partition
        };
        let mut record = Some(record);
        loop {
            {
                let mut state = self.inner.lock();
                let floor = state.floor(topic, partition);
                let log = &mut state.topic(topic, self.inner.config.partitions)[partition as usize];
                let full = floor.is_some_and(|f| log.end() - f >= capacity);
                if !full {
                    let Some(record) = record.take() else {
                        return Err(BusError::Closed);
                    };
                    let offset = log.end();
                    log.records.push_back(Stored {
                        key: record.key,
                        payload: record.payload,
                        headers: record.headers,
                        timestamp_ms: now_ms(),
                    });
                    if floor.is_none() && log.records.len() as i64 > capacity {
                        let end = log.end();
                        log.trim_below(end - capacity);
                    }
                    drop(state);
                    self.inner.bump();
                    return Ok(Delivered {
                        topic: topic.to_owned(),
                        partition,
                        offset,
                    });
                }
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => {
                    return Err(BusError::QueueFull {
                        topic: topic.to_owned(),
                    });
                }
            }
        }
    }

    async fn subscribe(
        &self,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, BusError> {
        let member = {
            let mut state = self.inner.lock();
            let member = state.next_member;
            state.next_member += 1;
            let mut starts = Vec::new();
            for topic in &options.topics {
                for (p, log) in state
                    .topic(topic, self.inner.config.partitions)
                    .iter()
                    .enumerate()
                {
                    starts.push(((topic.clone(), p as i32), log.base));
                }
            }
            let group = state
                .groups
                .entry(options.group.clone())
                .or_insert_with(|| Group {
                    committed: HashMap::new(),
                    members: Vec::new(),
                    generation: 0,
                });
            for (key, base) in starts {
                group.committed.entry(key).or_insert(base);
            }
            group.members.push(member);
            group.generation += 1;
            member
        };
        self.inner.bump();
        Ok(Box::new(MemorySubscription {
            inner: self.inner.clone(),
            group: options.group,
            member,
            generation: 0,
            assigned: Vec::new(),
            positions: HashMap::new(),
            cursor: 0,
        }))
    }

    async fn check(&self) -> Result<(), BusError> {
        Ok(())
    }
}

struct MemorySubscription {
    inner: Arc<Inner>,
    group: String,
    member: u64,
    generation: u64,
    assigned: Vec<(String, i32)>,
    positions: HashMap<(String, i32), i64>,
    cursor: usize,
}

impl MemorySubscription {
    /// Takes the partitions `index mod members` of the group's sorted list,
    /// restarting each from the group's committed offset.
    fn rebalance(&mut self, state: &State) -> Result<(), BusError> {
        let group = state.groups.get(&self.group).ok_or(BusError::Closed)?;
        let index = group
            .members
            .iter()
            .position(|m| *m == self.member)
            .ok_or(BusError::Closed)?;
        let mut all: Vec<(String, i32)> = group.committed.keys().cloned().collect();
        all.sort();
        let members = group.members.len();
        self.assigned = all
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % members == index)
            .map(|(_, k)| k)
            .collect();
        self.positions = self
            .assigned
            .iter()
            .map(|k| (k.clone(), group.committed[k]))
            .collect();
        self.generation = group.generation;
        self.cursor = 0;
        Ok(())
    }

    fn take_next(&mut self, state: &State) -> Option<InboundRecord> {
        let n = self.assigned.len();
        for step in 0..n {
            let slot = (self.cursor + step) % n;
            let key = &self.assigned[slot];
            let log = state.topics.get(&key.0)?.get(key.1 as usize)?;
            let position = self
                .positions
                .get(key)
                .copied()
                .unwrap_or(log.base)
                .max(log.base);
            if position < log.end() {
                let stored = &log.records[(position - log.base) as usize];
                let record = InboundRecord {
                    topic: key.0.clone(),
                    partition: key.1,
                    offset: position,
                    key: stored.key.clone(),
                    payload: stored.payload.clone(),
                    headers: stored.headers.clone(),
                    timestamp_ms: Some(stored.timestamp_ms),
                };
                self.positions.insert(key.clone(), position + 1);
                self.cursor = (slot + 1) % n;
                return Some(record);
            }
        }
        None
    }
}

#[async_trait]
impl Subscription for MemorySubscription {
    async fn next(&mut self) -> Result<InboundRecord, BusError> {
        let mut changed = self.inner.changed.subscribe();
        loop {
            {
                let inner = self.inner.clone();
                let state = inner.lock();
                let generation = state.groups.get(&self.group).map(|g| g.generation);
                if generation != Some(self.generation) {
                    self.rebalance(&state)?;
                }
                if let Some(record) = self.take_next(&state) {
                    return Ok(record);
                }
            }
            changed.changed().await.map_err(|_| BusError::Closed)?;
        }
    }

    async fn commit(&mut self, record: &InboundRecord) -> Result<(), BusError> {
        {
            let mut state = self.inner.lock();
            let group = state.groups.get_mut(&self.group).ok_or(BusError::Closed)?;
            let committed = group
                .committed
                .entry((record.topic.clone(), record.partition))
                .or_insert(0);
            *committed = (*committed).max(record.offset + 1);
            state.trim(&record.topic, record.partition);
        }
        self.inner.bump();
        Ok(())
    }

    async fn close(self: Box<Self>) -> Result<(), BusError> {
        Ok(())
    }
}

impl Drop for MemorySubscription {
    fn drop(&mut self) {
        {
            let mut state = self.inner.lock();
            if let Some(group) = state.groups.get_mut(&self.group) {
                group.members.retain(|m| *m != self.member);
                group.generation += 1;
            }
        }
        self.inner.bump();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
