//! The error body every pushmail HTTP edge answers with:
//! `{"error":{"code":"…","message":"…"}}` — `code` stable for programs,
//! `message` for people.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error response.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}
