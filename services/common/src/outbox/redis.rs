//! The outbox in Redis: per device a stream (entry id `<seq>-0`, fields
//! `n` the notification, `k` the count), a hash of counters (`seq`, `acked`,
//! `lost`), a sorted set of idempotency keys by sequence and a hash of
//! collapse keys. The four keys share a hash tag, so each script touches one
//! cluster slot, and all expire together `ttl_seconds` after the last append.

use async_trait::async_trait;
use prost::Message as _;
use pushmail_proto::session::v1::Notification;
use redis::aio::ConnectionManager;

use super::{AppendState, Appended, Outbox, OutboxError, OutboxSettings, Replay, replayed, stored};

/// KEYS: stream, meta, keys, collapse.
/// ARGV: idempotency key, collapse key, payload, now ms, window ms, cap,
/// ttl ms, keys remembered.
/// Returns {seq, state (0 new, 1 pending, 2 acked), count}.
const APPEND: &str = r"
local acked = tonumber(redis.call('HGET', KEYS[2], 'acked') or '0')
if ARGV[1] ~= '' then
  local known = redis.call('ZSCORE', KEYS[3], ARGV[1])
  if known then
    local seq = tonumber(known)
    if seq <= acked then return {seq, 2, 1} end
    local entry = redis.call('XRANGE', KEYS[1], seq .. '-0', seq .. '-0')
    local count = 1
    if entry[1] then count = tonumber(entry[1][2][4]) end
    return {seq, 1, count}
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
return {seq, 0, count}
";

/// KEYS: stream, meta. ARGV: through.
const ACKED: &str = r"
local seq = tonumber(redis.call('HGET', KEYS[2], 'seq') or '0')
local through = math.min(tonumber(ARGV[1]), seq)
if through <= 0 then return 0 end
if through > tonumber(redis.call('HGET', KEYS[2], 'acked') or '0') then
  redis.call('HSET', KEYS[2], 'acked', through)
end
redis.call('XTRIM', KEYS[1], 'MINID', (through + 1) .. '-0')
return through
";

/// Redis-backed outbox.
#[derive(Clone)]
pub struct RedisOutbox {
    redis: ConnectionManager,
    prefix: String,
    settings: OutboxSettings,
    append: redis::Script,
    acked: redis::Script,
}

impl RedisOutbox {
    /// An outbox under `prefix` (the service's key prefix).
    pub fn new(redis: ConnectionManager, prefix: &str, settings: OutboxSettings) -> Self {
        Self {
            redis,
            prefix: format!("{prefix}outbox:"),
            settings,
            append: redis::Script::new(APPEND),
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
        .ok_or_else(|| OutboxError(format!("outbox entry id {id} is not a sequence")))?;
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
    let payload =
        payload.ok_or_else(|| OutboxError(format!("outbox entry {id} has no payload")))?;
    let notification = Notification::decode(payload.as_slice())
        .map_err(|e| OutboxError(format!("outbox entry {id}: {e}")))?;
    Ok(replayed(notification, seq, count))
}

#[async_trait]
impl Outbox for RedisOutbox {
    async fn append(&self, notification: &Notification) -> Result<Appended, OutboxError> {
        let keys = self.keys(&notification.tenant_id, &notification.device_id);
        let mut redis = self.redis.clone();
        let (seq, state, count): (u64, u8, u32) = self
            .append
            .key(&keys[0])
            .key(&keys[1])
            .key(&keys[2])
            .key(&keys[3])
            .arg(&notification.idempotency_key)
            .arg(&notification.collapse_key)
            .arg(stored(notification).encode_to_vec())
            .arg(crate::clock::now_ms())
            .arg(self.settings.coalesce_ms)
            .arg(self.settings.max_per_device)
            .arg(millis(self.settings.ttl()))
            .arg(self.settings.keys_remembered())
            .invoke_async(&mut redis)
            .await?;
        let state = match state {
            0 => AppendState::New,
            1 => AppendState::Pending,
            _ => AppendState::Acked,
        };
        Ok(Appended { seq, state, count })
    }

    async fn after(
        &self,
        tenant: &str,
        device: &str,
        after: u64,
        limit: usize,
    ) -> Result<Replay, OutboxError> {
        let keys = self.keys(tenant, device);
        let mut redis = self.redis.clone();
        type Entries = Vec<(String, Vec<(String, Vec<u8>)>)>;
        let (entries, lost): (Entries, Option<u64>) = redis::pipe()
            .atomic()
            .cmd("XRANGE")
            .arg(&keys[0])
            .arg(format!("{}-0", after.saturating_add(1)))
            .arg("+")
            .arg("COUNT")
            .arg(limit)
            .cmd("HGET")
            .arg(&keys[1])
            .arg("lost")
            .query_async(&mut redis)
            .await?;
        let mut notifications = Vec::with_capacity(entries.len());
        for (id, fields) in entries {
            match entry(&id, fields) {
                Ok(notification) => notifications.push(notification),
                // One unreadable entry must not block the device's replay
                // for good; it cannot become readable later.
                Err(err) => tracing::warn!(error = %err, device, "outbox entry skipped"),
            }
        }
        Ok(Replay {
            notifications,
            resync: after < lost.unwrap_or(0),
        })
    }

    async fn acked(&self, tenant: &str, device: &str, through: u64) -> Result<(), OutboxError> {
        let keys = self.keys(tenant, device);
        let mut redis = self.redis.clone();
        let _: i64 = self
            .acked
            .key(&keys[0])
            .key(&keys[1])
            .arg(through)
            .invoke_async(&mut redis)
            .await?;
        Ok(())
    }
}
