//! Drives one WebSocket connection: feeds frames, commands and the clock to
//! its [`Machine`] and carries out the actions.

use pushmail_common::report::Report;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use pushmail_device_token::DeviceClaims;
use pushmail_outbox::{Cursor, Replay};
use tokio::sync::oneshot;
use tokio::time::{Instant, timeout};

use crate::frame::{Violation, static_text};
use crate::hub::{Command, Handle, Mailbox, Outcome};
use crate::listener::DeviceIo;
use crate::machine::{Action, Delivery, Machine};
use crate::node::Node;
use crate::protocol::{
    ClientFrame, ErrorCode, FrameError, HB_FRAME, ServerFrame, WireNotification,
};
use crate::socket::{Incoming, RecvError, WebSocket};
use crate::stats::Tally;
use crate::writes::Renewal;

/// A delivery held back while the outbox is read again (its generation is
/// not the connection's).
struct Reread {
    cursor: Cursor,
    generation: u64,
    notification: Box<WireNotification>,
    reply: oneshot::Sender<Outcome>,
}

/// Reads of the outbox for one replay before the device is sent away.
const REPLAY_ATTEMPTS: u32 = 3;

/// The heartbeat answer as it goes on the wire, built once.
const HB_WIRE: [u8; HB_FRAME.len() + 2] = static_text(HB_FRAME);
/// After refusing a frame, how long and how much of the rest is read off
/// so the device can read why it was closed (see `WebSocket::discard`).
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;

/// A device's upgraded HTTP/1.1 connection.
pub(crate) type Socket = WebSocket<DeviceIo>;

struct Conn {
    node: Arc<Node>,
    socket: Socket,
    /// Shared with the hub entry: one allocation each per connection.
    tenant: Arc<str>,
    device: Arc<str>,
    id: u64,
    tx: Arc<Mailbox>,
    waiters: BTreeMap<u64, oneshot::Sender<Outcome>>,
    /// The heartbeat counts of the device's network and interval (from hello on).
    tally: Option<Arc<Tally>>,
    registered: bool,
    /// The last outbox read was cut at the limit: read on once the device
    /// acked all it was sent.
    more: bool,
}

/// Serves the connection until it closes.
///
/// Not an `async fn`: its arguments would be kept in the future next to the
/// `Conn` they are moved into. Built first and captured once, the idle
/// future stays small (every idle connection carries one).
pub(crate) fn serve(
    node: Arc<Node>,
    socket: Socket,
    claims: DeviceClaims,
) -> impl Future<Output = ()> + Send {
    let tx = Arc::new(Mailbox::default());
    let id = node.hub.next_id();
    let mut machine = Machine::new(node.rules.clone(), Instant::now());
    let mut conn = Conn {
        node,
        socket,
        tenant: Arc::from(claims.tenant_id),
        device: Arc::from(claims.device_id),
        id,
        tx,
        waiters: BTreeMap::new(),
        tally: None,
        registered: false,
        more: false,
    };
    async move {
        // One timer for the connection's life, moved only when the deadline
        // does: a fresh one per frame would leave and rejoin the timer wheel.
        let tick = tokio::time::sleep_until(machine.deadline());
        tokio::pin!(tick);
        loop {
            let deadline = machine.deadline();
            if tick.deadline() != deadline {
                tick.as_mut().reset(deadline);
            }
            // Biased: no random branch order per wake-up. The device's
            // frames come first, so a run of deliveries cannot keep its acks
            // unread until it looks like a slow reader; the device cannot
            // starve the commands in turn, its frames are bounded (the flood
            // limit, and acks by what is outstanding).
            let actions = tokio::select! {
                biased;
                message = conn.socket.recv() => match message {
                    Ok(Some(Incoming::Text(text))) => machine.on_frame(Instant::now(), ClientFrame::parse(&text)),
                    Ok(Some(Incoming::Binary)) => machine.on_frame(
                        Instant::now(),
                        Err(FrameError { code: ErrorCode::Malformed, message: "frames are JSON text".to_owned() }),
                    ),
                    Ok(Some(Incoming::Ping(payload))) => machine.on_control(Instant::now(), Some(payload)),
                    Ok(Some(Incoming::Pong)) => machine.on_control(Instant::now(), None),
                    Ok(Some(Incoming::Close(code))) => {
                        // Echo the device's code, as RFC 6455 suggests.
                        let _ = timeout(Duration::from_secs(1), conn.socket.close(code, "")).await;
                        break;
                    }
                    Ok(None) => break,
                    Err(RecvError::Violation(violation)) => {
                        Box::pin(conn.refuse(violation)).await;
                        break;
                    }
                    Err(RecvError::Io(err)) => {
                        tracing::debug!(error = %pushmail_common::report::Report(&err), device = %conn.device, "websocket read failed");
                        break;
                    }
                },
                command = conn.tx.recv() => match command {
                    Command::Deliver(generation, notification, reply) => {
                        match conn.deliver(&mut machine, generation, *notification, reply) {
                            Ok(actions) => actions,
                            // Rare (the outbox was recreated): boxed, out of
                            // the idle future like `apply`.
                            Err(reread) => match Box::pin(conn.reread(&mut machine, reread)).await {
                                ControlFlow::Continue(()) => continue,
                                ControlFlow::Break(()) => break,
                            },
                        }
                    }
                    Command::TakenOver => machine.on_taken_over(),
                    Command::Drain(after) => machine.on_drain(after),
                    Command::Revoked => machine.on_revoked(),
                },
                () = &mut tick => machine.on_tick(Instant::now()),
            };
            // Boxed: the future of `apply` is large and alive only while it
            // runs; inline it would sit in every idle connection's task.
            if Box::pin(conn.apply(&mut machine, actions)).await.is_break() {
                break;
            }
        }
        Box::pin(conn.finish()).await;
    }
}

