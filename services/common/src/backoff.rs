//! The one retry schedule: delays that double from `initial` up to `max`,
//! each drawn at random from its upper half, so replicas retrying the same
//! outage spread out instead of returning in step. Every retry loop (the
//! bus consumer, dispatch, the IMAP watchers, the POP3 poller, the SMPP
//! link) waits by it.

use std::time::Duration;

/// A doubling, capped, jittered backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure (before jitter).
    pub initial: Duration,
    /// Cap of the doubling delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// From `initial` doubling up to `max`.
    pub const fn new(initial: Duration, max: Duration) -> Self {
        Self { initial, max }
    }

    /// The longest wait after `failures` failures in a row (at least one):
    /// `initial`, doubled per further failure, capped at `max`.
    pub fn ceiling(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(32);
        self.initial
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(self.max)
    }

    /// The wait after `failures` failures in a row: a random point of the
    /// upper half of [`Backoff::ceiling`].
    pub fn delay(&self, failures: u32) -> Duration {
        let ceiling = self.ceiling(failures);
        if ceiling.is_zero() {
            return ceiling;
        }
        rand::random_range(ceiling / 2..=ceiling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_initial_up_to_the_cap() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let ceilings: Vec<u128> = (1..=6).map(|n| backoff.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(backoff.ceiling(0), Duration::from_millis(100));
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn each_delay_is_in_the_upper_half_of_its_ceiling() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        for failures in 1..10 {
            let ceiling = backoff.ceiling(failures);
            for _ in 0..100 {
                let delay = backoff.delay(failures);
                assert!(
                    delay >= ceiling / 2 && delay <= ceiling,
                    "{delay:?} of {ceiling:?}"
                );
            }
        }
        let none = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(none.delay(3), Duration::ZERO);
    }
}
