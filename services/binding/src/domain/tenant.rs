//! Tenants and their API keys.

use rand::RngCore as _;
use sha2::{Digest, Sha256};

use super::TenantId;
use pushmail_common::redact::Secret;

/// Prefix of every API key, so a leaked key is recognisable in scanners.
const KEY_PREFIX: &str = "pmk_";

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

    /// Rebuilds a hash read from the database.
    pub fn from_stored(value: String) -> Self {
        Self(value)
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
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
