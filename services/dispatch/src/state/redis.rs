//! Dispatch state in Redis. Claims are `SET NX PX` keys holding their
//! owner. Held mails: per device a hash (`v` version, `u` due time, `t`/`d`
//! tenant and device, `k:<idempotency key>`, `n:<collapse key>` newest
//! notification, `c:<collapse key>` count) and one sorted set of devices by
//! due time; all under one hash tag, so the scripts work on a cluster too.

use std::collections::HashMap;

use async_trait::async_trait;
use prost::Message as _;
use pushmail_proto::session::v1::Notification;
use redis::aio::ConnectionManager;

use super::{Claims, Due, HeldMail, RateWindows, SENT, StateError, device_key};

/// Held mails outlive any quiet window (at most a day) by a day.
const HELD_TTL_MS: u64 = 2 * 24 * 3600 * 1000;

/// KEYS: claim. ARGV: owner, ttl ms. 1 when the owner holds it.
const CLAIM: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0
";

/// KEYS: claim. ARGV: owner.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// KEYS: claim. ARGV: owner, the confirmed value.
const CONFIRM: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL') and 1 or 0
end
return 0
";

/// KEYS: device hash, due set. ARGV: idempotency key, collapse key,
/// notification, due ms, tenant, device, member, ttl ms.
const DEFER: &str = r"
if redis.call('HSETNX', KEYS[1], 'k:' .. ARGV[1], 1) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('HSET', KEYS[1], 'n:' .. ARGV[2], ARGV[3], 't', ARGV[5], 'd', ARGV[6])
redis.call('HINCRBY', KEYS[1], 'c:' .. ARGV[2], 1)
local due = tonumber(ARGV[4])
local held = redis.call('HGET', KEYS[1], 'u')
if held and tonumber(held) < due then due = tonumber(held) end
redis.call('HSET', KEYS[1], 'u', due)
redis.call('ZADD', KEYS[2], due, ARGV[7])
redis.call('PEXPIRE', KEYS[1], ARGV[8])
return 1
";

/// KEYS: device hash, due set. ARGV: version, member.
const DIGESTED: &str = r"
local version = redis.call('HGET', KEYS[1], 'v')
if version and version ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
";

/// Redis-backed dispatch state.
pub struct RedisState {
    redis: ConnectionManager,
    prefix: String,
    claim: redis::Script,
    release: redis::Script,
    confirm: redis::Script,
    defer: redis::Script,
    digested: redis::Script,
}

impl RedisState {
    /// State under `prefix` (the service's key prefix).
    pub fn new(redis: ConnectionManager, prefix: &str) -> Self {
        Self {
            redis,
            prefix: prefix.to_owned(),
            claim: redis::Script::new(CLAIM),
            release: redis::Script::new(RELEASE),
            confirm: redis::Script::new(CONFIRM),
            defer: redis::Script::new(DEFER),
            digested: redis::Script::new(DIGESTED),
        }
    }

    fn claim_key(&self, key: &str) -> String {
        format!("{}claim:{key}", self.prefix)
    }

    fn held_key(&self, member: &str) -> String {
        format!("{}{{held}}:{member}", self.prefix)
    }

    fn due_key(&self) -> String {
        format!("{}{{held}}:due", self.prefix)
    }
}

fn parse(fields: HashMap<String, Vec<u8>>) -> Option<Due> {
    let text = |name: &str| {
        fields
            .get(name)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_owned)
    };
    let mut digests = Vec::new();
    for (name, value) in &fields {
        let Some(collapse) = name.strip_prefix("n:") else {
            continue;
        };
        let notification = Notification::decode(value.as_slice()).ok()?;
        let count = text(&format!("c:{collapse}"))
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        digests.push((notification, count));
    }
    digests.sort_by(|a, b| a.0.collapse_key.cmp(&b.0.collapse_key));
    Some(Due {
        tenant: text("t")?,
        device: text("d")?,
        until_ms: text("u")?.parse().ok()?,
        version: text("v")?.parse().ok()?,
        digests,
    })
}

#[async_trait]
impl Claims for RedisState {
    async fn claim(&self, key: &str, owner: &str, ttl_ms: u64) -> Result<bool, StateError> {
        let mut redis = self.redis.clone();
        let held: i64 = self
            .claim
            .key(self.claim_key(key))
            .arg(owner)
            .arg(ttl_ms.max(1))
            .invoke_async(&mut redis)
            .await?;
        Ok(held == 1)
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), StateError> {
        let mut redis = self.redis.clone();
        let _: i64 = self
            .release
            .key(self.claim_key(key))
            .arg(owner)
            .invoke_async(&mut redis)
            .await?;
        Ok(())
    }

    async fn confirm(&self, key: &str, owner: &str) -> Result<(), StateError> {
        let mut redis = self.redis.clone();
        let _: i64 = self
            .confirm
            .key(self.claim_key(key))
            .arg(owner)
            .arg(SENT)
            .invoke_async(&mut redis)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl HeldMail for RedisState {
    async fn defer(&self, notification: &Notification, until_ms: i64) -> Result<(), StateError> {
        let member = device_key(&notification.tenant_id, &notification.device_id);
        let mut redis = self.redis.clone();
        let _: i64 = self
            .defer
            .key(self.held_key(&member))
            .key(self.due_key())
            .arg(&notification.idempotency_key)
            .arg(&notification.collapse_key)
            .arg(notification.encode_to_vec())
            .arg(until_ms)
            .arg(&notification.tenant_id)
            .arg(&notification.device_id)
            .arg(&member)
            .arg(HELD_TTL_MS)
            .invoke_async(&mut redis)
            .await?;
        Ok(())
    }

    async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<Due>, StateError> {
        let mut redis = self.redis.clone();
        let members: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.due_key())
            .arg("-inf")
            .arg(now_ms)
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut redis)
            .await?;
        let mut due = Vec::with_capacity(members.len());
        for member in members {
            let fields: HashMap<String, Vec<u8>> = redis::cmd("HGETALL")
                .arg(self.held_key(&member))
                .query_async(&mut redis)
                .await?;
            match parse(fields) {
                Some(entry) => due.push(entry),
                None => {
                    // Expired or unreadable: nothing left to digest.
                    tracing::warn!(device = %member, "held mails unreadable or expired; dropped");
                    let _: i64 = redis::cmd("ZREM")
                        .arg(self.due_key())
                        .arg(&member)
                        .query_async(&mut redis)
                        .await?;
                }
            }
        }
        Ok(due)
    }

    async fn digested(&self, due: &Due) -> Result<bool, StateError> {
        let member = device_key(&due.tenant, &due.device);
        let mut redis = self.redis.clone();
        let done: i64 = self
            .digested
            .key(self.held_key(&member))
            .key(self.due_key())
            .arg(due.version)
            .arg(&member)
            .invoke_async(&mut redis)
            .await?;
        Ok(done == 1)
    }
}

#[async_trait]
impl RateWindows for RedisState {
    async fn count(&self, key: &str, n: u64, ttl_ms: u64) -> Result<u64, StateError> {
        let key = format!("{}count:{key}", self.prefix);
        let (value,): (u64,) = redis::pipe()
            .incr(&key, n)
            .pexpire(&key, i64::try_from(ttl_ms).unwrap_or(i64::MAX))
            .ignore()
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(value)
    }
}
