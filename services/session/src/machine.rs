//! One device connection's logic, free of I/O: frames, deliveries and the
//! clock go in, actions come out. The connection driver (`ws.rs`) does the
//! sending, the directory and the waiting; this file decides. Time is passed
//! in, so tests run it with tokio's paused clock.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::protocol::{ClientFrame, ErrorCode, ServerFrame, WireNotification};

/// The limits every session is held to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Shortest heartbeat interval granted.
    pub hb_min: Duration,
    /// Longest heartbeat interval granted.
    pub hb_max: Duration,
    /// A heartbeat may be this late before the connection is dropped.
    pub grace: Duration,
    /// The hello must arrive within this.
    pub hello_timeout: Duration,
    /// Most frames a device may send per `flood_window`.
    pub flood_frames: u32,
    /// The window frames are counted in.
    pub flood_window: Duration,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            hb_min: Duration::from_secs(60),
            hb_max: Duration::from_secs(3_540),
            grace: Duration::from_secs(30),
            hello_timeout: Duration::from_secs(10),
            flood_frames: 30,
            flood_window: Duration::from_secs(10),
        }
    }
}

impl Rules {
    /// The interval granted for a proposal (seconds), clamped to the bounds.
    pub fn clamp(&self, proposed_seconds: u32) -> Duration {
        Duration::from_secs(u64::from(proposed_seconds)).clamp(self.hb_min, self.hb_max)
    }
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Write a frame.
    Send(ServerFrame),
    /// The device said hello: register it, replay what is after `last_ack`.
    Opened {
        /// The device's cursor.
        last_ack: u64,
        /// The interval granted.
        hb: Duration,
        /// The device's network, for heartbeat statistics.
        net: String,
    },
    /// The device holds everything up to `through`.
    Acked {
        /// Highest acked sequence.
        through: u64,
    },
    /// A heartbeat came in time: renew the directory lease.
    Renew,
    /// A heartbeat interval held on the device's network (statistics).
    Held {
        /// The interval that held.
        hb: Duration,
    },
    /// The device missed its heartbeat (statistics), after which the connection closes.
    Missed {
        /// The interval that did not hold.
        hb: Duration,
    },
    /// Answer a WebSocket ping with this payload.
    Pong(Vec<u8>),
    /// Close the connection.
    Close(ErrorCode),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitingHello,
    Open,
    Closed,
}

/// One connection's state.
#[derive(Debug)]
pub struct Machine {
    rules: Arc<Rules>,
    state: State,
    hb: Duration,
    deadline: Instant,
    last_ack: u64,
    highest_sent: u64,
    window_start: Instant,
    frames_in_window: u32,
}

/// A delivery could not be written: the session is not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotOpen;

impl Machine {
    /// A connection accepted at `now`, waiting for hello.
    pub fn new(rules: Arc<Rules>, now: Instant) -> Self {
        let deadline = now + rules.hello_timeout;
        Self {
            rules,
            state: State::AwaitingHello,
            hb: Duration::ZERO,
            deadline,
            last_ack: 0,
            highest_sent: 0,
            window_start: now,
            frames_in_window: 0,
        }
    }

    /// When [`Machine::on_tick`] must next be called.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The granted heartbeat interval (zero before hello).
    pub fn heartbeat(&self) -> Duration {
        self.hb
    }

    /// Whether the session is open (hello done, not closed).
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    fn close(&mut self, code: ErrorCode, message: impl Into<String>) -> Vec<Action> {
        self.state = State::Closed;
        vec![
            Action::Send(ServerFrame::error(code, message)),
            Action::Close(code),
        ]
    }

    /// Counts a frame in the flood window; true once there are too many.
    fn flooded(&mut self, now: Instant) -> bool {
        if now.duration_since(self.window_start) >= self.rules.flood_window {
            self.window_start = now;
            self.frames_in_window = 0;
        }
        self.frames_in_window += 1;
        self.frames_in_window > self.rules.flood_frames
    }

    fn flood(&mut self) -> Vec<Action> {
        self.close(
            ErrorCode::Flood,
            "too many frames; heartbeat at the granted interval",
        )
    }

