//! The in-process log both embedded buses share: partitioned records in
//! memory, consumer groups with their committed offsets, partition
//! assignment among a group's members, waking, and the backpressure bound.
//!
//! A partition keeps records until every group subscribed to its topic has
//! committed past them; when the slowest group is `records` records (or
//! `bytes` bytes) behind, publishers wait (and after `publish_timeout` fail
//! with `QueueFull`) instead of the log growing. A topic nobody subscribes
//! to keeps its newest `records` records, like Kafka retention.
//!
//! Publishing is two steps so a durable bus can write a record to disk
//! between them: [`Log::reserve`] waits for room and picks the partition,
//! [`Log::append`] makes the record visible to consumers. A journaled log
//! also notes which offsets and partition starts changed, for the durable
//! bus to write ([`Log::take_journal`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use super::{BusError, Delivered, Headers, InboundRecord, OutboundRecord, SubscribeOptions};
use crate::clock::now_ms;

/// `(topic, partition)`.
pub(super) type PartitionKey = (String, i32);

/// The bounds of a log.
#[derive(Debug, Clone)]
pub(super) struct Limits {
    /// Partitions of a topic made by its first publish.
    pub(super) partitions: i32,
    /// Records a partition holds beyond its slowest group.
    pub(super) records: usize,
    /// Bytes a partition holds beyond its slowest group.
    pub(super) bytes: usize,
    /// Longest a publish waits for room.
    pub(super) publish_timeout: Duration,
}

/// A record as the log keeps it.
#[derive(Debug, Clone)]
pub(super) struct Stored {
    pub(super) key: Vec<u8>,
    pub(super) payload: Vec<u8>,
    pub(super) headers: Headers,
    pub(super) timestamp_ms: i64,
}

impl Stored {
    /// A record stamped now.
    pub(super) fn new(record: OutboundRecord) -> Self {
        Self {
            key: record.key,
            payload: record.payload,
            headers: record.headers,
            timestamp_ms: now_ms(),
        }
    }

    /// What the record counts against the byte bound.
    pub(super) fn size(&self) -> usize {
        let headers: usize = self.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        self.key.len() + self.payload.len() + headers
    }
}

/// Room taken in a partition by a record not yet appended.
#[derive(Debug)]
pub(super) struct Reservation {
    pub(super) topic: String,
    pub(super) partition: i32,
    bytes: usize,
}

/// What changed since the last [`Log::take_journal`], with current values.
#[derive(Debug, Default)]
pub(super) struct Journal {
    /// `(group, topic, partition, committed offset)`.
    pub(super) offsets: Vec<(String, String, i32, i64)>,
    /// `(topic, partition, first offset kept)`: made or trimmed partitions.
    pub(super) starts: Vec<(String, i32, i64)>,
}

/// A log's state, as a durable bus rebuilds it on open.
#[derive(Default)]
pub(super) struct State {
    topics: HashMap<String, Vec<PartitionLog>>,
    groups: HashMap<String, Group>,
    next_member: u64,
    round_robin: u64,
    /// `Some` when a durable bus writes the changes.
    dirty: Option<Dirty>,
}

#[derive(Default)]
struct Dirty {
    offsets: HashSet<(String, PartitionKey)>,
    starts: HashSet<PartitionKey>,
}

#[derive(Default)]
struct PartitionLog {
    base: i64,
    records: VecDeque<Stored>,
    bytes: usize,
    reserved: usize,
    reserved_bytes: usize,
}

#[derive(Default)]
struct Group {
    committed: HashMap<PartitionKey, i64>,
    members: Vec<u64>,
    generation: u64,
}

impl PartitionLog {
    fn end(&self) -> i64 {
        self.base + self.records.len() as i64
    }

    /// Drops records below `floor`; whether anything was dropped.
    fn trim_below(&mut self, floor: i64) -> bool {
        let before = self.base;
        while self.base < floor {
            let Some(record) = self.records.pop_front() else {
                break;
            };
            self.bytes -= record.size();
            self.base += 1;
        }
        self.base != before
    }

