//! The Redis layer. Per account two keys: a generation counter, bumped by
//! every change, and the targets tagged with the generation they were read
//! under. A reader that loaded the database before a change carries the old
//! generation, so what it writes afterwards is never served.

use std::time::Duration;

use prost::Message as _;
use pushmail_proto::binding::v1 as pb;
use redis::aio::ConnectionManager;

use super::Targets;
use crate::clock::now_ms;
use crate::domain::{AccountId, TenantId};
use crate::wire;

/// How long a generation counter outlives its last bump; far longer than
/// any entry, so a counter never restarts under a live entry.
const GENERATION_TTL_MS: u64 = 24 * 3_600 * 1_000;

pub(super) struct Shared {
    redis: ConnectionManager,
    prefix: String,
    ttl: Duration,
}

pub(super) struct Read {
    /// The account's current generation.
    pub(super) generation: u64,
    /// The cached targets with the time they were written, if current.
    pub(super) hit: Option<(i64, Targets)>,
}

impl Shared {
    pub(super) fn new(redis: ConnectionManager, prefix: &str, ttl: Duration) -> Self {
        Self {
            redis,
            prefix: format!("{prefix}binding:"),
            ttl,
        }
    }

    pub(super) fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)
    }

    fn keys(&self, tenant: TenantId, account: AccountId) -> (String, String) {
        (
            format!("{}gen:{tenant}:{account}", self.prefix),
            format!("{}targets:{tenant}:{account}", self.prefix),
        )
    }

    pub(super) async fn read(
        &self,
        tenant: TenantId,
        account: AccountId,
    ) -> Result<Read, redis::RedisError> {
        let (generation_key, targets_key) = self.keys(tenant, account);
        let mut redis = self.redis.clone();
        let (generation, value): (Option<u64>, Option<Vec<u8>>) = redis::pipe()
            .get(&generation_key)
            .get(&targets_key)
            .query_async(&mut redis)
            .await?;
        let generation = generation.unwrap_or(0);
        let hit = value.and_then(|bytes| decode(&bytes, generation, self.ttl_ms()));
        Ok(Read { generation, hit })
    }

    pub(super) async fn write(
        &self,
        tenant: TenantId,
        account: AccountId,
        generation: u64,
        written_ms: i64,
        targets: &Targets,
    ) -> Result<(), redis::RedisError> {
        let (_, targets_key) = self.keys(tenant, account);
        let mut redis = self.redis.clone();
        let ttl = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        redis::cmd("SET")
            .arg(&targets_key)
            .arg(encode(generation, written_ms, targets))
            .arg("PX")
            .arg(ttl)
            .query_async::<()>(&mut redis)
            .await
    }

    pub(super) async fn invalidate(
        &self,
        tenant: TenantId,
        account: AccountId,
    ) -> Result<(), redis::RedisError> {
        let (generation_key, targets_key) = self.keys(tenant, account);
        let mut redis = self.redis.clone();
        redis::pipe()
            .atomic()
            .incr(&generation_key, 1)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&generation_key)
            .arg(GENERATION_TTL_MS)
            .ignore()
            .del(&targets_key)
            .ignore()
            .query_async::<()>(&mut redis)
            .await
    }
}

/// `generation (u64 LE) | written at ms (i64 LE) | GetDeliveryTargetsResponse`.
fn encode(generation: u64, written_ms: i64, targets: &Targets) -> Vec<u8> {
    let body = pb::GetDeliveryTargetsResponse {
        targets: targets.iter().map(wire::target).collect(),
    };
    let mut bytes = Vec::with_capacity(16 + body.encoded_len());
    bytes.extend_from_slice(&generation.to_le_bytes());
    bytes.extend_from_slice(&written_ms.to_le_bytes());
    body.encode(&mut bytes).unwrap_or_default();
    bytes
}

/// The targets, if `bytes` hold current ones; anything else is a miss.
fn decode(bytes: &[u8], generation: u64, ttl_ms: i64) -> Option<(i64, Targets)> {
    let (header, body) = bytes.split_at_checked(16)?;
    let stored_generation = u64::from_le_bytes(header[..8].try_into().ok()?);
    let written_ms = i64::from_le_bytes(header[8..].try_into().ok()?);
    if stored_generation != generation || written_ms + ttl_ms <= now_ms() {
        return None;
    }
    let body = pb::GetDeliveryTargetsResponse::decode(body).ok()?;
    let targets = body
        .targets
        .iter()
        .map(wire::target_from_proto)
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    Some((written_ms, targets.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{BindingId, DeliveryTarget, DeviceId, Msisdn, Preferences, TargetDevice};

    fn targets() -> Targets {
        vec![DeliveryTarget {
            binding_id: BindingId::generate(),
            msisdn: Msisdn::parse("+8613800138000").unwrap(),
            device: Some(TargetDevice {
                id: DeviceId::generate(),
                has_push_client: true,
            }),
            preferences: Preferences::default(),
        }]
        .into()
    }

    #[test]
    fn only_current_entries_decode() {
        let now = now_ms();
        let targets = targets();
        let bytes = encode(7, now, &targets);
        let (written, back) = decode(&bytes, 7, 5_000).expect("current");
        assert_eq!((written, &*back), (now, &*targets));
        assert!(decode(&bytes, 8, 5_000).is_none(), "changed since: a miss");
        assert!(
            decode(&encode(7, now - 6_000, &targets), 7, 5_000).is_none(),
            "too old"
        );
        assert!(decode(&bytes[..10], 7, 5_000).is_none(), "truncated");
        assert!(
            decode(&[bytes[..16].to_vec(), vec![0xff; 4]].concat(), 7, 5_000).is_none(),
            "garbage"
        );
    }
}