    /// A WebSocket ping (answered with a pong) or pong arrived. They count
    /// toward the flood limit like frames: each costs a read and a write.
    pub fn on_control(&mut self, now: Instant, ping: Option<Vec<u8>>) -> Vec<Action> {
        if self.state == State::Closed {
            return Vec::new();
        }
        if self.flooded(now) {
            return self.flood();
        }
        ping.map(Action::Pong).into_iter().collect()
    }

    /// A frame arrived (or failed to parse).
    pub fn on_frame(
        &mut self,
        now: Instant,
        frame: Result<ClientFrame, crate::protocol::FrameError>,
    ) -> Vec<Action> {
        if self.state == State::Closed {
            return Vec::new();
        }
        // An ack of a notification sent and not yet acked answers the
        // server: a burst of mail brings a burst of acks, which is no flood.
        let answers = matches!(
            frame,
            Ok(ClientFrame::Ack { seq }) if self.state == State::Open && seq > self.last_ack && seq <= self.highest_sent
        );
        if !answers && self.flooded(now) {
            return self.flood();
        }
        let frame = match frame {
            Ok(frame) => frame,
            Err(err) => return self.close(err.code, err.message),
        };
        match (self.state, frame) {
            (State::AwaitingHello, ClientFrame::Hello { last_ack, hb, net }) => {
                self.state = State::Open;
                self.hb = self.rules.clamp(hb);
                self.deadline = now + self.hb + self.rules.grace;
                self.last_ack = last_ack;
                self.highest_sent = last_ack;
                vec![Action::Opened {
                    last_ack,
                    hb: self.hb,
                    net,
                }]
            }
            (State::AwaitingHello, _) | (State::Open, ClientFrame::Hello { .. }) => self.close(
                ErrorCode::ExpectedHello,
                "hello must be the first frame, and only the first",
            ),
            (State::Open, ClientFrame::Hb) => {
                self.deadline = now + self.hb + self.rules.grace;
                vec![
                    Action::Send(ServerFrame::Hb),
                    Action::Renew,
                    Action::Held { hb: self.hb },
                ]
            }
            (State::Open, ClientFrame::Ack { seq }) if seq > self.highest_sent => {
                vec![Action::Send(ServerFrame::error(
                    ErrorCode::UnknownSequence,
                    format!("sequence {seq} was never sent"),
                ))]
            }
            (State::Open, ClientFrame::Ack { seq }) if seq <= self.last_ack => Vec::new(),
            (State::Open, ClientFrame::Ack { seq }) => {
                self.last_ack = seq;
                vec![Action::Acked { through: seq }]
            }
            (State::Closed, _) => Vec::new(),
        }
    }

    /// A notification to write. One the device already acked is reported
    /// acked at once instead of sent again.
    pub fn on_deliver(&mut self, notification: WireNotification) -> Result<Vec<Action>, NotOpen> {
        if self.state != State::Open {
            return Err(NotOpen);
        }
        if notification.seq <= self.last_ack {
            return Ok(vec![Action::Acked {
                through: self.last_ack,
            }]);
        }
        self.highest_sent = self.highest_sent.max(notification.seq);
        Ok(vec![Action::Send(ServerFrame::N(Box::new(notification)))])
    }

    /// The clock reached [`Machine::deadline`] (or later).
    pub fn on_tick(&mut self, now: Instant) -> Vec<Action> {
        if now < self.deadline {
            return Vec::new();
        }
        match self.state {
            State::AwaitingHello => self.close(ErrorCode::ExpectedHello, "no hello in time"),
            State::Open => {
                let hb = self.hb;
                let mut actions = vec![Action::Missed { hb }];
                actions.extend(self.close(
                    ErrorCode::HeartbeatMissed,
                    "no heartbeat within the interval",
                ));
                actions
            }
            State::Closed => Vec::new(),
        }
    }

