//! Tenants and their API keys.

use rand::RngCore as _;
use sha2::{Digest, Sha256};

use super::{ApiKeyId, MailDomain, TenantId};
use pushmail_common::redact::Secret;

/// Prefix of every API key, so a leaked key is recognisable in scanners.
const KEY_PREFIX: &str = "pmk_";

/// How much of a key is kept in clear to recognise it: the prefix and 8
/// hex digits (32 bits: names the key, guesses nothing).
const SHOWN_CHARS: usize = KEY_PREFIX.len() + 8;

/// Most keys a tenant may hold that still work (or will, in a grace).
pub const MAX_LIVE_KEYS: usize = 20;

/// A tenant API key: shown once at creation, never stored.
#[derive(Debug, Clone)]
pub struct ApiKey(Secret);

/// The stored form of an API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyHash(String);

impl ApiKey {
    /// A new random key (256 bits).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(Secret::new(format!("{KEY_PREFIX}{}", hex::encode(bytes))))
    }

    /// A key presented by a caller.
    pub fn presented(value: &str) -> Self {
        Self(Secret::new(value.trim()))
    }

    /// The key, to show the tenant once.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The recognisable start of the key, kept in clear.
    pub fn prefix(&self) -> String {
        self.0.expose().chars().take(SHOWN_CHARS).collect()
    }

    /// What is stored and looked up.
    pub fn hash(&self) -> ApiKeyHash {
        ApiKeyHash(hex::encode(Sha256::digest(self.0.expose().as_bytes())))
    }
}

impl ApiKeyHash {
    /// The stored text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A key to store: its hash and what is shown of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// Id.
    pub id: ApiKeyId,
    /// What is looked up.
    pub hash: ApiKeyHash,
    /// The recognisable start.
    pub prefix: String,
    /// What it is for.
    pub description: String,
    /// When it stops working; `None`: never.
    pub expires_at_ms: Option<i64>,
}

impl NewApiKey {
    /// What to store for `key`.
    pub fn of(key: &ApiKey, description: &str, expires_at_ms: Option<i64>) -> Self {
        Self {
            id: ApiKeyId::generate(),
            hash: key.hash(),
            prefix: key.prefix(),
            description: description.to_owned(),
            expires_at_ms,
        }
    }
}

/// What an operator asks for when creating a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTenant {
    /// Display name, 1–200 characters.
    pub name: String,
    /// Quota: mail accounts.
    pub max_accounts: u32,
    /// Quota: SMS per day.
    pub sms_per_day: u32,
    /// Rate: notifications per minute (0: no limit).
    pub push_per_minute: u32,
    /// Verification codes per UTC day; `None`: the platform default.
    pub codes_per_day: Option<u32>,
    /// Mail domains the tenant owns.
    pub domains: Vec<MailDomain>,
    /// The zone its days are counted in.
    pub time_zone: TenantZone,
}

/// A tenant as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Id.
    pub id: TenantId,
    /// Display name.
    pub name: String,
    /// Quota: mail accounts.
    pub max_accounts: u32,
    /// Quota: SMS per day.
    pub sms_per_day: u32,
    /// Rate: notifications per minute (0: no limit).
    pub push_per_minute: u32,
    /// Verification codes per UTC day; `None`: the platform default.
    pub codes_per_day: Option<u32>,
    /// The zone its traffic and SMS-quota days are counted in.
    pub time_zone: TenantZone,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
}

/// A tenant's time zone: an IANA name the bundled database knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantZone {
    name: String,
    zone: jiff::tz::TimeZone,
}

/// A zone name the time-zone database does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone {0:?}; use an IANA name such as Asia/Shanghai")]
pub struct ZoneError(String);

impl TenantZone {
    /// UTC, where a tenant names none.
    pub fn utc() -> Self {
        Self {
            name: "UTC".to_owned(),
            zone: jiff::tz::TimeZone::UTC,
        }
    }

    /// Parses an IANA name (empty: UTC).
    pub fn parse(name: &str) -> Result<Self, ZoneError> {
        let name = name.trim();
        if name.is_empty() {
            return Ok(Self::utc());
        }
        let zone = jiff::tz::TimeZone::get(name)
            .map_err(|_| ZoneError(name.chars().take(64).collect()))?;
        Ok(Self {
            name: name.to_owned(),
            zone,
        })
    }

    /// The IANA name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tenant's calendar day at `ms` since the epoch.
    pub fn day(&self, ms: i64) -> jiff::civil::Date {
        let at = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        self.zone.to_datetime(at).date()
    }
}

/// An API key as stored (the key itself never is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Owner.
    pub tenant_id: TenantId,
    /// Id.
    pub id: ApiKeyId,
    /// The key's recognisable start; empty for a key made before keys
    /// were listed.
    pub prefix: String,
    /// What it is for.
    pub description: String,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
    /// When it stops working; `None`: never.
    pub expires_at_ms: Option<i64>,
    /// When it was revoked; `None`: not revoked.
    pub revoked_at_ms: Option<i64>,
}

impl ApiKeyRecord {
    /// Whether the key works at `now_ms`.
    pub fn is_active(&self, now_ms: i64) -> bool {
        self.expires_at_ms.is_none_or(|end| now_ms < end)
    }

    /// Whether the key still works once `grace_end_ms` is past.
    #[cfg(test)]
    pub(crate) fn outlives(&self, grace_end_ms: i64) -> bool {
        self.expires_at_ms.is_none_or(|end| grace_end_ms < end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenants_day_is_its_own() {
        // 2026-12-06 17:30 UTC is already the 7th in Beijing.
        let evening = 1_796_578_200_000;
        let shanghai = TenantZone::parse("Asia/Shanghai").unwrap();
        assert_eq!(shanghai.day(evening).to_string(), "2026-12-07");
        assert_eq!(TenantZone::utc().day(evening).to_string(), "2026-12-06");
        assert_eq!(TenantZone::parse("").unwrap(), TenantZone::utc());
        assert!(TenantZone::parse("Mars/Olympus").is_err());
        assert_eq!(shanghai.name(), "Asia/Shanghai");
    }

    #[test]
    fn keys_are_random_prefixed_and_hash_stably() {
        let a = ApiKey::generate();
        let b = ApiKey::generate();
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with(KEY_PREFIX));
        assert_eq!(a.hash(), ApiKey::presented(a.expose()).hash());
        assert_ne!(a.hash(), b.hash());
        assert!(
            !format!("{a:?}").contains(a.expose()),
            "Debug must not show the key"
        );
        assert_eq!(a.prefix().len(), 12);
        assert!(a.expose().starts_with(&a.prefix()));
    }

    #[test]
    fn a_key_works_until_it_expires() {
        let key = ApiKeyRecord {
            tenant_id: TenantId::generate(),
            id: ApiKeyId::generate(),
            prefix: String::new(),
            description: String::new(),
            created_at_ms: 0,
            expires_at_ms: Some(1_000),
            revoked_at_ms: Some(500),
        };
        assert!(key.is_active(999));
        assert!(!key.is_active(1_000));
        assert!(key.outlives(999) && !key.outlives(1_000));
        let forever = ApiKeyRecord {
            expires_at_ms: None,
            ..key
        };
        assert!(forever.is_active(i64::MAX) && forever.outlives(i64::MAX));
    }
}
