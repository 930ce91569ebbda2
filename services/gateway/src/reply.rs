//! The HTTP boundary's one error type (device fetch and the admin API):
//! each variant has its status and a stable machine-readable code.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pushmail_common::http_error::error;

/// The body of every error answer, as `pushmail_common::http_error` writes
/// it; documented here because the API's document is derived from types.
/// The admin API's tests validate real error answers against it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "a schema: the body is written by http_error")]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "a schema: the body is written by http_error")]
pub(crate) struct ErrorDetail {
    /// Stable, for programs: e.g. bad_request, not_found, rate_limited.
    code: String,
    /// For people.
    message: String,
}

/// Why a fetch was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ApiError {
    Unauthenticated(&'static str),
    NotFound(&'static str),
    Forbidden(&'static str),
    BadRequest(String),
    /// The body is over the size limit.
    TooLarge(usize),
    /// No such resource (the upstream's words).
    Missing(String),
    /// The credential may not do this (the upstream's words).
    Denied(String),
    /// The change conflicts with the current state (a duplicate, a used code).
    Conflict(String),
    /// Over the caller's request rate.
    RateLimited {
        retry_after_seconds: u64,
    },
    /// Over a limit upstream that waiting lifts (the upstream's words).
    Throttled {
        message: String,
        retry_after_seconds: u64,
    },
    /// The content cannot be converted (unsupported, unreadable, over a limit).
    Unprocessable(String),
    /// A Range that starts past the end of `total` bytes.
    RangeNotSatisfiable {
        total: u64,
    },
    /// Refused for a reason the device acts on: its own status and code
    /// (`token_invalid`, `upload_incomplete`, …) and the upstream's words.
    Refused {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    Busy(String),
    Timeout(String),
    Upstream(String),
}

impl ApiError {
    /// A failed upstream call as the device should see it.
    pub(crate) fn from_upstream(service: &str, status: &tonic::Status) -> Self {
        use tonic::Code;
        match status.code() {
            Code::NotFound => Self::NotFound("no such message, part or page for this device"),
            Code::InvalidArgument => Self::BadRequest(status.message().to_owned()),
            Code::AlreadyExists | Code::Aborted => Self::Conflict(status.message().to_owned()),
            Code::FailedPrecondition | Code::OutOfRange => {
                Self::Unprocessable(status.message().to_owned())
            }
            Code::ResourceExhausted => Self::Busy(status.message().to_owned()),
            Code::DeadlineExceeded => Self::Timeout(status.message().to_owned()),
            _ => {
                tracing::warn!(service, error = %status, "upstream call failed");
                Self::Upstream(format!("the {service} service is unavailable"))
            }
        }
    }
}

impl ApiError {
    /// A failed call to binding's admin surface, made with the caller's
    /// own credential: binding's words are meant for the caller.
    pub(crate) fn from_admin(status: &tonic::Status) -> Self {
        use tonic::Code;
        let message = status.message().to_owned();
        let retry_after = pushmail_common::grpc::retry_after(status);
        match status.code() {
            Code::ResourceExhausted if retry_after.is_some() => Self::Throttled {
                message,
                retry_after_seconds: retry_after.unwrap_or(1),
            },
            Code::NotFound => Self::Missing(message),
            Code::PermissionDenied => Self::Denied(message),
            Code::Unauthenticated => Self::Unauthenticated("the API key or session is not valid"),
            Code::FailedPrecondition | Code::ResourceExhausted => Self::Conflict(message),
            _ => Self::from_upstream("binding", status),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Unauthenticated(m) => {
                let mut response = error(StatusCode::UNAUTHORIZED, "unauthenticated", m);
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
            Self::NotFound(m) => error(StatusCode::NOT_FOUND, "not_found", m),
            Self::Forbidden(m) => error(StatusCode::FORBIDDEN, "forbidden", m),
            Self::Missing(m) => error(StatusCode::NOT_FOUND, "not_found", &m),
            Self::Denied(m) => error(StatusCode::FORBIDDEN, "forbidden", &m),
            Self::BadRequest(m) => error(StatusCode::BAD_REQUEST, "bad_request", &m),
            Self::TooLarge(limit) => error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                &format!("the request body is over {limit} bytes"),
            ),
            Self::Conflict(m) => error(StatusCode::CONFLICT, "conflict", &m),
            Self::RateLimited {
                retry_after_seconds,
            } => {
                let mut response = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "too many requests for this credential; retry later",
                );
                if let Ok(value) = HeaderValue::from_str(&retry_after_seconds.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                response
            }
            Self::Throttled {
                message,
                retry_after_seconds,
            } => {
                let mut response = error(StatusCode::TOO_MANY_REQUESTS, "limited", &message);
                if let Ok(value) = HeaderValue::from_str(&retry_after_seconds.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                response
            }
            Self::Unprocessable(m) => error(StatusCode::UNPROCESSABLE_ENTITY, "cannot_convert", &m),
            Self::RangeNotSatisfiable { total } => {
                let mut response = error(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "range_not_satisfiable",
                    &format!("no byte range of the {total} bytes is satisfiable by this Range"),
                );
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{total}")) {
                    response.headers_mut().insert(header::CONTENT_RANGE, value);
                }
                response
            }
            Self::Busy(m) => {
                let mut response = error(StatusCode::SERVICE_UNAVAILABLE, "busy", &m);
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
                response
            }
            Self::Refused {
                status,
                code,
                message,
            } => error(status, code, &message),
            Self::Timeout(m) => error(StatusCode::GATEWAY_TIMEOUT, "timeout", &m),
            Self::Upstream(m) => error(StatusCode::BAD_GATEWAY, "upstream_unavailable", &m),
        }
    }
}
