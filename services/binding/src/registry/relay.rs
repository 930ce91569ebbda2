//! SMTP relay credentials and policies of tenants, and the login check
//! ingest makes for a relay's AUTH (`AuthenticateRelay`).

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use pushmail_common::redact::Secret;
use tokio::sync::Semaphore;

use super::{ApiError, Registry};
use crate::clock::now_ms;
use crate::domain::{RelayCredential, RelayCredentialId, RelayPolicy, TenantId};
use crate::lockout::Lockout;
use crate::passwords;
use crate::settings::RelayConfig;

/// The same answer whatever was wrong: the username, the password, a
/// revoked credential.
const REFUSED: &str = "relay credentials refused";

/// A credential just made, with its password (shown once).
#[derive(Debug)]
pub(crate) struct NewRelayCredential {
    /// As stored.
    pub credential: RelayCredential,
    /// The generated password.
    pub password: Secret,
}

/// Whose relay logged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RelayLogin {
    /// The tenant.
    pub tenant: TenantId,
    /// The credential used.
    pub credential: RelayCredentialId,
}

/// Lockout budgets, remembered logins and a bound on concurrent argon2
/// work (each verification holds 19 MiB for tens of milliseconds).
pub(super) struct RelayGuard {
    lockout: Lockout,
    verified: quick_cache::sync::Cache<[u8; 32], (String, Instant)>,
    ttl: Duration,
    hashing: Arc<Semaphore>,
    decoy: OnceLock<String>,
}

impl std::fmt::Debug for RelayGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayGuard")
            .field("lockout", &self.lockout)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl RelayGuard {
    pub(super) fn new(config: &RelayConfig) -> Self {
        let lanes = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            lockout: Lockout::new(
                config.max_failures,
                Duration::from_secs(config.lockout_seconds),
                config.cache_capacity,
            ),
            verified: quick_cache::sync::Cache::new(config.cache_capacity.max(1)),
            ttl: Duration::from_secs(config.cache_ttl_seconds),
            hashing: Arc::new(Semaphore::new(lanes)),
            decoy: OnceLock::new(),
        }
    }

    /// Runs argon2 off the async threads, a few at a time.
    async fn verify(&self, password: &str, stored: Option<String>) -> Result<bool, ApiError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|e| ApiError::unavailable("shutting down", e))?;
        // An unknown username costs as much as a wrong password.
        let (stored, real) = match stored {
            Some(stored) => (stored, true),
            None => (self.decoy()?, false),
        };
        let password = password.to_owned();
        let matched = tokio::task::spawn_blocking(move || passwords::verify(&password, &stored))
            .await
            .map_err(|e| ApiError::internal("password check", e))?;
        Ok(matched && real)
    }

    fn decoy(&self) -> Result<String, ApiError> {
        if let Some(decoy) = self.decoy.get() {
            return Ok(decoy.clone());
        }
        let made = passwords::hash(&passwords::password())
            .map_err(|e| ApiError::internal("decoy password", e))?;
        Ok(self.decoy.get_or_init(|| made).clone())
    }
}

/// The budget key of a peer: its address, or its /64 for IPv6 (where one
/// client holds a whole /64).
fn peer_key(peer: IpAddr) -> String {
    match peer.to_canonical() {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & (u128::MAX << 64);
            format!("ip:{}/64", std::net::Ipv6Addr::from(prefix))
        }
    }
}

