//! The outbox in Redis: per device a stream (entry id `<seq>-0`, fields
//! `n` the notification, `k` the count), a hash of the generation and
//! counters (`gen`, `seq`, `acked`, `lost`), a sorted set of idempotency
//! keys by sequence and a hash of collapse keys. The four keys share a hash
//! tag, so each script touches one cluster slot, and all expire together
//! `ttl_seconds` after the last append or read.
//!
//! The generation is written by whichever script finds no outbox: the
//! client draws a candidate per call (Lua's random numbers are not random
//! in Redis). A hash with sequences but no stream lost its stream (evicted,
//! deleted): it starts over too, since the entries went with it.

use async_trait::async_trait;
use prost::Message as _;
use pushmail_proto::session::v1::Notification;
use redis::aio::ConnectionManager;

use super::{
    Acked, AppendState, Appended, Cursor, Outbox, OutboxError, OutboxSettings, Replay,
    new_generation, replayed, stored,
};

/// Defines `generation(candidate)` for the scripts below (KEYS as theirs):
/// the outbox's generation, `candidate` for an outbox created (or found
/// lost) now; one from before generations adopts it and keeps its entries.
const GENERATION: &str = r"
local function generation(candidate)
  local meta = redis.call('HMGET', KEYS[2], 'gen', 'seq')
  local whole = tonumber(meta[2] or '0') == 0 or redis.call('EXISTS', KEYS[1]) == 1
  if meta[1] and whole then return meta[1] end
  if not (whole and redis.call('EXISTS', KEYS[2]) == 1) then
    redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
  end
  redis.call('HSET', KEYS[2], 'gen', candidate)
  return candidate
end
";

/// KEYS: stream, meta, keys, collapse.
/// ARGV: idempotency key, collapse key, payload, now ms, window ms, cap,
/// ttl ms, keys remembered, candidate generation.
/// Returns {seq, state (0 new, 1 pending, 2 acked), count, generation}.
const APPEND: &str = r"
local gen = generation(ARGV[9])
local acked = tonumber(redis.call('HGET', KEYS[2], 'acked') or '0')
if ARGV[1] ~= '' then
  local known = redis.call('ZSCORE', KEYS[3], ARGV[1])
  if known then
    local seq = tonumber(known)
    if seq <= acked then return {seq, 2, 1, gen} end
    local entry = redis.call('XRANGE', KEYS[1], seq .. '-0', seq .. '-0')
    local count = 1
    if entry[1] then count = tonumber(entry[1][2][4]) end
    return {seq, 1, count, gen}
  end
end
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
local now = tonumber(ARGV[4])
local count = 1
local first = now
if ARGV[2] ~= '' then
  local previous = redis.call('HGET', KEYS[4], ARGV[2])
  if previous then
    local pseq, pfirst, pcount = string.match(previous, '^(%d+):(%d+):(%d+)$')
    if pseq and now - tonumber(pfirst) <= tonumber(ARGV[5])
       and redis.call('XDEL', KEYS[1], pseq .. '-0') == 1 then
      count = tonumber(pcount) + 1
      first = tonumber(pfirst)
    end
  end
  redis.call('HSET', KEYS[4], ARGV[2], seq .. ':' .. first .. ':' .. count)
