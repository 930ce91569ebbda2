//! `/v1/ping`: long-poll in the style of ActiveSync Ping. The device names
//! a heartbeat interval and its cursor; the server answers at once with
//! what the device missed, or holds the request until a notification comes
//! (`"status":"notification"`) or the interval ends (`"status":"expired"`).
//! The next ping's `last_ack` acks what the previous answer carried.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

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
    /// The device's network, for statistics.
    #[serde(default)]
    net: String,
}

/// The answer.
#[derive(Debug, Serialize)]
struct PingResponse {
    status: &'static str,
    hb: u64,
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
    node.ping_acked(&device, request.last_ack);
    if let Err(err) = node
        .outbox
        .acked(&claims.tenant_id, &device, request.last_ack)
        .await
    {
        tracing::warn!(error = %err, "outbox ack failed");
    }
    let missed = match node
        .outbox
        .after(
            &claims.tenant_id,
            &device,
            request.last_ack,
            node.limits.max_unacked,
        )
        .await
    {
        Ok(missed) => missed,
        // Holding the poll would keep what waits from the device for a
        // whole interval; a WebSocket is likewise sent away to come back.
        Err(err) => {
            tracing::warn!(error = %err, "outbox read failed; the device is asked to ping again");
            return unavailable(
                "outbox_unavailable",
                "what waits for this device cannot be read now; ping again",
            );
        }
    };
    if missed.resync || !missed.notifications.is_empty() {
        let notifications = missed
            .notifications
            .into_iter()
            .map(WireNotification::from_proto)
            .collect();
        let status = if missed.resync {
            "resync"
        } else {
            "notification"
        };
        return answer(status, hb, notifications);
    }

    let tx = Arc::new(Mailbox::default());
    let id = node.hub.next_id();
    let handle = Handle {
        id,
        tenant: Arc::from(claims.tenant_id.as_str()),
        hb,
        since_ms: pushmail_common::clock::now_ms(),
        tx: tx.clone(),
    };
    if let Some(old) = node.hub.insert(Arc::from(device.as_str()), handle) {
        let _ = old.tx.try_send(Command::TakenOver);
    }
    match node
        .directory
        .claim(&device, &node.address, node.lease(hb))
        .await
    {
        Ok(Some(previous)) if previous != node.address => {
            node.take_over(&previous, &claims.tenant_id, &device).await;
        }
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "directory claim failed"),
    }
    let outcome = tokio::select! {
        command = tx.recv() => match command {
            Command::Deliver(notification, reply) => {
                node.await_ping_ack(&device, notification.seq, reply);
                answer("notification", hb, vec![*notification])
            }
            Command::Drain(_) => refuse(StatusCode::SERVICE_UNAVAILABLE, "draining", "this node is draining; ping again"),
            Command::Revoked => refuse(StatusCode::UNAUTHORIZED, "unauthenticated", "the device was revoked"),
            Command::TakenOver => answer("taken_over", hb, Vec::new()),
        },
        () = tokio::time::sleep(hb) => {
            node.stats.held(&crate::stats::network(&request.net), hb);
            answer("expired", hb, Vec::new())
        }
    };
    // The device pings again at once; until then its lease (one interval
    // plus grace) keeps deliveries routed here, where they find no handle
    // and report "not connected" so dispatch falls back.
    node.hub.remove(&device, id);
    for command in tx.close() {
        if let Command::Deliver(_, reply) = command {
            let _ = reply.send(Outcome::Closed);
        }
    }
    outcome
}

fn answer(status: &'static str, hb: Duration, notifications: Vec<WireNotification>) -> Response {
    Json(PingResponse {
        status,
        hb: hb.as_secs(),
        notifications,
    })
    .into_response()
}
