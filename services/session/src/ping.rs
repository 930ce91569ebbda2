//! `/v1/ping`: long-poll in the style of ActiveSync Ping. The device names
//! a heartbeat interval and its cursor; the server answers at once with
//! what the device missed, or holds the request until a notification comes
//! (`"status":"notification"`) or the interval ends (`"status":"expired"`).
//! The next ping's `last_ack` (with `gen`, the outbox generation it counts
//! in) acks what the previous answer carried. A cursor the outbox did not
//! keep is answered at once with `"status":"resync"` and what it holds.

use pushmail_common::report::Report;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::hub::{Command, Mailbox, Outcome};
use crate::machine::{Action, Delivery, Machine};
use crate::node::{Attachment, Node};
use crate::protocol::{ClientFrame, ErrorCode, ServerFrame, WireNotification};
use crate::ws::{TokenQuery, authenticate, refuse, unavailable};

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PingRequest {
    /// Proposed interval, seconds.
    hb: u32,
    /// Highest sequence the device holds.
    #[serde(default)]
    last_ack: u64,
    /// The outbox generation `last_ack` counts in (0: none named).
    #[serde(default, rename = "gen")]
    generation: u64,
    /// The device's network, for statistics.
    #[serde(default)]
    net: String,
}

/// The answer.
#[derive(Debug, Serialize)]
struct PingResponse {
    status: &'static str,
    hb: u64,
    /// The outbox generation the device's cursor counts in from now on.
    #[serde(rename = "gen")]
    generation: u64,
    /// After a resync: the device's cursor from now on.
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notifications: Vec<WireNotification>,
}

pub(crate) async fn ping(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
    body: axum::body::Bytes,
) -> Response {
    let claims = match authenticate(&node, &headers, &query) {
        Ok(claims) => claims,
        Err(response) => return response,
    };
    if body.len() > crate::protocol::MAX_CLIENT_FRAME {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the body is at most 1024 bytes",
        );
    }
    let request: PingRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "malformed",
                &format!("not a ping: {err}"),
            );
        }
    };
    // The ping is the long poll's hello: the machine grants the interval
    // and decides what the replay and each delivery come to, as it does
    // for a WebSocket.
    let mut machine = Machine::new(node.rules.clone(), Instant::now());
    let hello = ClientFrame::Hello {
        last_ack: request.last_ack,
        generation: request.generation,
        hb: request.hb,
        net: request.net,
    };
    let opened = machine.on_frame(Instant::now(), Ok(hello));
    let Some(Action::Opened { cursor, hb, net }) = opened.into_iter().next() else {
        return unavailable("closed", "the session did not open; ping again");
    };
    let device = claims.device_id.clone();
    match node.outbox.acked(&claims.tenant_id, &device, cursor).await {
        // Only an ack the outbox took resolves deliveries: one naming a
        // lost generation, or past anything assigned, acks nothing.
        Ok(Some(acked)) => {
            let heard = node.ping_acked(&device, acked.generation, request.last_ack);
            node.receipts.acked(&device, acked.notifications, &heard);
        }
        Ok(None) => {}
        Err(err) => tracing::warn!(error = %Report(&err), "outbox ack failed"),
    }
    // Read once: a device whose read failed is told to ping again at once.
    let Some(missed) = node.missed(&claims.tenant_id, &device, cursor, 1).await else {
        return outbox_unavailable();
    };
    let mut answer = Answer::default();
    answer.take(machine.on_replay(missed, 0));
    if !answer.is_empty() {
        return answer.response(hb, machine.cursor().generation);
    }

    let attachment = Attachment::attach(&node, &claims.tenant_id, &device, hb).await;
    let mut held = Held {
        node: &node,
        tenant: &claims.tenant_id,
        device: &device,
        machine,
    };
    // The device pings again at once; dropping the attachment lets it go.
    held.wait(&attachment.tx, hb, &net).await
}

/// A ping held until something comes for the device.
struct Held<'a> {
    node: &'a Node,
    tenant: &'a str,
    device: &'a str,
    /// Open, holding the device's cursor as the outbox kept it.
    machine: Machine,
}

impl Held<'_> {
    /// Until the machine has something for the device, or the interval
    /// ends (a poll's interval is its whole life, so ending it is the
    /// normal answer, not a missed heartbeat).
    async fn wait(&mut self, tx: &Mailbox, hb: Duration, net: &str) -> Response {
        let expiry = tokio::time::sleep(hb);
        tokio::pin!(expiry);
        let mut answer = Answer::default();
        loop {
            let command = tokio::select! {
                command = tx.recv() => command,
                () = &mut expiry => {
                    self.node.stats.held(&crate::stats::network(net), hb);
                    return answer.response(hb, self.machine.cursor().generation);
                }
            };
            match command {
                Command::Deliver(g, notification, reply) => {
                    if let Some(unread) = self.deliver(g, *notification, reply, &mut answer).await {
                        return unread;
                    }
                }
                Command::Drain(after) => answer.take(self.machine.on_drain(after)),
                Command::Revoked => answer.take(self.machine.on_revoked()),
                Command::TakenOver => answer.take(self.machine.on_taken_over()),
            }
            if !answer.is_empty() {
                return answer.response(hb, self.machine.cursor().generation);
            }
        }
    }

    /// Offers a delivery (of outbox generation `g`) to the machine. One
    /// it awaits goes into the answer and is acked by the next ping; one
    /// of another generation has the outbox read again first, and if that
    /// was recreated, the answer carries the resync and what the new one
    /// holds. A response here means the outbox could not be read.
    async fn deliver(
        &mut self,
        g: u64,
        notification: WireNotification,
        reply: oneshot::Sender<Outcome>,
        answer: &mut Answer,
    ) -> Option<Response> {
        let seq = notification.seq;
        let notification = match self.machine.on_deliver(g, notification) {
            Delivery::Reread {
                cursor,
                notification,
            } => {
                let Some(replay) = self.node.missed(self.tenant, self.device, cursor, 1).await
                else {
                    let _ = reply.send(Outcome::Closed);
                    return Some(outbox_unavailable());
                };
                answer.take(self.machine.on_replay(replay, g));
                // Once: the machine refuses a generation the read found gone.
                *notification
            }
            offered => return self.settle(offered, seq, reply, answer),
        };
        let offered = match self.machine.on_deliver(g, notification) {
            Delivery::Reread { .. } => Delivery::Refused,
            offered => offered,
        };
        self.settle(offered, seq, reply, answer)
    }

    /// What the delivering caller hears of a delivery the machine decided.
    fn settle(
        &self,
        offered: Delivery,
        seq: u64,
        reply: oneshot::Sender<Outcome>,
        answer: &mut Answer,
    ) -> Option<Response> {
        match offered {
            Delivery::Await(actions) => {
                let generation = self.machine.cursor().generation;
                self.node
                    .await_ping_ack(self.device, generation, seq, reply);
                answer.take(actions);
            }
            Delivery::Acked => {
                let _ = reply.send(Outcome::Acked);
            }
            Delivery::Refused | Delivery::Reread { .. } => {
                let _ = reply.send(Outcome::Closed);
            }
        }
        None
    }
}

