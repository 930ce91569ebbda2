//! Per-credential request rates (GCRA, by `governor`): a tenant scripting
//! the API cannot starve the others. Kept per gateway replica: with N
//! replicas behind a balancer a credential gets up to N times the rate,
//! which the rate is sized for.
//!
//! The table of credentials is bounded without ever resetting a live
//! entry: a credential the table does not hold yet is charged to its
//! peer's budget of new credentials first (so one address sending a flood
//! of made-up keys is answered 429 after that budget, before anything is
//! asked of binding), and when the table is full only entries whose state
//! equals a fresh one are dropped (`retain_recent`); if none has, the new
//! credential waits. Clearing the table instead would hand every real key
//! a fresh burst whenever someone sent enough made-up ones. The same
//! trimming runs on a timer ([`Limiter::forget_idle_every`]) so memory
//! follows the keys in use, not every key ever seen.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::{DashMapStateStore, ShrinkableKeyedStateStore};
use governor::{Quota, RateLimiter};
use pushmail_common::listen::PeerKey;
use sha2::{Digest as _, Sha256};

/// A keyed state store the limiter shares with its owner, which is how
/// the owner can ask whether a key is tracked (governor's limiter does
/// not say).
struct Shared<K: Hash + Eq + Clone>(Arc<DashMapStateStore<K>>);

impl<K: Hash + Eq + Clone> StateStore for Shared<K> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        self.0.measure_and_replace(key, f)
    }
}

impl<K: Hash + Eq + Clone> ShrinkableKeyedStateStore<K> for Shared<K> {
    fn retain_recent(&self, drop_below: Nanos) {
        ShrinkableKeyedStateStore::retain_recent(&*self.0, drop_below);
    }

    fn shrink_to_fit(&self) {
        ShrinkableKeyedStateStore::shrink_to_fit(&*self.0);
    }

    fn len(&self) -> usize {
        ShrinkableKeyedStateStore::len(&*self.0)
    }

    fn is_empty(&self) -> bool {
        ShrinkableKeyedStateStore::is_empty(&*self.0)
    }
}

/// One keyed GCRA limiter holding at most `max` keys.
struct Table<K: Hash + Eq + Clone, C: Clock> {
    limiter: RateLimiter<K, Shared<K>, C, NoOpMiddleware<C::Instant>>,
    store: Arc<DashMapStateStore<K>>,
    interval: Duration,
    max: usize,
}

impl<K: Hash + Eq + Clone, C: Clock> Table<K, C> {
    fn new(per_minute: u32, burst: u32, max: usize, clock: C) -> Self {
        let nonzero = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(nonzero(per_minute)).allow_burst(nonzero(burst));
        let store = Arc::new(DashMapStateStore::default());
        Self {
            limiter: RateLimiter::new(quota, Shared(store.clone()), clock),
            store,
            interval: quota.replenish_interval(),
            max: max.max(1),
        }
    }

    fn contains(&self, key: &K) -> bool {
        self.store.contains_key(key)
    }

