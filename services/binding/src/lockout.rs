//! Failure budgets against guessing: each key (a username, a peer address)
//! may fail `max_failures` times in a window; then every attempt is refused
//! until the window that started with its first failure ends. In memory,
//! bounded, per replica.

use std::time::{Duration, Instant};

/// Failure counters by key.
pub(crate) struct Lockout {
    failures: quick_cache::sync::Cache<String, (u32, Instant)>,
    max_failures: u32,
    window: Duration,
}

impl std::fmt::Debug for Lockout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lockout")
            .field("max_failures", &self.max_failures)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl Lockout {
    /// Budgets of `max_failures` per `window`, for at most `capacity` keys.
    pub(crate) fn new(max_failures: u32, window: Duration, capacity: usize) -> Self {
        Self {
            failures: quick_cache::sync::Cache::new(capacity.max(1)),
            max_failures,
            window,
        }
    }

    /// `Err(wait)` while `key` is locked out.
    pub(crate) fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        match self.failures.get(key) {
            Some((count, since)) if count >= self.max_failures => {
                let ends = since + self.window;
                if now < ends { Err(ends - now) } else { Ok(()) }
            }
            _ => Ok(()),
        }
    }

    /// Counts a failure of `key`.
    pub(crate) fn fail(&self, key: &str, now: Instant) {
        let next = match self.failures.get(key) {
            Some((count, since)) if now < since + self.window => (count.saturating_add(1), since),
            _ => (1, now),
        };
        self.failures.insert(key.to_owned(), next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_locked_out_after_its_budget_until_the_window_ends() {
        let lockout = Lockout::new(3, Duration::from_secs(60), 100);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(lockout.check("user:a", start), Ok(()));
            lockout.fail("user:a", start);
        }
        let later = start + Duration::from_secs(20);
        assert_eq!(lockout.check("user:a", later), Err(Duration::from_secs(40)));
        assert_eq!(lockout.check("user:b", later), Ok(()), "keys apart");
        assert_eq!(
            lockout.check("user:a", start + Duration::from_secs(60)),
            Ok(())
        );
        lockout.fail("user:a", start + Duration::from_secs(61));
        assert_eq!(
            lockout.check("user:a", start + Duration::from_secs(62)),
            Ok(()),
            "a new window starts afresh"
        );
    }
}
