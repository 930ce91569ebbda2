//! Heartbeat adaptation, as push clients on mobile networks do it: the
//! longest interval that keeps the network's NAT mapping alive saves the
//! most battery and signalling. The device proposes an interval at each
//! hello; after a run of heartbeats that held it proposes a longer one
//! next time, after a connection lost silently (the mapping expired) a
//! shorter one; always within its own bounds, and the server clamps to
//! its bounds and says what it granted. Pure state, no I/O, no clock.

/// The adaptation state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    min: u32,
    max: u32,
    current: u32,
    held: u32,
    step_after: u32,
}

impl Heartbeat {
    /// Starts at `initial` seconds within `min..=max`; steps up after
    /// `step_after` heartbeats in a row held.
    pub fn new(initial: u32, min: u32, max: u32, step_after: u32) -> Self {
        let (min, max) = (min.max(1), max.max(min.max(1)));
        Self {
            min,
            max,
            current: initial.clamp(min, max),
            held: 0,
            step_after: step_after.max(1),
        }
    }

    /// The interval to propose in the next hello, seconds.
    pub fn proposal(&self) -> u32 {
        self.current
    }

    /// The server granted `seconds` (its clamp of the proposal): heartbeats
    /// go at that interval on this connection.
    pub fn granted(&mut self, seconds: u32) -> u32 {
        // A grant outside our bounds is the server's to make; we follow it
        // and keep proposing within ours.
        self.current = seconds.clamp(self.min, self.max);
        seconds.max(1)
    }

    /// A heartbeat was answered. Returns the longer interval to propose
    /// once enough have held in a row.
    pub fn held(&mut self) -> Option<u32> {
        self.held += 1;
        if self.held < self.step_after || self.current >= self.max {
            return None;
        }
        self.held = 0;
        // Half again, and at least a second: short intervals grow too.
        self.current = (self.current + (self.current / 2).max(1)).min(self.max);
        Some(self.current)
    }

    /// The connection died without a close (a heartbeat unanswered, a
    /// read that timed out): the interval was too long for this network.
    pub fn timed_out(&mut self) -> u32 {
        self.held = 0;
        self.current = (self.current / 2).max(self.min);
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_up_after_a_run_and_backs_off_after_a_timeout() {
        let mut hb = Heartbeat::new(60, 60, 1_800, 3);
        assert_eq!(hb.proposal(), 60);
        assert_eq!(hb.held(), None);
        assert_eq!(hb.held(), None);
        assert_eq!(hb.held(), Some(90));
        assert_eq!(hb.proposal(), 90);
        for _ in 0..3 {
            hb.held();
        }
        assert_eq!(hb.proposal(), 135);
        assert_eq!(hb.timed_out(), 67);
        assert_eq!(hb.timed_out(), 60, "never below the minimum");
        // The run restarts after a timeout.
        assert_eq!(hb.held(), None);
    }

    #[test]
    fn stays_within_its_bounds_and_follows_the_grant() {
        let mut hb = Heartbeat::new(5_000, 60, 1_800, 1);
        assert_eq!(hb.proposal(), 1_800);
        assert_eq!(hb.held(), None, "already at the maximum");
        // The server clamps to its own bounds (say 600): the device uses it.
        assert_eq!(hb.granted(600), 600);
        assert_eq!(hb.proposal(), 600);
        assert_eq!(hb.held(), Some(900));
        assert_eq!(hb.granted(30), 30, "a shorter grant is obeyed");
        assert_eq!(hb.proposal(), 60, "and proposals stay within ours");
    }
}