    /// Admits one request of `key` now, or says how long to wait. Racing
    /// admissions of new keys may pass `max` by their number, not more.
    fn admit(&self, key: &K) -> Result<(), Duration> {
        if !self.contains(key) && self.limiter.len() >= self.max {
            self.forget_idle();
            if self.limiter.len() >= self.max {
                return Err(self.interval);
            }
        }
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    /// Drops the entries that are as good as fresh: no one's rate changes.
    fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
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
pub struct Limiter<C: Clock = MonotonicClock> {
    credentials: Table<[u8; 32], C>,
    peers: Table<PeerKey, C>,
}

impl Limiter {
    /// A limiter with `limits` on the process's monotonic clock.
    pub fn new(limits: Limits) -> Self {
        Self::with_clock(limits, MonotonicClock)
    }
}

impl<C: Clock + Clone> Limiter<C> {
    /// A limiter with `limits` on `clock`.
    pub fn with_clock(limits: Limits, clock: C) -> Self {
        Self {
            credentials: Table::new(
                limits.per_minute,
                limits.burst,
                limits.max_credentials,
                clock.clone(),
            ),
            // Peers are fewer than credentials; their table is as large.
            peers: Table::new(
                limits.new_per_minute_per_peer,
                limits.new_burst_per_peer,
                limits.max_credentials,
                clock,
            ),
        }
    }

    /// Admits one request of `credential` from `peer`, or says how long
    /// to wait.
    pub fn admit(&self, credential: &str, peer: Option<IpAddr>) -> Result<(), Duration> {
        // Keyed by digest: the table never holds a credential.
        let key: [u8; 32] = Sha256::digest(credential.as_bytes()).into();
        if !self.credentials.contains(&key)
            && let Some(peer) = peer
        {
            self.peers.admit(&PeerKey::of(peer))?;
        }
        self.credentials.admit(&key)
    }

    /// How many credentials the table holds.
    pub fn tracked_credentials(&self) -> usize {
        self.credentials.limiter.len()
    }

    /// Drops the credentials and peers whose state is as good as fresh.
    pub fn forget_idle(&self) {
        self.credentials.forget_idle();
        self.peers.forget_idle();
    }

    /// Runs [`Self::forget_idle`] every `every` until `shutdown`.
    pub async fn forget_idle_every(
        &self,
        every: Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            self.forget_idle();
            tracing::debug!(
                tracked = self.tracked_credentials(),
                "idle request rates dropped"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

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

    fn at(limits: Limits) -> (Limiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (Limiter::with_clock(limits, clock.clone()), clock)
    }

    const A: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)));
    const B: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)));

    #[test]
    fn a_burst_then_the_rate_per_credential() {
        let (limiter, clock) = at(limits());
        for _ in 0..3 {
            limiter.admit("a", A).unwrap();
        }
        let wait = limiter.admit("a", A).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        limiter.admit("b", A).unwrap();
        clock.advance(Duration::from_millis(999));
        assert_eq!(limiter.admit("a", A).unwrap_err(), Duration::from_millis(1));
        clock.advance(Duration::from_millis(1));
        limiter.admit("a", A).unwrap();
        assert!(limiter.admit("a", A).is_err());
    }

    #[test]
    fn a_flood_of_made_up_keys_is_cut_per_peer_and_resets_no_real_key() {
        let (limiter, clock) = at(Limits {
            max_credentials: 50,
            ..limits()
        });
        for _ in 0..3 {
            limiter.admit("real", B).unwrap();
        }
        assert!(limiter.admit("real", B).is_err(), "burst spent");
        let admitted = (0..10_000)
            .filter(|i| limiter.admit(&format!("bogus-{i}"), A).is_ok())
            .count();
        assert_eq!(admitted, 10, "the peer's burst of new credentials");
        assert!(
            limiter.admit("real", B).is_err(),
            "the real key's state survived the flood"
        );
        limiter.admit("other", B).unwrap();
        clock.advance(Duration::from_secs(1));
        limiter.admit("real", B).unwrap();
    }

    #[test]
    fn a_full_table_drops_only_entries_that_are_as_good_as_fresh() {
        let (limiter, clock) = at(Limits {
            max_credentials: 3,
            new_burst_per_peer: 100,
            ..limits()
        });
        for _ in 0..3 {
            limiter.admit("real", A).unwrap();
        }
        limiter.admit("x", A).unwrap();
        limiter.admit("y", A).unwrap();
        // Full of live entries: a new key waits, the real one is untouched.
        assert_eq!(limiter.admit("z", A), Err(Duration::from_secs(1)));
        assert!(limiter.admit("real", A).is_err(), "still spent");
        // Later x and y are as good as fresh and make room.
        clock.advance(Duration::from_secs(2));
        limiter.admit("z", A).unwrap();
        assert_eq!(limiter.tracked_credentials(), 2, "real and z");
        limiter
            .admit("real", A)
            .expect("its own rate allows more by now");
    }

    #[test]
    fn housekeeping_forgets_idle_credentials_and_keeps_live_ones() {
        let (limiter, clock) = at(limits());
        for _ in 0..3 {
            limiter.admit("busy", A).unwrap();
        }
        limiter.admit("idle", A).unwrap();
        limiter.forget_idle();
        assert_eq!(limiter.tracked_credentials(), 2, "both live at first");
        clock.advance(Duration::from_secs(2));
        limiter.forget_idle();
        assert_eq!(limiter.tracked_credentials(), 1, "idle one dropped");
        // The busy key kept its state: two more now, not a fresh three.
        limiter.admit("busy", A).unwrap();
        limiter.admit("busy", A).unwrap();
        assert!(limiter.admit("busy", A).is_err());
    }
}
