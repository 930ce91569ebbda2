//! Per-credential request rates (GCRA): a tenant scripting the API cannot
//! starve the others. Kept per gateway replica: with N replicas behind a
//! balancer a credential gets up to N times the rate, which the rate is
//! sized for.
//!
//! The table of credentials is bounded without ever resetting a live
//! entry: a credential the table does not hold yet is charged to its
//! peer's budget of new credentials first (so one address sending a flood
//! of made-up keys is answered 429 after that budget, before anything is
//! asked of binding), and when the table is full only entries whose state
//! equals a fresh one (their theoretical time has passed) are dropped;
//! if none has, the new credential waits. Clearing the table, as before,
//! handed every real key a fresh burst whenever someone sent enough
//! made-up ones.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pushmail_common::listen::PeerKey;
use sha2::{Digest as _, Sha256};

/// A GCRA rate: `interval` per request, `tolerance` of burst.
#[derive(Debug, Clone, Copy)]
struct Rate {
    interval: Duration,
    tolerance: Duration,
}

impl Rate {
    fn new(per_minute: u32, burst: u32) -> Self {
        let interval = Duration::from_secs(60) / per_minute.max(1);
        Self {
            interval,
            tolerance: interval * burst.max(1).saturating_sub(1),
        }
    }
}

/// Theoretical arrival times, at most `max` of them.
struct Table<K> {
    next: HashMap<K, Instant>,
    max: usize,
}

impl<K: Hash + Eq + Copy> Table<K> {
    fn new(max: usize) -> Self {
        Self {
            next: HashMap::new(),
            max: max.max(1),
        }
    }

    fn contains(&self, key: &K) -> bool {
        self.next.contains_key(key)
    }

    /// Admits one request of `key` at `now`, or says how long to wait.
    fn admit(&mut self, key: K, rate: Rate, now: Instant) -> Result<(), Duration> {
        if !self.next.contains_key(&key) && self.next.len() >= self.max {
            // An entry whose time has passed is the same as none: dropping
            // it changes no one's rate.
            self.next.retain(|_, next| *next > now);
            if self.next.len() >= self.max {
                let soonest = self.next.values().min().copied().unwrap_or(now);
                return Err(soonest.saturating_duration_since(now).max(rate.interval));
            }
        }
        let theoretical = self.next.get(&key).copied().unwrap_or(now).max(now);
        if theoretical > now + rate.tolerance {
            return Err(theoretical - now - rate.tolerance);
        }
        self.next.insert(key, theoretical + rate.interval);
        Ok(())
    }
}

/// The limits of a [`Limiter`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests per minute per credential.
    pub per_minute: u32,
    /// Requests at once above the rate.
    pub burst: u32,
    /// Credentials tracked at most.
    pub max_credentials: usize,
    /// Credentials not tracked yet, per minute per peer address.
    pub new_per_minute_per_peer: u32,
    /// New credentials at once per peer above that rate.
    pub new_burst_per_peer: u32,
}

/// A rate per credential, and a rate of new credentials per peer.
pub struct Limiter {
    rate: Rate,
    new_rate: Rate,
    credentials: Mutex<Table<[u8; 32]>>,
    peers: Mutex<Table<PeerKey>>,
}

impl Limiter {
    /// A limiter with `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            rate: Rate::new(limits.per_minute, limits.burst),
            new_rate: Rate::new(limits.new_per_minute_per_peer, limits.new_burst_per_peer),
            credentials: Mutex::new(Table::new(limits.max_credentials)),
            // Peers are fewer than credentials; their table is as large.
            peers: Mutex::new(Table::new(limits.max_credentials)),
        }
    }

    /// Admits one request of `credential` from `peer` at `now`, or says
    /// how long to wait.
    pub fn admit(
        &self,
        credential: &str,
        peer: Option<IpAddr>,
        now: Instant,
    ) -> Result<(), Duration> {
        // Keyed by digest: the table never holds a credential.
        let key: [u8; 32] = Sha256::digest(credential.as_bytes()).into();
        let mut credentials = self
            .credentials
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !credentials.contains(&key)
            && let Some(peer) = peer
        {
            self.peers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .admit(PeerKey::of(peer), self.new_rate, now)?;
        }
        credentials.admit(key, self.rate, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            per_minute: 60,
            burst: 3,
            max_credentials: 1_000,
            new_per_minute_per_peer: 60,
            new_burst_per_peer: 10,
        }
    }

    const A: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)));
    const B: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)));

    #[test]
    fn a_burst_then_the_rate_per_credential() {
        let limiter = Limiter::new(limits());
        let t = Instant::now();
        for _ in 0..3 {
            limiter.admit("a", A, t).unwrap();
        }
        let wait = limiter.admit("a", A, t).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        limiter.admit("b", A, t).unwrap();
        limiter.admit("a", A, t + Duration::from_secs(1)).unwrap();
        assert!(limiter.admit("a", A, t + Duration::from_secs(1)).is_err());
    }

    #[test]
    fn a_flood_of_made_up_keys_is_cut_per_peer_and_resets_no_real_key() {
        let limiter = Limiter::new(Limits {
            max_credentials: 50,
            ..limits()
        });
        let t = Instant::now();
        for _ in 0..3 {
            limiter.admit("real", B, t).unwrap();
        }
        assert!(limiter.admit("real", B, t).is_err(), "burst spent");
        let admitted = (0..10_000)
            .filter(|i| limiter.admit(&format!("bogus-{i}"), A, t).is_ok())
            .count();
        assert_eq!(admitted, 10, "the peer's burst of new credentials");
        assert!(
            limiter.admit("real", B, t).is_err(),
            "the real key's state survived the flood"
        );
        limiter
            .admit("real", B, t + Duration::from_secs(1))
            .unwrap();
        limiter.admit("other", B, t).unwrap();
    }

    #[test]
    fn a_full_table_drops_only_entries_that_are_as_good_as_fresh() {
        let limiter = Limiter::new(Limits {
            max_credentials: 3,
            new_burst_per_peer: 100,
            ..limits()
        });
        let t = Instant::now();
        for _ in 0..3 {
            limiter.admit("real", A, t).unwrap();
        }
        limiter.admit("x", A, t).unwrap();
        limiter.admit("y", A, t).unwrap();
        // Full of live entries: a new key waits, the real one is untouched.
        assert!(limiter.admit("z", A, t).is_err());
        assert!(limiter.admit("real", A, t).is_err(), "still spent");
        // Later x and y are as good as fresh and make room.
        let later = t + Duration::from_secs(2);
        limiter.admit("z", A, later).unwrap();
        assert!(
            limiter.admit("real", A, later).is_ok(),
            "its own rate allows one more by now"
        );
    }
}