end
local cap = tonumber(ARGV[6])
local excess = redis.call('XLEN', KEYS[1]) - cap + 1
if excess > 0 then
  local dropped = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', excess)
  local lost = tonumber(string.match(dropped[#dropped][1], '^(%d+)'))
  redis.call('XTRIM', KEYS[1], 'MINID', (lost + 1) .. '-0')
  if lost > tonumber(redis.call('HGET', KEYS[2], 'lost') or '0') then
    redis.call('HSET', KEYS[2], 'lost', lost)
  end
end
redis.call('XADD', KEYS[1], seq .. '-0', 'n', ARGV[3], 'k', count)
if ARGV[1] ~= '' then
  redis.call('ZADD', KEYS[3], seq, ARGV[1])
  local remembered = tonumber(ARGV[8])
  if redis.call('ZCARD', KEYS[3]) > remembered then
    redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -remembered - 1)
  end
end
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[7]) end
return {seq, 0, count, gen}
";

/// KEYS: stream, meta, keys, collapse.
/// ARGV: cursor generation ('0': none), cursor sequence, limit, candidate
/// generation, ttl ms. Returns {generation, from, resync (0/1), entries};
/// `super::resume` is the same decision in Rust.
const AFTER: &str = r"
local gen = generation(ARGV[4])
local meta = redis.call('HMGET', KEYS[2], 'seq', 'acked', 'lost')
local seq = tonumber(meta[1] or '0')
local acked = tonumber(meta[2] or '0')
local lost = tonumber(meta[3] or '0')
local cursor = tonumber(ARGV[2])
local kept = ARGV[1] == gen and cursor <= seq
local from = 0
if kept then from = cursor end
local stale = not kept
if ARGV[1] == '0' then stale = cursor > seq end
local resync = 0
if stale or lost > math.max(from, acked) then resync = 1 end
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[5]) end
local entries = redis.call('XRANGE', KEYS[1], (from + 1) .. '-0', '+', 'COUNT', ARGV[3])
return {gen, from, resync, entries}
";

/// KEYS: stream, meta. ARGV: generation ('0': the current one), through.
/// Returns {generation, entries trimmed}, or nil when the ack does not
/// apply (a lost stream ends the generation, as `generation` says).
const ACKED: &str = r"
local meta = redis.call('HMGET', KEYS[2], 'gen', 'seq', 'acked')
if not meta[1] or (ARGV[1] ~= '0' and ARGV[1] ~= meta[1]) then return false end
local seq = tonumber(meta[2] or '0')
local through = tonumber(ARGV[2])
if through > seq then return false end
if seq > 0 and redis.call('EXISTS', KEYS[1]) == 0 then return false end
if through <= 0 then return {meta[1], {}} end
if through > tonumber(meta[3] or '0') then
  redis.call('HSET', KEYS[2], 'acked', through)
end
local trimmed = redis.call('XRANGE', KEYS[1], '-', through .. '-0')
redis.call('XTRIM', KEYS[1], 'MINID', (through + 1) .. '-0')
return {meta[1], trimmed}
";

/// Redis-backed outbox.
#[derive(Clone)]
pub struct RedisOutbox {
    redis: ConnectionManager,
    prefix: String,
    settings: OutboxSettings,
    append: redis::Script,
    after: redis::Script,
    acked: redis::Script,
}

impl RedisOutbox {
    /// An outbox under `prefix` (the service's key prefix).
    pub fn new(redis: ConnectionManager, prefix: &str, settings: OutboxSettings) -> Self {
        Self {
            redis,
            prefix: format!("{prefix}outbox:"),
            settings,
            append: redis::Script::new(&format!("{GENERATION}{APPEND}")),
            after: redis::Script::new(&format!("{GENERATION}{AFTER}")),
            acked: redis::Script::new(ACKED),
        }
    }