/// What the machine's actions put in a ping's answer: the frames a
/// WebSocket would be sent, gathered into one response.
#[derive(Debug, Default)]
struct Answer {
    /// The device's cursor from now on, after a resync.
    resync: Option<u64>,
    notifications: Vec<WireNotification>,
    closed: Option<ErrorCode>,
}

impl Answer {
    fn take(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send(ServerFrame::Resync { from, .. }) => self.resync = Some(from),
                // A delivery the replay after a resync carried already.
                Action::Send(ServerFrame::N(n))
                    if !self.notifications.iter().any(|held| held.seq == n.seq) =>
                {
                    self.notifications.push(*n);
                }
                Action::Close(code) => self.closed = Some(code),
                // The close code says it all to a poll; nothing is
                // outstanding on it to abandon.
                _ => {}
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.resync.is_none() && self.notifications.is_empty() && self.closed.is_none()
    }

    fn response(self, hb: Duration, generation: u64) -> Response {
        let status = match self.closed {
            Some(ErrorCode::Draining) => {
                return refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "draining",
                    "this node is draining; ping again",
                );
            }
            Some(ErrorCode::Revoked) => {
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "the device was revoked",
                );
            }
            Some(ErrorCode::TakenOver) => "taken_over",
            Some(_) => return unavailable("closed", "the session was closed; ping again"),
            None if self.resync.is_some() => "resync",
            None if self.notifications.is_empty() => "expired",
            None => "notification",
        };
        Json(PingResponse {
            status,
            hb: hb.as_secs(),
            generation,
            from: self.resync,
            notifications: self.notifications,
        })
        .into_response()
    }
}

/// Holding the poll would keep what waits from the device for a whole
/// interval; a WebSocket is likewise sent away to come back.
fn outbox_unavailable() -> Response {
    unavailable(
        "outbox_unavailable",
        "what waits for this device cannot be read now; ping again",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(seq: u64) -> Action {
        Action::Send(ServerFrame::N(Box::new(WireNotification {
            seq,
            ..WireNotification::default()
        })))
    }

    async fn body(response: Response) -> (StatusCode, serde_json::Value) {
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn a_resync_carries_the_new_cursor_and_each_notification_once() {
        let mut answer = Answer::default();
        answer.take(vec![
            Action::Abandon,
            Action::Send(ServerFrame::Resync {
                generation: 9,
                from: 4,
            }),
            n(5),
            n(6),
        ]);
        // The delivery that asked for the reread, among the replay already.
        answer.take(vec![n(6)]);
        let (status, json) = body(answer.response(Duration::from_secs(60), 9)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json["status"], "resync");
        assert_eq!(json["gen"], 9);
        assert_eq!(json["from"], 4);
        let seqs: Vec<_> = json["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, [5, 6]);
    }

    #[tokio::test]
    async fn nothing_gathered_is_an_expiry_and_closes_map_to_their_answers() {
        let (status, json) = body(Answer::default().response(Duration::from_secs(60), 3)).await;
        assert_eq!(
            (status, json["status"].as_str()),
            (StatusCode::OK, Some("expired"))
        );
        assert!(json.get("from").is_none() && json.get("notifications").is_none());

        let cases = [
            (
                ErrorCode::Draining,
                StatusCode::SERVICE_UNAVAILABLE,
                "draining",
            ),
            (
                ErrorCode::Revoked,
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
            ),
            (ErrorCode::Flood, StatusCode::SERVICE_UNAVAILABLE, "closed"),
        ];
        for (code, expected, error) in cases {
            let mut answer = Answer::default();
            answer.take(vec![
                Action::Send(ServerFrame::error(code, "why")),
                Action::Close(code),
            ]);
            assert!(!answer.is_empty());
            let (status, json) = body(answer.response(Duration::from_secs(60), 3)).await;
            assert_eq!(
                (status, json["error"]["code"].as_str()),
                (expected, Some(error))
            );
        }
        let mut answer = Answer::default();
        answer.take(vec![Action::Close(ErrorCode::TakenOver)]);
        let (_, json) = body(answer.response(Duration::from_secs(60), 3)).await;
        assert_eq!(json["status"], "taken_over");
    }
}
