//! The device endpoints: `/v1/connect` (WebSocket) and `/v1/ping` (long
//! poll). Both authenticate the device token before anything else.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use pushmail_device_token::DeviceClaims;
use serde::Deserialize;
use sha1::{Digest as _, Sha1};

use crate::listener::DeviceIo;
use crate::node::Node;
use crate::protocol::MAX_CLIENT_FRAME;
use crate::socket::WebSocket;

/// RFC 6455's fixed suffix of the accept key.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The token as a query parameter, for clients that cannot set headers.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenQuery {
    token: Option<String>,
}

/// The device router.
pub(crate) fn router(node: Arc<Node>) -> axum::Router {
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

/// A 503 that tells the device to come back in a few seconds.
pub(crate) fn unavailable(code: &str, message: &str) -> Response {
    let mut response = refuse(StatusCode::SERVICE_UNAVAILABLE, code, message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// Authenticates the request's device token (header first, then query).
#[allow(clippy::result_large_err)] // the error is the response itself, built once
pub(crate) fn authenticate(
    node: &Node,
    headers: &HeaderMap,
    query: &TokenQuery,
) -> Result<DeviceClaims, Response> {
    if node.draining.is_cancelled() {
        return Err(unavailable("draining", "this node is draining; reconnect"));
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
    Query(query): Query<TokenQuery>,
    mut request: Request,
) -> Response {
    let accept = match accept_key(request.headers()) {
        Ok(accept) => accept,
        Err(response) => return response,
    };
    let claims = match authenticate(&node, request.headers(), &query) {
        Ok(claims) => claims,
        Err(response) => return response,
    };
    // Absent over HTTP/2 (no RFC 8441 here) or once taken.
    let Some(upgrade) = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
    else {
        return upgrade_required("this connection cannot be upgraded; use HTTP/1.1");
    };
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                // `read` shares hyper's whole read buffer (KiBs): copied
                // out and dropped here, not held for the connection's life.
                let socket = {
                    let (io, read) = DeviceIo::new(upgraded);
                    WebSocket::new(io, MAX_CLIENT_FRAME, &read)
                };
                crate::conn::serve(node, socket, claims).await;
            }
            Err(err) => {
                tracing::debug!(error = %pushmail_common::report::Report(&err), "websocket upgrade failed")
            }
        }
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    response
}

fn upgrade_required(message: &str) -> Response {
    let mut response = refuse(StatusCode::UPGRADE_REQUIRED, "upgrade_required", message);
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(
        header::SEC_WEBSOCKET_VERSION,
        HeaderValue::from_static("13"),
    );
    response
}

/// Whether `name`'s comma-separated tokens include `token` (any case).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case(token))
}

/// Checks the opening handshake (RFC 6455 section 4.2.1) and computes the
/// `Sec-WebSocket-Accept` answer.
#[allow(clippy::result_large_err)] // the error is the response itself, built once
fn accept_key(headers: &HeaderMap) -> Result<HeaderValue, Response> {
    if !has_token(headers, header::CONNECTION, "upgrade")
        || !has_token(headers, header::UPGRADE, "websocket")
    {
        return Err(upgrade_required("expected a WebSocket upgrade"));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err(upgrade_required(
            "WebSocket version 13 is the one spoken here",
        ));
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|key| key.as_bytes())
        .filter(|key| {
            base64::engine::general_purpose::STANDARD
                .decode(key)
                .is_ok_and(|nonce| nonce.len() == 16)
        });
    let Some(key) = key else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "bad_handshake",
            "Sec-WebSocket-Key must be 16 bytes in base64",
        ));
    };
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(WEBSOCKET_GUID.as_bytes());
    let accept = base64::engine::general_purpose::STANDARD.encode(sha1.finalize());
    Ok(HeaderValue::from_str(&accept).expect("base64 is a valid header value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handshake(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), HeaderValue::from_static(value)))
            .collect()
    }

    const VALID: [(header::HeaderName, &str); 4] = [
        (header::CONNECTION, "keep-alive, Upgrade"),
        (header::UPGRADE, "WebSocket"),
        (header::SEC_WEBSOCKET_VERSION, "13"),
        (header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn the_accept_key_is_rfc_6455s() {
        // RFC 6455 section 1.3's example.
        let accept = accept_key(&handshake(&VALID)).unwrap();
        assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn broken_handshakes_are_refused_with_the_reason() {
        for (drop, status) in [
            (header::CONNECTION, StatusCode::UPGRADE_REQUIRED),
            (header::UPGRADE, StatusCode::UPGRADE_REQUIRED),
            (header::SEC_WEBSOCKET_VERSION, StatusCode::UPGRADE_REQUIRED),
            (header::SEC_WEBSOCKET_KEY, StatusCode::BAD_REQUEST),
        ] {
            let headers: Vec<_> = VALID.iter().filter(|(n, _)| *n != drop).cloned().collect();
            let refused = accept_key(&handshake(&headers)).unwrap_err();
            assert_eq!(refused.status(), status, "without {drop}");
        }
        let mut old = VALID.clone();
        old[2].1 = "8";
        let refused = accept_key(&handshake(&old)).unwrap_err();
        assert_eq!(refused.headers()[header::SEC_WEBSOCKET_VERSION], "13");
        let mut short = VALID.clone();
        short[3].1 = "c2hvcnQ=";
        assert_eq!(
            accept_key(&handshake(&short)).unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
    }
}