    /// The device's keys: stream, meta, idempotency keys, collapse keys.
    fn keys(&self, tenant: &str, device: &str) -> [String; 4] {
        // Braces: a cluster hashes only the tag, so one device's keys share a slot.
        let base = format!("{}{{{tenant}/{device}}}", self.prefix);
        [
            format!("{base}:s"),
            format!("{base}:m"),
            format!("{base}:i"),
            format!("{base}:c"),
        ]
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// One stream entry as the device gets it.
fn entry(id: &str, fields: Vec<(String, Vec<u8>)>) -> Result<Notification, OutboxError> {
    let seq = id
        .split_once('-')
        .and_then(|(seq, _)| seq.parse::<u64>().ok())
        .ok_or_else(|| OutboxError::Corrupt {
            entry: id.to_owned(),
            why: "its id is not a sequence",
        })?;
    let mut payload = None;
    let mut count = 1;
    for (name, value) in fields {
        match name.as_str() {
            "n" => payload = Some(value),
            "k" => {
                count = std::str::from_utf8(&value)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
            }
            _ => {}
        }
    }
    let payload = payload.ok_or_else(|| OutboxError::Corrupt {
        entry: id.to_owned(),
        why: "it has no payload",
    })?;
    let notification =
        Notification::decode(payload.as_slice()).map_err(|source| OutboxError::Decode {
            entry: id.to_owned(),
            source,
        })?;
    Ok(replayed(notification, seq, count))
}

/// Stream entries as read by a script: id and fields.
type Entries = Vec<(String, Vec<(String, Vec<u8>)>)>;

/// The entries as the device gets them.
fn decoded(entries: Entries, device: &str) -> Vec<Notification> {
    let mut notifications = Vec::with_capacity(entries.len());
    for (id, fields) in entries {
        match entry(&id, fields) {
            Ok(notification) => notifications.push(notification),
            // One unreadable entry must not block the device's replay
            // for good; it cannot become readable later.
            Err(err) => {
                tracing::warn!(error = %pushmail_common::report::Report(&err), device, "outbox entry skipped")
            }
        }
    }
    notifications
}

#[async_trait]
impl Outbox for RedisOutbox {
    async fn append(&self, notification: &Notification) -> Result<Appended, OutboxError> {
        let keys = self.keys(&notification.tenant_id, &notification.device_id);
        let mut redis = self.redis.clone();
        let (seq, state, count, generation): (u64, u8, u32, u64) = self
            .append
            .key(&keys[0])
            .key(&keys[1])
            .key(&keys[2])
            .key(&keys[3])
            .arg(&notification.idempotency_key)
            .arg(self.settings.collapse_key(notification))
            .arg(stored(notification).encode_to_vec())
            .arg(pushmail_common::clock::now_ms())
            .arg(self.settings.coalesce_ms)
            .arg(self.settings.max_per_device)
            .arg(millis(self.settings.ttl()))
            .arg(self.settings.keys_remembered())
            .arg(new_generation())
            .invoke_async(&mut redis)
            .await?;
        let state = match state {
            0 => AppendState::New,
            1 => AppendState::Pending,
            _ => AppendState::Acked,
        };
        Ok(Appended {
            generation,
            seq,
            state,
            count,
        })
    }

    async fn after(
        &self,
        tenant: &str,
        device: &str,
        cursor: Cursor,
        limit: usize,
    ) -> Result<Replay, OutboxError> {
        let keys = self.keys(tenant, device);
        let mut redis = self.redis.clone();
        let (generation, from, resync, entries): (u64, u64, u8, Entries) = self
            .after
            .key(&keys[0])
            .key(&keys[1])
            .key(&keys[2])
            .key(&keys[3])
            .arg(cursor.generation)
            .arg(cursor.seq)
            .arg(limit)
            .arg(new_generation())
            .arg(millis(self.settings.ttl()))
            .invoke_async(&mut redis)
            .await?;
        Ok(Replay {
            generation,
            from,
            notifications: decoded(entries, device),
            resync: resync != 0,
        })
    }

    async fn acked(
        &self,
        tenant: &str,
        device: &str,
        cursor: Cursor,
    ) -> Result<Option<Acked>, OutboxError> {
        let keys = self.keys(tenant, device);
        let mut redis = self.redis.clone();
        let trimmed: Option<(u64, Entries)> = self
            .acked
            .key(&keys[0])
            .key(&keys[1])
            .arg(cursor.generation)
            .arg(cursor.seq)
            .invoke_async(&mut redis)
            .await?;
        Ok(trimmed.map(|(generation, entries)| Acked {
            generation,
            notifications: decoded(entries, device),
        }))
    }
}
