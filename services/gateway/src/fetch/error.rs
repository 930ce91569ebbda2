//! The device fetch API's errors, each with its status and stable code.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pushmail_common::http_error::error;

/// Why a fetch was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    Unauthenticated(&'static str),
    NotFound(&'static str),
    Forbidden(&'static str),
    BadRequest(String),
    /// The content cannot be converted (unsupported, unreadable, over a limit).
    Unprocessable(String),
    /// A Range that starts past the end of `total` bytes.
    RangeNotSatisfiable {
        total: u64,
    },
    Busy(String),
    Timeout(String),
    Upstream(String),
}

impl ApiError {
    /// A failed upstream call as the device should see it.
    pub fn from_upstream(service: &str, status: &tonic::Status) -> Self {
        use tonic::Code;
        match status.code() {
            Code::NotFound => Self::NotFound("no such message, part or page for this device"),
            Code::InvalidArgument => Self::BadRequest(status.message().to_owned()),
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
            Self::BadRequest(m) => error(StatusCode::BAD_REQUEST, "bad_request", &m),
            Self::Unprocessable(m) => error(StatusCode::UNPROCESSABLE_ENTITY, "cannot_convert", &m),
            Self::RangeNotSatisfiable { total } => {
                let mut response = error(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "range_not_satisfiable",
                    &format!("the range starts past the end of the {total} bytes"),
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
            Self::Timeout(m) => error(StatusCode::GATEWAY_TIMEOUT, "timeout", &m),
            Self::Upstream(m) => error(StatusCode::BAD_GATEWAY, "upstream_unavailable", &m),
        }
    }
}