impl Conn {
    /// Offers a delivery to the machine; one of another generation comes
    /// back to be read again first.
    fn deliver(
        &mut self,
        machine: &mut Machine,
        generation: u64,
        notification: WireNotification,
        reply: oneshot::Sender<Outcome>,
    ) -> Result<Vec<Action>, Reread> {
        if self.waiters.len() >= self.node.limits.max_unacked {
            let _ = reply.send(Outcome::Closed);
            return Ok(vec![
                Action::Send(ServerFrame::error(
                    ErrorCode::SlowReader,
                    "too many notifications without an ack",
                )),
                Action::Close(ErrorCode::SlowReader),
            ]);
        }
        let seq = notification.seq;
        match machine.on_deliver(generation, notification) {
            Delivery::Refused => {
                let _ = reply.send(Outcome::Closed);
                Ok(Vec::new())
            }
            Delivery::Acked => {
                let _ = reply.send(Outcome::Acked);
                Ok(Vec::new())
            }
            Delivery::Await(actions) => {
                if let Some(previous) = self.waiters.insert(seq, reply) {
                    // The same sequence delivered twice: the first caller hears of the ack too late to matter.
                    let _ = previous.send(Outcome::Closed);
                }
                Ok(actions)
            }
            Delivery::Reread {
                cursor,
                notification,
            } => Err(Reread {
                cursor,
                generation,
                notification,
                reply,
            }),
        }
    }

    /// Reads the outbox again for a delivery of another generation, hands
    /// the read to the machine (a resync and the replay when the outbox's
    /// generation moved on), then offers the delivery again.
    async fn reread(&mut self, machine: &mut Machine, reread: Reread) -> ControlFlow<()> {
        let Reread {
            cursor,
            generation,
            notification,
            reply,
        } = reread;
        let Some(replay) = self.read(cursor).await else {
            let _ = reply.send(Outcome::Closed);
            return self.come_back().await;
        };
        let replayed = machine.on_replay(replay, generation);
        self.apply(machine, replayed).await?;
        match self.deliver(machine, generation, *notification, reply) {
            Ok(actions) => self.apply(machine, actions).await,
            // The machine refuses a generation a read found gone, so this
            // reads once more at most.
            Err(again) => Box::pin(self.reread(machine, again)).await,
        }
    }

    /// The stream is out of step after a framing error: the device hears
    /// why (as an error frame, then the close code RFC 6455 gives it) and
    /// the connection ends.
    async fn refuse(&mut self, violation: Violation) {
        tracing::debug!(%violation, device = %self.device, "websocket frame refused");
        let (code, status) = match violation {
            Violation::TooLarge => (ErrorCode::TooLarge, 1009),
            Violation::NotUtf8 => (ErrorCode::Malformed, 1007),
            Violation::Protocol(_) => (ErrorCode::Malformed, 1002),
        };
        if self
            .send(&ServerFrame::error(code, violation.to_string()))
            .await
            .is_continue()
        {
            let _ = timeout(
                Duration::from_secs(1),
                self.socket.close(Some(status), "refused"),
            )
            .await;
            // Bounded in time and bytes: an abusive sender cannot hold the
            // connection or the CPU for long.
            let _ = timeout(LINGER, self.socket.discard(LINGER_BYTES)).await;
        }
    }