impl Registry {
    /// A new credential for the tenant; its password is returned once.
    pub(crate) async fn create_relay_credential(
        &self,
        tenant: TenantId,
        description: &str,
    ) -> Result<NewRelayCredential, ApiError> {
        let password = passwords::password();
        let hashed = {
            let _permit = self.inner.relay.hashing.acquire().await;
            let plain = password.clone();
            tokio::task::spawn_blocking(move || passwords::hash(&plain))
                .await
                .map_err(|e| ApiError::internal("password hashing", e))?
                .map_err(|e| ApiError::internal("password hashing", e))?
        };
        let credential = RelayCredential {
            tenant_id: tenant,
            id: RelayCredentialId::generate(),
            username: passwords::username(),
            description: description.to_owned(),
            created_at_ms: now_ms(),
            revoked_at_ms: None,
        };
        self.store()
            .create_relay_credential(&credential, &hashed)
            .await?;
        tracing::info!(%tenant, credential = %credential.id, username = %credential.username, "relay credential created");
        Ok(NewRelayCredential {
            credential,
            password: Secret::new(password),
        })
    }

    /// The tenant's relay credentials, oldest first.
    pub(crate) async fn relay_credentials(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<RelayCredential>, ApiError> {
        self.require_tenant(tenant).await?;
        Ok(self.store().relay_credentials(tenant).await?)
    }

    /// Revokes a credential; the next login with it fails on every replica
    /// (a remembered login is checked against the store each time).
    pub(crate) async fn revoke_relay_credential(
        &self,
        tenant: TenantId,
        id: RelayCredentialId,
    ) -> Result<RelayCredential, ApiError> {
        let revoked = self
            .store()
            .revoke_relay_credential(tenant, id, now_ms())
            .await?;
        tracing::info!(%tenant, credential = %id, "relay credential revoked");
        Ok(revoked)
    }

    /// The tenant's relay policy.
    pub(crate) async fn relay_policy(&self, tenant: TenantId) -> Result<RelayPolicy, ApiError> {
        self.require_tenant(tenant).await?;
        Ok(self.store().relay_policy(tenant).await?)
    }

    /// Replaces the tenant's relay policy.
    pub(crate) async fn set_relay_policy(
        &self,
        tenant: TenantId,
        policy: &RelayPolicy,
    ) -> Result<RelayPolicy, ApiError> {
        self.store().set_relay_policy(tenant, policy).await?;
        Ok(policy.clone())
    }

    /// Checks a relay's AUTH from `peer`. A login verified lately skips
    /// argon2 (the credential is still read, so a revocation holds at
    /// once); otherwise the peer's and the username's failure budgets are
    /// checked first, and a failure counts against both.
    pub(crate) async fn authenticate_relay(
        &self,
        username: &str,
        password: &str,
        peer: IpAddr,
    ) -> Result<RelayLogin, ApiError> {
        let guard = &self.inner.relay;
        let digest = passwords::login_digest(username, password);
        let now = Instant::now();
        let found = self.store().relay_login(username).await?;
        let login = |credential: &RelayCredential| RelayLogin {
            tenant: credential.tenant_id,
            credential: credential.id,
        };
        if let (Some((stored, until)), Some((credential, current))) =
            (guard.verified.get(&digest), found.as_ref())
            && now < until
            && &stored == current
        {
            return Ok(login(credential));
        }
        let (peer_key, user_key) = (peer_key(peer), format!("user:{username}"));
        for key in [&peer_key, &user_key] {
            if let Err(wait) = guard.lockout.check(key, now) {
                return Err(ApiError::throttled(
                    "too many failed relay logins",
                    i64::try_from(wait.as_millis()).unwrap_or(i64::MAX),
                ));
            }
        }
        let stored = found.as_ref().map(|(_, hash)| hash.clone());
        if guard.verify(password, stored).await?
            && let Some((credential, hash)) = found
        {
            guard.verified.insert(digest, (hash, now + guard.ttl));
            return Ok(login(&credential));
        }
        guard.lockout.fail(&peer_key, now);
        guard.lockout.fail(&user_key, now);
        tracing::info!(%peer, "relay login refused");
        Err(ApiError::Unauthenticated(REFUSED))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_peers_share_their_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(peer_key(a), peer_key(b));
        assert_eq!(peer_key(a), "ip:2001:db8:1:2::/64");
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(peer_key(mapped), "ip:192.0.2.1");
    }
}
