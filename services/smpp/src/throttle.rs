//! Submit pacing per SMS centre. SMS centres sell a rate (submits per
//! second) and answer ESME_RTHROTTLED past it; pacing on our side keeps
//! the link under the rate, and a throttled answer pauses the whole link.
//! The pacing is `governor`'s cell-rate limiter (`submits_per_second`, a
//! burst of `burst` back to back after a quiet spell), read on tokio's
//! clock so that paused-time tests and the runtime agree on "now".

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

/// Time since the throttle was made, on tokio's clock (governor's own
/// clocks read the OS clock, which `tokio::time::pause` does not stop).
#[derive(Debug, Clone, Copy)]
struct TokioClock(Instant);

impl Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>;

/// Paces one link.
#[derive(Debug)]
pub(crate) struct Throttle {
    limiter: Limiter,
    clock: TokioClock,
    /// The back-to-back allowance, taken away after a pause.
    burst: u32,
    /// No submit goes before this (the SMS centre said we were too fast).
    pause: Mutex<Pause>,
}

/// A pause the SMS centre asked for.
#[derive(Debug, Clone, Copy)]
struct Pause {
    until: Instant,
    /// The burst the pause let build up is still to be taken away.
    drain: bool,
}

impl Throttle {
    /// `per_second` submits a second, `burst` of them back to back.
    pub(crate) fn new(per_second: u32, burst: u32) -> Self {
        let quota = Quota::per_second(NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        let clock = TokioClock(Instant::now());
        Self {
            limiter: RateLimiter::direct_with_clock(quota, clock),
            clock,
            burst: burst.max(1),
            pause: Mutex::new(Pause {
                until: clock.0,
                drain: false,
            }),
        }
    }

    /// Waits for this submit's slot.
    pub(crate) async fn acquire(&self) {
        loop {
            let until = {
                let mut pause = self.lock_pause();
                if pause.until <= Instant::now() && pause.drain {
                    // A centre that just throttled us gets the rate after
                    // the pause, not a burst: all but this submit's cell go.
                    pause.drain = false;
                    for _ in 1..self.burst {
                        if self.limiter.check().is_err() {
                            break;
                        }
                    }
                }
                pause.until
            };
            if until > Instant::now() {
                tokio::time::sleep_until(until).await;
                // A pause set while this one slept holds this submit too.
                continue;
            }
            match self.limiter.check() {
                Ok(()) => return,
                Err(not_until) => {
                    tokio::time::sleep(not_until.wait_time_from(self.clock.now())).await;
                }
            }
        }
    }

    /// Holds every submit back for `pause`; after it the link sends at
    /// the rate, without the burst the quiet spell would otherwise earn.
    pub(crate) fn pause(&self, pause: Duration) {
        let mut held = self.lock_pause();
        held.until = held.until.max(Instant::now() + pause);
        held.drain = true;
    }

    fn lock_pause(&self) -> std::sync::MutexGuard<'_, Pause> {
        self.pause
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

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
        assert_eq!(elapsed_for(&throttle, 1).await, Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_submits_share_the_rate() {
        let throttle = Arc::new(Throttle::new(20, 1));
        let start = Instant::now();
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let throttle = throttle.clone();
                tokio::spawn(async move { throttle.acquire().await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        // One at once, nine more at 50 ms each: never faster than the rate.
        assert!(
            start.elapsed() >= Duration::from_millis(450),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_the_next_submit_and_a_longer_one_wins() {
        let throttle = Throttle::new(100, 5);
        throttle.pause(Duration::from_secs(2));
        throttle.pause(Duration::from_secs(1));
        assert_eq!(elapsed_for(&throttle, 1).await, Duration::from_secs(2));
        // After it, the rate (10 ms apart), not a burst: the centre
        // just said we were too fast.
        assert_eq!(elapsed_for(&throttle, 4).await, Duration::from_millis(40));
    }
}
