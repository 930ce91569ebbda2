//! One device connection's logic, free of I/O: frames, deliveries, outbox
//! reads and the clock go in, actions come out. The connection driver
//! (`conn.rs`) does the sending, the reading, the directory and the
//! waiting; this file decides. Time is passed in, so tests run it with
//! tokio's paused clock.
//!
//! Sequences count within an outbox generation, and the connection has
//! one: the outbox's as read at hello. A delivery of another generation
//! means the outbox was recreated (or the delivery is from a lost one): the
//! outbox is read again, and if its generation moved on the device is told
//! to resync and gets the replay in the new one. A sequence is taken as
//! acked only when the device acked it in the connection's generation.

use std::sync::Arc;
use std::time::Duration;

use pushmail_outbox::{Cursor, Replay};
use tokio::time::Instant;

use crate::protocol::{ClientFrame, ErrorCode, ServerFrame, WireNotification};

/// The limits every session is held to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rules {
    /// Shortest heartbeat interval granted.
    pub(crate) hb_min: Duration,
    /// Longest heartbeat interval granted.
    pub(crate) hb_max: Duration,
    /// A heartbeat may be this late before the connection is dropped.
    pub(crate) grace: Duration,
    /// The hello must arrive within this.
    pub(crate) hello_timeout: Duration,
    /// Most frames a device may send per `flood_window`.
    pub(crate) flood_frames: u32,
    /// The window frames are counted in.
    pub(crate) flood_window: Duration,
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
    pub(crate) fn clamp(&self, proposed_seconds: u32) -> Duration {
        Duration::from_secs(u64::from(proposed_seconds)).clamp(self.hb_min, self.hb_max)
    }
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    /// Write a frame.
    Send(ServerFrame),
    /// The device said hello: register it, read the outbox at `cursor`,
    /// send the welcome and hand the read to [`Machine::on_replay`].
    Opened {
        /// The device's cursor.
        cursor: Cursor,
        /// The interval granted.
        hb: Duration,
        /// The device's network, for heartbeat statistics.
        net: String,
    },
    /// The device holds everything up to `through` of `generation`.
    Acked {
        /// The generation it counts in (the connection's).
        generation: u64,
        /// Highest acked sequence.
        through: u64,
    },
    /// The outbox's generation changed under the connection: the
    /// notifications sent in the old one and not acked will not be.
    Abandon,
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
pub(crate) struct Machine {
    rules: Arc<Rules>,
    state: State,
    hb: Duration,
    deadline: Instant,
    /// The outbox generation the sequences below count in (0 until the
    /// hello's read is in).
    generation: u64,
    last_ack: u64,
    highest_sent: u64,
    /// A generation a reread found gone: its deliveries are refused
    /// without reading again.
    stale: u64,
    window_start: Instant,
    frames_in_window: u32,
}

/// What becomes of a delivery.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Delivery {
    /// Carry out the actions (the write) and wait for the device's ack.
    Await(Vec<Action>),
    /// The device acked it already, in this generation.
    Acked,
    /// Of another generation than the connection's: read the outbox at
    /// `cursor`, hand it to [`Machine::on_replay`] with the delivery's
    /// generation, then offer the notification again.
    Reread {
        /// The connection's cursor.
        cursor: Cursor,
        /// The notification, given back.
        notification: Box<WireNotification>,
    },
    /// Not for this connection: it is not open, or the notification is of
    /// an outbox generation that is gone.
    Refused,
}

impl Machine {
    /// A connection accepted at `now`, waiting for hello.
    pub(crate) fn new(rules: Arc<Rules>, now: Instant) -> Self {
        let deadline = now + rules.hello_timeout;
        Self {
            rules,
            state: State::AwaitingHello,
            hb: Duration::ZERO,
            deadline,
            generation: 0,
            last_ack: 0,
            highest_sent: 0,
            stale: 0,
            window_start: now,
            frames_in_window: 0,
        }
    }

    /// When [`Machine::on_tick`] must next be called.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The granted heartbeat interval (zero before hello).
    pub(crate) fn heartbeat(&self) -> Duration {
        self.hb
    }

