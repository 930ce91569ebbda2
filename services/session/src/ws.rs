//! The device endpoints: `/v1/connect` (WebSocket) and `/v1/ping` (long
//! poll). Both authenticate the device token before anything else.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pushmail_common::device_token::DeviceClaims;
use serde::Deserialize;

use crate::node::Node;
use crate::protocol::MAX_CLIENT_FRAME;

/// The token as a query parameter, for clients that cannot set headers.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenQuery {
    token: Option<String>,
}

/// The device router.
pub fn router(node: Arc<Node>) -> axum::Router {
    axum::Router::new()
        .route("/v1/connect", get(connect))
        .route("/v1/ping", post(crate::ping::ping))
        .with_state(node)
}

/// An error answer in the shape every pushmail HTTP edge uses.
pub(crate) fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

/// Authenticates the request's device token (header first, then query).
#[allow(clippy::result_large_err)] // the error is the response itself, built once
pub(crate) fn authenticate(
    node: &Node,
    headers: &HeaderMap,
    query: &TokenQuery,
) -> Result<DeviceClaims, Response> {
    if node.draining.is_cancelled() {
        let mut response = refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "this node is draining; reconnect",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        return Err(response);
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = bearer.or(query.token.as_deref()) else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a device token is required",
        ));
    };
    node.authenticate(token.trim()).map_err(|err| {
        tracing::info!(reason = %err, "device token refused");
        refuse(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "the device token is not valid",
        )
    })
}

async fn connect(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let claims = match authenticate(&node, &headers, &query) {
        Ok(claims) => claims,
        Err(response) => return response,
    };
    // Small buffers: an idle connection's memory is the node's key figure,
    // and device frames are at most MAX_CLIENT_FRAME bytes.
    upgrade
        // Device frames are tens of bytes; a 1 KiB one grows the buffer once.
        .read_buffer_size(128)
        .write_buffer_size(0)
        .max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME)
        .on_upgrade(move |socket| crate::conn::serve(node, socket, claims))
}