    fn is_full(&self, floor: Option<i64>, size: usize, limits: &Limits) -> bool {
        let Some(floor) = floor else {
            return false;
        };
        let pending = self.end() + self.reserved as i64 - floor;
        // One record larger than the byte bound still passes an empty log.
        let bytes_full = pending > 0 && self.bytes + self.reserved_bytes + size > limits.bytes;
        pending >= limits.records as i64 || bytes_full
    }
}

impl State {
    /// A state whose changes are noted for [`Log::take_journal`].
    pub(super) fn journaled() -> Self {
        Self {
            dirty: Some(Dirty::default()),
            ..Self::default()
        }
    }

    /// Restores a partition from storage: records from `base` on.
    pub(super) fn restore_partition(
        &mut self,
        topic: &str,
        partition: i32,
        base: i64,
        records: impl IntoIterator<Item = Stored>,
    ) {
        let logs = self.topics.entry(topic.to_owned()).or_default();
        let index = usize::try_from(partition).unwrap_or(0);
        if logs.len() <= index {
            logs.resize_with(index + 1, PartitionLog::default);
        }
        let log = &mut logs[index];
        log.base = base;
        for record in records {
            log.bytes += record.size();
            log.records.push_back(record);
        }
    }

    /// Restores a group's committed offset from storage.
    pub(super) fn restore_offset(&mut self, group: &str, key: PartitionKey, offset: i64) {
        self.groups
            .entry(group.to_owned())
            .or_default()
            .committed
            .insert(key, offset);
    }

    fn topic(&mut self, name: &str, partitions: i32) -> &mut Vec<PartitionLog> {
        if !self.topics.contains_key(name) {
            let logs = (0..partitions.max(1))
                .map(|_| PartitionLog::default())
                .collect();
            self.topics.insert(name.to_owned(), logs);
            if let Some(dirty) = &mut self.dirty {
                for p in 0..partitions.max(1) {
                    dirty.starts.insert((name.to_owned(), p));
                }
            }
        }
        self.topics.entry(name.to_owned()).or_default()
    }

    fn partition(&mut self, key: &PartitionKey) -> Option<&mut PartitionLog> {
        self.topics
            .get_mut(&key.0)
            .and_then(|t| t.get_mut(usize::try_from(key.1).ok()?))
    }

    /// Lowest committed offset of any group reading `key`.
    fn floor(&self, key: &PartitionKey) -> Option<i64> {
        self.groups
            .values()
            .filter_map(|g| g.committed.get(key).copied())
            .min()
    }

    fn trim(&mut self, key: &PartitionKey, floor: i64) {
        let trimmed = self.partition(key).is_some_and(|log| log.trim_below(floor));
        if trimmed && let Some(dirty) = &mut self.dirty {
            dirty.starts.insert(key.clone());
        }
    }

    /// Appends a record whose room was reserved; returns its offset.
    fn push(&mut self, reservation: &Reservation, record: Stored, limits: &Limits) -> i64 {
        let key = (reservation.topic.clone(), reservation.partition);
        let floor = self.floor(&key);
        let Some(log) = self.partition(&key) else {
            return -1;
        };
        log.reserved = log.reserved.saturating_sub(1);
        log.reserved_bytes = log.reserved_bytes.saturating_sub(reservation.bytes);
        let offset = log.end();
        log.bytes += record.size();
        log.records.push_back(record);
        if floor.is_none() {
            // Nobody reads it: keep the newest records only.
            let mut keep = log.base;
            let mut bytes = log.bytes;
            let mut excess = log.records.len().saturating_sub(limits.records);
            for record in &log.records {
                if excess == 0 && bytes <= limits.bytes {
                    break;
                }
                bytes -= record.size();
                excess = excess.saturating_sub(1);
                keep += 1;
            }
            let keep = keep.min(offset);
            self.trim(&key, keep);
        }
        offset
    }
}