    /// The node is draining: tell the device to come back after `after`.
    pub fn on_drain(&mut self, after: Duration) -> Vec<Action> {
        if self.state == State::Closed {
            return Vec::new();
        }
        self.state = State::Closed;
        vec![
            Action::Send(ServerFrame::Reconnect {
                after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
                reason: "drain".to_owned(),
            }),
            Action::Close(ErrorCode::Draining),
        ]
    }

    /// The device was revoked while connected.
    pub fn on_revoked(&mut self) -> Vec<Action> {
        if self.state == State::Closed {
            return Vec::new();
        }
        self.close(ErrorCode::Revoked, "the device was revoked")
    }

    /// Another connection of the device took over.
    pub fn on_taken_over(&mut self) -> Vec<Action> {
        if self.state == State::Closed {
            return Vec::new();
        }
        self.close(ErrorCode::TakenOver, "the device connected again elsewhere")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(now: Instant, proposed: u32) -> Machine {
        let mut m = Machine::new(Arc::new(Rules::default()), now);
        let actions = m.on_frame(
            now,
            Ok(ClientFrame::Hello {
                last_ack: 5,
                hb: proposed,
                net: "46000-lte".into(),
            }),
        );
        assert!(
            matches!(actions[0], Action::Opened { last_ack: 5, .. }),
            "{actions:?}"
        );
        m
    }

    fn n(seq: u64) -> WireNotification {
        WireNotification {
            seq,
            account: "a".into(),
            ..Default::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeat_is_clamped_and_enforced_with_grace() {
        let start = Instant::now();
        assert_eq!(
            open(start, 5).heartbeat(),
            Duration::from_secs(60),
            "raised to the minimum"
        );
        assert_eq!(
            open(start, 99_999).heartbeat(),
            Duration::from_secs(3_540),
            "lowered to the maximum"
        );
        let mut m = open(start, 300);
        assert_eq!(m.heartbeat(), Duration::from_secs(300));

        tokio::time::advance(Duration::from_secs(320)).await;
        assert!(
            m.on_tick(Instant::now()).is_empty(),
            "late but within grace"
        );
        let actions = m.on_frame(Instant::now(), Ok(ClientFrame::Hb));
        assert_eq!(actions[..2], [Action::Send(ServerFrame::Hb), Action::Renew]);
        assert_eq!(m.deadline(), Instant::now() + Duration::from_secs(330));

        tokio::time::advance(Duration::from_secs(329)).await;
        assert!(m.on_tick(Instant::now()).is_empty());
        tokio::time::advance(Duration::from_secs(1)).await;
        let actions = m.on_tick(Instant::now());
        assert_eq!(
            actions[0],
            Action::Missed {
                hb: Duration::from_secs(300)
            }
        );
        assert_eq!(
            actions.last(),
            Some(&Action::Close(ErrorCode::HeartbeatMissed))
        );
        assert!(
            m.on_deliver(n(9)).is_err(),
            "closed sessions take no deliveries"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn hello_must_come_first_and_in_time() {
        let mut m = Machine::new(Arc::new(Rules::default()), Instant::now());
        assert_eq!(m.on_deliver(n(1)), Err(NotOpen));
        let actions = m.on_frame(Instant::now(), Ok(ClientFrame::Hb));
        assert_eq!(
            actions.last(),
            Some(&Action::Close(ErrorCode::ExpectedHello))
        );

        let mut m = Machine::new(Arc::new(Rules::default()), Instant::now());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(
            m.on_tick(Instant::now()).last(),
            Some(&Action::Close(ErrorCode::ExpectedHello))
        );

        let mut m = open(Instant::now(), 60);
        let again = m.on_frame(
            Instant::now(),
            Ok(ClientFrame::Hello {
                last_ack: 0,
                hb: 60,
                net: String::new(),
            }),
        );
        assert_eq!(again.last(), Some(&Action::Close(ErrorCode::ExpectedHello)));
    }

    #[tokio::test(start_paused = true)]
    async fn acks_are_cumulative_and_checked() {
        let mut m = open(Instant::now(), 60);
        assert!(matches!(
            m.on_deliver(n(6)).unwrap()[0],
            Action::Send(ServerFrame::N(_))
        ));
        m.on_deliver(n(7)).unwrap();
        let unknown = m.on_frame(Instant::now(), Ok(ClientFrame::Ack { seq: 8 }));
        assert!(matches!(
            &unknown[0],
            Action::Send(ServerFrame::Error {
                code: ErrorCode::UnknownSequence,
                ..
            })
        ));
        assert!(m.is_open(), "an unknown ack is answered, not fatal");
        assert_eq!(
            m.on_frame(Instant::now(), Ok(ClientFrame::Ack { seq: 7 })),
            [Action::Acked { through: 7 }]
        );
        assert!(
            m.on_frame(Instant::now(), Ok(ClientFrame::Ack { seq: 6 }))
                .is_empty(),
            "old acks are harmless"
        );
        assert_eq!(
            m.on_deliver(n(4)).unwrap(),
            [Action::Acked { through: 7 }],
            "already held: not resent"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn floods_and_garbage_close_the_connection() {
        let mut m = open(Instant::now(), 60);
        for _ in 0..29 {
            assert!(
                m.on_frame(Instant::now(), Ok(ClientFrame::Hb))
                    .iter()
                    .all(|a| !matches!(a, Action::Close(_)))
            );
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        for _ in 0..30 {
            m.on_frame(Instant::now(), Ok(ClientFrame::Hb));
        }
        assert!(m.is_open(), "the window moved on");
        assert_eq!(
            m.on_frame(Instant::now(), Ok(ClientFrame::Hb)).last(),
            Some(&Action::Close(ErrorCode::Flood))
        );

        let mut m = open(Instant::now(), 60);
        let bad = ClientFrame::parse("{nope");
        assert_eq!(
            m.on_frame(Instant::now(), bad).last(),
            Some(&Action::Close(ErrorCode::Malformed))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn pings_are_answered_and_count_toward_the_flood_limit() {
        let mut m = open(Instant::now(), 60);
        assert_eq!(
            m.on_control(Instant::now(), Some(b"?".to_vec())),
            [Action::Pong(b"?".to_vec())]
        );
        assert!(m.on_control(Instant::now(), None).is_empty(), "a pong");
        // hello, the ping and the pong were three of the window's 30.
        for _ in 0..27 {
            m.on_frame(Instant::now(), Ok(ClientFrame::Hb));
        }
        assert!(m.is_open());
        assert_eq!(
            m.on_control(Instant::now(), Some(Vec::new())).last(),
            Some(&Action::Close(ErrorCode::Flood)),
            "the 31st frame in the window, though a ping"
        );
        assert!(
            m.on_control(Instant::now(), Some(Vec::new())).is_empty(),
            "closed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn acks_answering_a_burst_of_mail_are_no_flood() {
        let mut m = open(Instant::now(), 60);
        // The helper opens with last_ack 5.
        for seq in 6..=200 {
            m.on_deliver(n(seq)).unwrap();
            let actions = m.on_frame(Instant::now(), Ok(ClientFrame::Ack { seq }));
            assert_eq!(actions, [Action::Acked { through: seq }], "ack {seq}");
        }
        // Repeated acks of what is already acked answer nothing: they count.
        for _ in 0..29 {
            m.on_frame(Instant::now(), Ok(ClientFrame::Ack { seq: 200 }));
        }
        assert_eq!(
            m.on_frame(Instant::now(), Ok(ClientFrame::Ack { seq: 200 }))
                .last(),
            Some(&Action::Close(ErrorCode::Flood))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn drain_and_take_over_say_why() {
        let mut m = open(Instant::now(), 60);
        let actions = m.on_drain(Duration::from_millis(1_500));
        assert_eq!(
            actions[0],
            Action::Send(ServerFrame::Reconnect {
                after_ms: 1_500,
                reason: "drain".into()
            })
        );
        assert!(m.on_drain(Duration::ZERO).is_empty(), "once");
        let mut m = open(Instant::now(), 60);
        assert_eq!(
            m.on_taken_over().last(),
            Some(&Action::Close(ErrorCode::TakenOver))
        );
    }
}
