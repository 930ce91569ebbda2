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
use pushmail_outbox::{Cursor, Replay};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::hub::{Command, Handle, Mailbox, Outcome};
use crate::node::Node;
use crate::protocol::WireNotification;
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
    let hb = node.rules.clamp(request.hb);
    let device = claims.device_id.clone();
    let cursor = Cursor {
        generation: request.generation,
        seq: request.last_ack,
    };
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
    if missed.resync || !missed.notifications.is_empty() {
        return replayed(hb, missed);
    }

    let tx = Arc::new(Mailbox::default());
    let id = register(&node, &claims.tenant_id, &device, hb, &tx).await;
    let held = Held {
        node: &node,
        tenant: &claims.tenant_id,
        device: &device,
        hb,
        cursor: Cursor {
            generation: missed.generation,
            seq: missed.from,
        },
    };
    let outcome = held.wait(&tx, &request.net).await;
    // The device pings again at once; until then its lease (one interval
    // plus grace) keeps deliveries routed here, where they find no handle
    // and report "not connected" so dispatch falls back.
    node.hub.remove(&device, id);
    for command in tx.close() {
        if let Command::Deliver(_, _, reply) = command {
            let _ = reply.send(Outcome::Closed);
        }
    }
    outcome
}

/// Attaches a held ping as the device's connection (see [`Node::attach`]);
/// its id.
async fn register(node: &Node, tenant: &str, device: &str, hb: Duration, tx: &Arc<Mailbox>) -> u64 {
    let id = node.hub.next_id();
    let handle = Handle {
        id,
        tenant: Arc::from(tenant),
        hb,
        since_ms: pushmail_common::clock::now_ms(),
        tx: tx.clone(),
    };
    node.attach(Arc::from(device), handle).await;
    id
}

/// A ping held until something comes for the device.
struct Held<'a> {
    node: &'a Node,
    tenant: &'a str,
    device: &'a str,
    hb: Duration,
    /// The device's cursor as the outbox kept it.
    cursor: Cursor,
}

impl Held<'_> {
    async fn wait(&self, tx: &Mailbox, net: &str) -> Response {
        let generation = self.cursor.generation;
        let expiry = tokio::time::sleep(self.hb);
        tokio::pin!(expiry);
        loop {
            let command = tokio::select! {
                command = tx.recv() => command,
                () = &mut expiry => {
                    self.node.stats.held(&crate::stats::network(net), self.hb);
                    return answer("expired", self.hb, generation, None, Vec::new());
                }
            };
            match command {
                Command::Deliver(g, notification, reply) if g == 0 || g == generation => {
                    // The cursor this ping carried acked it already.
                    if notification.seq <= self.cursor.seq {
                        let _ = reply.send(Outcome::Acked);
                        continue;
                    }
                    self.node
                        .await_ping_ack(self.device, generation, notification.seq, reply);
                    return answer(
                        "notification",
                        self.hb,
                        generation,
                        None,
                        vec![*notification],
                    );
                }
                Command::Deliver(g, notification, reply) => {
                    if let Some(answer) = self.moved_on(g, notification.seq, reply).await {
                        return answer;
                    }
                }
                Command::Drain(_) => {
                    return refuse(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "draining",
                        "this node is draining; ping again",
                    );
                }
                Command::Revoked => {
                    return refuse(
                        StatusCode::UNAUTHORIZED,
                        "unauthenticated",
                        "the device was revoked",
                    );
                }
                Command::TakenOver => {
                    return answer("taken_over", self.hb, generation, None, Vec::new());
                }
            }
        }
    }

    /// A delivery (`seq` of generation `g`) not of the held cursor's
    /// generation: the outbox is read again. If it was recreated, the
    /// device is answered with the resync and what the new one holds (the
    /// delivery among it, acked by the next ping); a delivery from a lost
    /// outbox is left to fall back.
    async fn moved_on(
        &self,
        g: u64,
        seq: u64,
        reply: oneshot::Sender<Outcome>,
    ) -> Option<Response> {
        let Some(replay) = self
            .node
            .missed(self.tenant, self.device, self.cursor, 1)
            .await
        else {
            let _ = reply.send(Outcome::Closed);
            return Some(outbox_unavailable());
        };
        if replay.generation == self.cursor.generation {
            let _ = reply.send(Outcome::Closed);
            return None;
        }
        if g == replay.generation {
            self.node.await_ping_ack(self.device, g, seq, reply);
        } else {
            let _ = reply.send(Outcome::Closed);
        }
        Some(replayed(self.hb, replay))
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

/// The answer with what the outbox holds for the device, after a resync
/// when its cursor was not kept.
fn replayed(hb: Duration, replay: Replay) -> Response {
    let status = if replay.resync {
        "resync"
    } else {
        "notification"
    };
    let notifications = replay
        .notifications
        .into_iter()
        .map(WireNotification::from_proto)
        .collect();
    answer(
        status,
        hb,
        replay.generation,
        replay.resync.then_some(replay.from),
        notifications,
    )
}

fn answer(
    status: &'static str,
    hb: Duration,
    generation: u64,
    from: Option<u64>,
    notifications: Vec<WireNotification>,
) -> Response {
    Json(PingResponse {
        status,
        hb: hb.as_secs(),
        generation,
        from,
        notifications,
    })
    .into_response()
}