/// The shared log; clones of a bus share one.
pub(super) struct Log {
    state: Mutex<State>,
    // Bumped on every append, commit and membership change; waiters re-check.
    changed: watch::Sender<u64>,
    limits: Limits,
}

impl Log {
    /// A log over `state`.
    pub(super) fn new(limits: Limits, state: State) -> Arc<Self> {
        let (changed, _) = watch::channel(0);
        Arc::new(Self {
            state: Mutex::new(state),
            changed,
            limits,
        })
    }

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

    /// Creates `topic` with `partitions` partitions if it does not exist.
    pub(super) fn ensure_topic(&self, topic: &str, partitions: i32) -> Result<(), BusError> {
        if partitions < 1 {
            return Err(BusError::Partitions {
                topic: topic.to_owned(),
                partitions,
            });
        }
        self.lock().topic(topic, partitions);
        Ok(())
    }

    /// Waits until `topic` has room for `record` in the partition its key
    /// maps to, and takes that room.
    pub(super) async fn reserve(
        &self,
        topic: &str,
        record: &Stored,
    ) -> Result<Reservation, BusError> {
        let deadline = tokio::time::Instant::now() + self.limits.publish_timeout;
        let mut changed = self.changed.subscribe();
        let size = record.size();
        let partition = {
            let mut state = self.lock();
            let count = state.topic(topic, self.limits.partitions).len();
            let mut rr = state.round_robin;
            let partition = partition_for(&record.key, count, &mut rr);
            state.round_robin = rr;
            partition
        };
        let key = (topic.to_owned(), partition);
        loop {
            {
                let mut state = self.lock();
                let floor = state.floor(&key);
                if let Some(log) = state.partition(&key)
                    && !log.is_full(floor, size, &self.limits)
                {
                    log.reserved += 1;
                    log.reserved_bytes += size;
                    return Ok(Reservation {
                        topic: key.0,
                        partition,
                        bytes: size,
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

    /// Gives back the room of a record that will not be appended.
    pub(super) fn release(&self, reservation: &Reservation) {
        let key = (reservation.topic.clone(), reservation.partition);
        if let Some(log) = self.lock().partition(&key) {
            log.reserved = log.reserved.saturating_sub(1);
            log.reserved_bytes = log.reserved_bytes.saturating_sub(reservation.bytes);
        }
        self.bump();
    }

    /// The offsets `reservations` will get if appended in this order now.
    pub(super) fn next_offsets(&self, reservations: &[&Reservation]) -> Vec<i64> {
        let mut state = self.lock();
        let mut ahead: HashMap<PartitionKey, i64> = HashMap::new();
        reservations
            .iter()
            .map(|r| {
                let key = (r.topic.clone(), r.partition);
                let end = state.partition(&key).map_or(0, |log| log.end());
                let n = ahead.entry(key).or_default();
                *n += 1;
                end + *n - 1
            })
            .collect()
    }

    /// Makes records visible to consumers, in order; wakes them once.
    pub(super) fn append(
        &self,
        records: impl IntoIterator<Item = (Reservation, Stored)>,
    ) -> Vec<Delivered> {
        let delivered = {
            let mut state = self.lock();
            records
                .into_iter()
                .map(|(reservation, record)| {
                    let offset = state.push(&reservation, record, &self.limits);
                    Delivered {
                        topic: reservation.topic,
                        partition: reservation.partition,
                        offset,
                    }
                })
                .collect()
        };
        self.bump();
        delivered
    }

    /// The offsets and partition starts changed since the last call.
    pub(super) fn take_journal(&self) -> Journal {
        let mut state = self.lock();
        let Some(dirty) = state.dirty.as_mut().map(std::mem::take) else {
            return Journal::default();
        };
        let offsets = dirty
            .offsets
            .into_iter()
            .filter_map(|(group, key)| {
                let offset = *state.groups.get(&group)?.committed.get(&key)?;
                Some((group, key.0, key.1, offset))
            })
            .collect();
        let starts = dirty
            .starts
            .into_iter()
            .filter_map(|key| {
                let base = state.partition(&key)?.base;
                Some((key.0, key.1, base))
            })
            .collect();
        Journal { offsets, starts }
    }

    /// Puts back a journal that could not be written.
    pub(super) fn restore_journal(&self, journal: Journal) {
        let mut state = self.lock();
        if let Some(dirty) = &mut state.dirty {
            for (group, topic, partition, _) in journal.offsets {
                dirty.offsets.insert((group, (topic, partition)));
            }
            for (topic, partition, _) in journal.starts {
                dirty.starts.insert((topic, partition));
            }
        }
    }

    /// Joins `options.group`; a new group starts at the oldest record kept.
    pub(super) fn subscribe(self: &Arc<Self>, options: SubscribeOptions) -> LogSubscription {
        let member = {
            let mut guard = self.lock();
            let state = &mut *guard;
            let member = state.next_member;
            state.next_member += 1;
            let mut starts = Vec::new();
            for topic in &options.topics {
                for (p, log) in state
                    .topic(topic, self.limits.partitions)
                    .iter()
                    .enumerate()
                {
                    starts.push(((topic.clone(), p as i32), log.base));
                }
            }
            let group = state.groups.entry(options.group.clone()).or_default();
            for (key, base) in starts {
                if !group.committed.contains_key(&key) {
                    group.committed.insert(key.clone(), base);
                    if let Some(dirty) = &mut state.dirty {
                        dirty.offsets.insert((options.group.clone(), key));
                    }
                }
            }
            group.members.push(member);
            group.generation += 1;
            member
        };
        self.bump();
        LogSubscription {
            log: self.clone(),
            group: options.group,
            member,
            generation: 0,
            assigned: Vec::new(),
            positions: HashMap::new(),
            cursor: 0,
        }
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

/// One member of a group on a [`Log`].
pub(super) struct LogSubscription {
    log: Arc<Log>,
    group: String,
    member: u64,
    generation: u64,
    assigned: Vec<PartitionKey>,
    positions: HashMap<PartitionKey, i64>,
    cursor: usize,
}

impl LogSubscription {
    /// Takes the partitions `index mod members` of the group's sorted list,
    /// restarting each from the group's committed offset.
    fn rebalance(&mut self, state: &State) -> Result<(), BusError> {
        let group = state.groups.get(&self.group).ok_or(BusError::Closed)?;
        let index = group
            .members
            .iter()
            .position(|m| *m == self.member)
            .ok_or(BusError::Closed)?;
        let mut all: Vec<PartitionKey> = group.committed.keys().cloned().collect();
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

    /// Waits for the next record of the partitions assigned to this member.
    pub(super) async fn next(&mut self) -> Result<InboundRecord, BusError> {
        let mut changed = self.log.changed.subscribe();
        loop {
            {
                let log = self.log.clone();
                let state = log.lock();
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

    /// Moves the group's offset past `record` and trims what every group
    /// has committed.
    pub(super) fn commit(&mut self, record: &InboundRecord) -> Result<(), BusError> {
        {
            let mut guard = self.log.lock();
            let state = &mut *guard;
            let group = state.groups.get_mut(&self.group).ok_or(BusError::Closed)?;
            let key = (record.topic.clone(), record.partition);
            let committed = group.committed.entry(key.clone()).or_insert(0);
            if record.offset + 1 > *committed {
                *committed = record.offset + 1;
                if let Some(dirty) = &mut state.dirty {
                    dirty.offsets.insert((self.group.clone(), key.clone()));
                }
            }
            if let Some(floor) = state.floor(&key) {
                state.trim(&key, floor);
            }
        }
        self.log.bump();
        Ok(())
    }
}

impl Drop for LogSubscription {
    fn drop(&mut self) {
        {
            let mut state = self.log.lock();
            if let Some(group) = state.groups.get_mut(&self.group) {
                group.members.retain(|m| *m != self.member);
                group.generation += 1;
            }
        }
        self.log.bump();
    }
}