    /// Whether the session is open (hello done, not closed).
    #[cfg(test)]
    pub(crate) fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// The device's cursor as the connection holds it.
    pub(crate) fn cursor(&self) -> Cursor {
        Cursor {
            generation: self.generation,
            seq: self.last_ack,
        }
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
    pub(crate) fn on_control(&mut self, now: Instant, ping: Option<Vec<u8>>) -> Vec<Action> {
        if self.state == State::Closed {
            return Vec::new();
        }
        if self.flooded(now) {
            return self.flood();
        }
        ping.map(Action::Pong).into_iter().collect()
    }

    /// A frame arrived (or failed to parse).
    pub(crate) fn on_frame(
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
            Ok(ClientFrame::Ack { seq, generation }) if self.state == State::Open
                && self.acks_here(generation) && seq > self.last_ack && seq <= self.highest_sent
        );
        if !answers && self.flooded(now) {
            return self.flood();
        }
        let frame = match frame {
            Ok(frame) => frame,
            Err(err) => return self.close(err.code, err.message),
        };
        match (self.state, frame) {
            (
                State::AwaitingHello,
                ClientFrame::Hello {
                    last_ack,
                    generation,
                    hb,
                    net,
                },
            ) => {
                self.state = State::Open;
                self.hb = self.rules.clamp(hb);
                self.deadline = now + self.hb + self.rules.grace;
                vec![Action::Opened {
                    cursor: Cursor {
                        generation,
                        seq: last_ack,
                    },
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
            // Sent before the device read of the new generation: its
            // sequences are not this generation's.
            (State::Open, ClientFrame::Ack { generation, .. }) if !self.acks_here(generation) => {
                Vec::new()
            }
            (State::Open, ClientFrame::Ack { seq, .. }) if seq > self.highest_sent => {
                vec![Action::Send(ServerFrame::error(
                    ErrorCode::UnknownSequence,
                    format!("sequence {seq} was never sent"),
                ))]
            }
            (State::Open, ClientFrame::Ack { seq, .. }) if seq <= self.last_ack => Vec::new(),
            (State::Open, ClientFrame::Ack { seq, .. }) => {
                self.last_ack = seq;
                vec![Action::Acked {
                    generation: self.generation,
                    through: seq,
                }]
            }
            (State::Closed, _) => Vec::new(),
        }
    }

    /// Whether an ack naming `generation` (0: none) counts here.
    fn acks_here(&self, generation: u64) -> bool {
        generation == 0 || generation == self.generation
    }

    /// The outbox as read for the hello (`asked_by` 0), or for a reread a
    /// delivery of generation `asked_by` asked for. Gives the frames that
    /// follow the welcome: a resync when the device's cursor was not kept
    /// or the outbox's generation changed under the connection, then the
    /// replay.
    pub(crate) fn on_replay(&mut self, replay: Replay, asked_by: u64) -> Vec<Action> {
        if self.state != State::Open {
            return Vec::new();
        }
        let mut actions = Vec::new();
        let switched = self.generation != 0 && replay.generation != self.generation;
        if self.generation != 0 && !switched {
            // The connection's generation is the outbox's: the delivery
            // that asked is of a lost one.
            self.stale = asked_by;
            return actions;
        }
        if switched {
            // Its stragglers are refused without another read.
            self.stale = self.generation;
            actions.push(Action::Abandon);
        }
        self.generation = replay.generation;
        self.last_ack = replay.from;
        self.highest_sent = replay.from;
        if replay.resync || switched {
            actions.push(Action::Send(ServerFrame::Resync {
                generation: replay.generation,
                from: replay.from,
            }));
        }
        for notification in replay.notifications {
            let notification = WireNotification::from_proto(notification);
            self.highest_sent = self.highest_sent.max(notification.seq);
            actions.push(Action::Send(ServerFrame::N(Box::new(notification))));
        }
        actions
    }

    /// The outbox read again once the device acked everything sent, when
    /// the last read was cut at the limit: the next part of the backlog
    /// (what was sent already is not sent again). A read of another
    /// generation is handled as [`Machine::on_replay`] handles one.
    pub(crate) fn on_more(&mut self, replay: Replay) -> Vec<Action> {
        if self.state != State::Open {
            return Vec::new();
        }
        if replay.generation != self.generation {
            return self.on_replay(replay, 0);
        }
        let mut actions = Vec::new();
        if replay.resync {
            actions.push(Action::Send(ServerFrame::Resync {
                generation: replay.generation,
                from: replay.from,
            }));
        }
        for notification in replay.notifications {
            if notification.sequence > self.highest_sent {
                let notification = WireNotification::from_proto(notification);
                self.highest_sent = notification.seq;
                actions.push(Action::Send(ServerFrame::N(Box::new(notification))));
            }
        }
        actions
    }

    /// The highest sequence written to the device.
    pub(crate) fn highest_sent(&self) -> u64 {
        self.highest_sent
    }

    /// A notification to write, of outbox `generation` (0: unknown, taken
    /// as the connection's). See [`Delivery`].
    pub(crate) fn on_deliver(
        &mut self,
        generation: u64,
        notification: WireNotification,
    ) -> Delivery {
        if self.state != State::Open || self.generation == 0 {
            return Delivery::Refused;
        }
        if generation != 0 && generation != self.generation {
            if generation == self.stale {
                return Delivery::Refused;
            }
            return Delivery::Reread {
                cursor: self.cursor(),
                notification: Box::new(notification),
            };
        }
        if notification.seq <= self.last_ack {
            return Delivery::Acked;
        }
        self.highest_sent = self.highest_sent.max(notification.seq);
        Delivery::Await(vec![Action::Send(ServerFrame::N(Box::new(notification)))])
    }

    /// The clock reached [`Machine::deadline`] (or later).
    pub(crate) fn on_tick(&mut self, now: Instant) -> Vec<Action> {
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
    pub(crate) fn on_drain(&mut self, after: Duration) -> Vec<Action> {
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
    pub(crate) fn on_revoked(&mut self) -> Vec<Action> {
        if self.state == State::Closed {
            return Vec::new();
        }
        self.close(ErrorCode::Revoked, "the device was revoked")
    }

    /// Another connection of the device took over.
    pub(crate) fn on_taken_over(&mut self) -> Vec<Action> {
        if self.state == State::Closed {
            return Vec::new();
        }
        self.close(ErrorCode::TakenOver, "the device connected again elsewhere")
    }
}

#[cfg(test)]
mod tests;
