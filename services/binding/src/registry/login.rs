//! What every password login to binding shares: failure budgets per key
//! (an account or username, a peer), logins remembered for a while so a
//! busy client's repeats skip argon2, a decoy hash so an unknown name
//! costs as much as a wrong password, and a bound on concurrent argon2
//! work. Relay AUTH and app passwords each keep one.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::ApiError;
use crate::lockout::Lockout;
use crate::passwords;
use crate::settings::LoginConfig;

/// Lockout budgets, remembered logins and a bound on concurrent argon2
/// work (each verification holds 19 MiB for tens of milliseconds).
pub(super) struct LoginGuard {
    lockout: Lockout,
    verified: quick_cache::sync::Cache<[u8; 32], (String, Instant)>,
    ttl: Duration,
    hashing: Arc<Semaphore>,
    decoy: OnceLock<String>,
}

impl std::fmt::Debug for LoginGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginGuard")
            .field("lockout", &self.lockout)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl LoginGuard {
    pub(super) fn new(config: &LoginConfig) -> Self {
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
    pub(super) async fn verify(
        &self,
        password: &str,
        stored: Option<String>,
    ) -> Result<bool, ApiError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|e| ApiError::unavailable("shutting down", e))?;
        // An unknown username costs as much as a wrong password.
        let (stored, real) = match stored {
            Some(stored) => (stored, true),
            None => (self.decoy().await?, false),
        };
        let password = password.to_owned();
        let matched = tokio::task::spawn_blocking(move || passwords::verify(&password, &stored))
            .await
            .map_err(|e| ApiError::internal("password check", e))?;
        Ok(matched && real)
    }

    /// The argon2id PHC string of `password`, off the async threads.
    pub(super) async fn hash(&self, password: &str) -> Result<String, ApiError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|e| ApiError::unavailable("shutting down", e))?;
        let plain = password.to_owned();
        tokio::task::spawn_blocking(move || passwords::hash(&plain))
            .await
            .map_err(|e| ApiError::internal("password hashing", e))?
            .map_err(|e| ApiError::internal("password hashing", e))
    }

    /// Whether the login `digest` was verified lately against `hash`,
    /// which is still the stored one (a changed or revoked row is not).
    pub(super) fn remembers(&self, digest: &[u8; 32], hash: &str, now: Instant) -> bool {
        self.verified
            .get(digest)
            .is_some_and(|(stored, until)| now < until && stored == hash)
    }

    /// Remembers a verified login.
    pub(super) fn remember(&self, digest: [u8; 32], hash: String, now: Instant) {
        self.verified.insert(digest, (hash, now + self.ttl));
    }

    /// `Throttled` while any of `keys` is locked out.
    pub(super) fn check(&self, keys: &[&str], now: Instant, why: &str) -> Result<(), ApiError> {
        for key in keys {
            if let Err(wait) = self.lockout.check(key, now) {
                return Err(ApiError::throttled(
                    why,
                    i64::try_from(wait.as_millis()).unwrap_or(i64::MAX),
                ));
            }
        }
        Ok(())
    }

    /// Counts a failure against each of `keys`.
    pub(super) fn fail(&self, keys: &[&str], now: Instant) {
        for key in keys {
            self.lockout.fail(key, now);
        }
    }

    /// The hash an unknown name is checked against, made once, off the
    /// async threads.
    async fn decoy(&self) -> Result<String, ApiError> {
        if let Some(decoy) = self.decoy.get() {
            return Ok(decoy.clone());
        }
        let made = tokio::task::spawn_blocking(|| passwords::hash(&passwords::password()))
            .await
            .map_err(|e| ApiError::internal("decoy password", e))?
            .map_err(|e| ApiError::internal("decoy password", e))?;
        Ok(self.decoy.get_or_init(|| made).clone())
    }
}

/// The budget key of a peer: its address, or its /64 for IPv6 (where one
/// client holds a whole /64).
pub(super) fn peer_key(peer: IpAddr) -> String {
    match peer.to_canonical() {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & (u128::MAX << 64);
            format!("ip:{}/64", std::net::Ipv6Addr::from(prefix))
        }
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
