//! Per-credential request rates (GCRA): a tenant scripting the API cannot
//! starve the others. Kept per gateway replica: with N replicas behind a
//! balancer a credential gets up to N times the rate, which the rate is
//! sized for.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

/// Credentials tracked at most; past it the table is cleared (a burst of
/// bogus keys cannot grow memory).
const MAX_KEYS: usize = 100_000;

/// A rate of `per_minute` with `burst` requests at once.
pub struct Limiter {
    interval: Duration,
    tolerance: Duration,
    next: Mutex<HashMap<[u8; 32], Instant>>,
}

impl Limiter {
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let interval = Duration::from_secs(60) / per_minute.max(1);
        Self {
            interval,
            tolerance: interval * burst.max(1).saturating_sub(1),
            next: Mutex::default(),
        }
    }

    /// Admits one request of `credential` at `now`, or says how long to wait.
    pub fn admit(&self, credential: &str, now: Instant) -> Result<(), Duration> {
        // Keyed by digest: the table never holds a credential.
        let key: [u8; 32] = Sha256::digest(credential.as_bytes()).into();
        let mut next = self
            .next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if next.len() >= MAX_KEYS {
            next.clear();
        }
        let theoretical = next.get(&key).copied().unwrap_or(now).max(now);
        if theoretical > now + self.tolerance {
            return Err(theoretical - now - self.tolerance);
        }
        next.insert(key, theoretical + self.interval);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate_per_credential() {
        let limiter = Limiter::new(60, 3);
        let t = Instant::now();
        for _ in 0..3 {
            limiter.admit("a", t).unwrap();
        }
        let wait = limiter.admit("a", t).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        limiter.admit("b", t).unwrap();
        limiter.admit("a", t + Duration::from_secs(1)).unwrap();
        assert!(limiter.admit("a", t + Duration::from_secs(1)).is_err());
    }
}