    async fn send(&mut self, frame: &ServerFrame) -> ControlFlow<()> {
        let text = frame.text();
        let owned;
        let wire: &[u8] = match &text {
            Cow::Borrowed(HB_FRAME) => &HB_WIRE,
            text => {
                owned = crate::frame::text(text);
                &owned
            }
        };
        let mut send = std::pin::pin!(self.socket.send_raw(wire));
        // A frame nearly always fits the socket buffer at once: only a
        // write that has to wait starts the slow-reader clock.
        let first = std::future::poll_fn(|cx| Poll::Ready(send.as_mut().poll(cx))).await;
        let written = match first {
            Poll::Ready(written) => Ok(written),
            Poll::Pending => {
                let write = Duration::from_millis(self.node.limits.write_timeout_ms);
                timeout(write, send).await
            }
        };
        match written {
            Ok(Ok(())) => ControlFlow::Continue(()),
            Ok(Err(_)) => ControlFlow::Break(()),
            Err(_) => {
                tracing::info!(device = %self.device, "slow reader dropped");
                ControlFlow::Break(())
            }
        }
    }

    async fn apply(&mut self, machine: &mut Machine, actions: Vec<Action>) -> ControlFlow<()> {
        for action in actions {
            match action {
                Action::Send(frame) => self.send(&frame).await?,
                // Boxed, as the acks: paths off the heartbeat's kept out
                // of the future every frame allocates and moves.
                Action::Opened { cursor, hb, net } => {
                    Box::pin(self.hello(machine, cursor, hb, &net)).await?;
                }
                Action::Acked {
                    generation,
                    through,
                } => Box::pin(self.acked(machine, generation, through)).await?,
                Action::Abandon => {
                    for (_, reply) in std::mem::take(&mut self.waiters) {
                        let _ = reply.send(Outcome::Closed);
                    }
                }
                // Batched; a lease found lost comes back as `TakenOver`.
                // (a renewal dropped while Redis is stuck is counted there)
                Action::Renew => {
                    self.node.renewals.push(Renewal {
                        device: self.device.clone(),
                        connection: self.id,
                        lease: self.node.lease(machine.heartbeat()),
                    });
                }
                Action::Held { .. } => self.tally.iter().for_each(|tally| tally.held()),
                Action::Missed { .. } => self.tally.iter().for_each(|tally| tally.missed()),
                Action::Pong(payload) => {
                    let pong = self.socket.pong(&payload);
                    let write = Duration::from_millis(self.node.limits.write_timeout_ms);
                    if !matches!(timeout(write, pong).await, Ok(Ok(()))) {
                        return ControlFlow::Break(());
                    }
                }
                Action::Close(code) => {
                    let (status, reason) = match code {
                        ErrorCode::Draining | ErrorCode::TakenOver => (1001, "going away"),
                        ErrorCode::HeartbeatMissed => (1000, "heartbeat missed"),
                        ErrorCode::TooLarge => (1009, "message too big"),
                        _ => (1008, "policy violation"),
                    };
                    let close = self.socket.close(Some(status), reason);
                    let _ = timeout(Duration::from_secs(1), close).await;
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// The device said hello: registered, the outbox read at its cursor,
    /// the welcome with the outbox's generation, then what the machine
    /// makes of the read (a resync, the replay).
    async fn hello(
        &mut self,
        machine: &mut Machine,
        cursor: Cursor,
        hb: Duration,
        net: &str,
    ) -> ControlFlow<()> {
        self.tally = self.node.stats.tally(&crate::stats::network(net), hb);
        self.open(hb).await;
        let replay = self.read(cursor).await;
        let welcome = ServerFrame::Welcome {
            hb: u32::try_from(hb.as_secs()).unwrap_or(u32::MAX),
            session: self.id.to_string(),
            // None known: the device keeps its cursor for the hello the
            // reconnect below asks for.
            generation: replay.as_ref().map_or(0, |r| r.generation),
        };
        self.send(&welcome).await?;
        let Some(replay) = replay else {
            return self.come_back().await;
        };
        let replayed = machine.on_replay(replay, 0);
        Box::pin(self.apply(machine, replayed)).await
    }

    /// Attaches this connection as the device's (see [`Node::attach`]).
    async fn open(&mut self, hb: Duration) {
        let handle = Handle {
            id: self.id,
            tenant: self.tenant.clone(),
            hb,
            since_ms: pushmail_common::clock::now_ms(),
            tx: self.tx.clone(),
        };
        self.registered = true;
        self.node.attach(self.device.clone(), handle).await;
    }

    /// What the device missed after `cursor` (see [`Node::missed`]).
    async fn read(&mut self, cursor: Cursor) -> Option<Replay> {
        let replay = self
            .node
            .missed(&self.tenant, &self.device, cursor, REPLAY_ATTEMPTS)
            .await?;
        self.more = replay.notifications.len() >= self.node.limits.max_unacked;
        Some(replay)
    }

    /// The outbox cannot be read: the device is told to reconnect, so the
    /// read is tried again on its next hello instead of waiting for new mail.
    async fn come_back(&mut self) -> ControlFlow<()> {
        self.send(&ServerFrame::Reconnect {
            after_ms: 5_000,
            reason: "missed notifications are unavailable for now".to_owned(),
        })
        .await?;
        ControlFlow::Break(())
    }

    /// Not batched like lease renewals: dispatch reads the outbox's acked
    /// mark to drop a redelivered event, so the mark must not lag the ack.
    async fn acked(
        &mut self,
        machine: &mut Machine,
        generation: u64,
        through: u64,
    ) -> ControlFlow<()> {
        let rest = self.waiters.split_off(&through.saturating_add(1));
        let heard: std::collections::HashMap<_, _> = std::mem::replace(&mut self.waiters, rest)
            .into_iter()
            .map(|(seq, reply)| (seq, crate::receipts::heard(reply.send(Outcome::Acked))))
            .collect();
        let cursor = Cursor {
            generation,
            seq: through,
        };
        match self
            .node
            .outbox
            .acked(&self.tenant, &self.device, cursor)
            .await
        {
            Ok(Some(acked)) => {
                self.node
                    .receipts
                    .acked(&self.device, acked.notifications, &heard);
            }
            // Recreated since: the device holds these, the new outbox's
            // entries of the same sequences it does not.
            Ok(None) => tracing::debug!(generation, through, "ack of a generation gone"),
            Err(err) => tracing::warn!(error = %Report(&err), "outbox ack failed"),
        }
        if !self.more || through < machine.highest_sent() {
            return ControlFlow::Continue(());
        }
        let cursor = Cursor {
            generation,
            seq: through,
        };
        let Some(replay) = self.read(cursor).await else {
            return self.come_back().await;
        };
        let more = machine.on_more(replay);
        Box::pin(self.apply(machine, more)).await
    }

    async fn finish(self) {
        for (_, reply) in self.waiters {
            let _ = reply.send(Outcome::Closed);
        }
        for command in self.tx.close() {
            if let Command::Deliver(_, _, reply) = command {
                let _ = reply.send(Outcome::Closed);
            }
        }
        if self.registered
            && self.node.hub.remove(&self.device, self.id)
            && let Err(err) = self
                .node
                .directory
                .release(&self.device, &self.node.address)
                .await
        {
            tracing::warn!(error = %pushmail_common::report::Report(&err), "directory release failed; the lease expires on its own");
        }
    }
}

#[cfg(test)]
mod tests {
    fn returned<F, A, B, C, R>(_: F) -> usize
    where
        F: Fn(A, B, C) -> R,
    {
        std::mem::size_of::<R>()
    }

    /// Every idle connection carries this future: keep it small (it was
    /// 3.2 KiB before `apply` and `finish` were boxed and the arguments
    /// captured once).
    #[test]
    fn an_idle_connection_future_stays_small() {
        let size = returned(super::serve);
        assert!(size <= 1_024, "serve future is {size} bytes");
    }

    /// Every frame allocates this and moves it to the heap: small enough
    /// for the allocator's per-thread cache (it was 2.4 KiB while hello's
    /// directory claim and replay were inline in it).
    #[test]
    fn the_future_boxed_per_frame_stays_small() {
        let size = returned(super::Conn::apply);
        assert!(size <= 1_024, "apply future is {size} bytes");
    }
}
