//! Submit pacing per SMS centre. SMS centres sell a rate (submits per
//! second) and answer ESME_RTHROTTLED past it; pacing on our side keeps
//! the link under the rate, and a throttled answer pauses the whole link.
//! A generic cell-rate algorithm: each submit reserves the next slot, a
//! burst of `burst` submits may go back to back after an idle spell.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Paces one link.
#[derive(Debug)]
pub(crate) struct Throttle {
    interval: Duration,
    tolerance: Duration,
    /// The theoretical arrival time: when the next submit would go were
    /// there no burst allowance.
    due: Mutex<Instant>,
}

impl Throttle {
    /// `per_second` submits a second, `burst` of them back to back.
    pub(crate) fn new(per_second: u32, burst: u32) -> Self {
        let interval = Duration::from_secs(1) / per_second.max(1);
        Self {
            interval,
            tolerance: interval * burst.max(1).saturating_sub(1),
            due: Mutex::new(Instant::now()),
        }
    }

    /// Waits for this submit's slot.
    pub(crate) async fn acquire(&self) {
        let send = {
            let mut due = self
                .due
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            let send = due.checked_sub(self.tolerance).map_or(now, |t| t.max(now));
            *due = (*due).max(send) + self.interval;
            send
        };
        tokio::time::sleep_until(send).await;
    }

    /// Holds every submit back for `pause` (the SMS centre said we were too fast).
    pub(crate) fn pause(&self, pause: Duration) {
        let mut due = self
            .due
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *due = (*due).max(Instant::now() + pause + self.tolerance);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn elapsed_for(throttle: &Throttle, submits: usize) -> Duration {
        let start = Instant::now();
        for _ in 0..submits {
            throttle.acquire().await;
        }
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn submits_are_spaced_at_the_rate_after_the_burst() {
        let throttle = Throttle::new(10, 3);
        // Three at once, then one per 100 ms.
        assert_eq!(elapsed_for(&throttle, 3).await, Duration::ZERO);
        assert_eq!(elapsed_for(&throttle, 5).await, Duration::from_millis(500));
        // An idle second earns the burst back.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(elapsed_for(&throttle, 3).await, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_the_next_submit() {
        let throttle = Throttle::new(100, 5);
        throttle.pause(Duration::from_secs(2));
        assert_eq!(elapsed_for(&throttle, 1).await, Duration::from_secs(2));
    }
}
