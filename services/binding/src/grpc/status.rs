//! The one place API errors become gRPC statuses.

use tonic::metadata::MetadataMap;
use tonic::{Code, Response, Status};

use crate::registry::ApiError;

/// The metadata key telling a throttled caller how many seconds to wait.
pub(crate) const RETRY_AFTER: &str = "retry-after";

/// The status for `err`; internal and unavailable errors are logged here,
/// once, with their causes. A
/// throttled call carries `retry-after` metadata (whole seconds).
pub(crate) fn status(err: ApiError) -> Status {
    if let ApiError::Throttled {
        retry_after_seconds,
        ..
    } = &err
    {
        let mut metadata = MetadataMap::new();
        if let Ok(value) = retry_after_seconds.to_string().parse() {
            metadata.insert(RETRY_AFTER, value);
        }
        return Status::with_metadata(Code::ResourceExhausted, err.to_string(), metadata);
    }
    let code = match &err {
        ApiError::Invalid { .. } => Code::InvalidArgument,
        ApiError::NotFound(_) => Code::NotFound,
        ApiError::AlreadyExists(_) => Code::AlreadyExists,
        ApiError::FailedPrecondition(_) => Code::FailedPrecondition,
        ApiError::QuotaExceeded(_) | ApiError::Throttled { .. } => Code::ResourceExhausted,
        ApiError::Unauthenticated(_) => Code::Unauthenticated,
        ApiError::PermissionDenied(_) => Code::PermissionDenied,
        ApiError::Unavailable(_) => {
            tracing::warn!(error = %pushmail_common::report::Report(&err), "dependency unavailable");
            Code::Unavailable
        }
        ApiError::Internal(_) => {
            tracing::error!(error = %pushmail_common::report::Report(&err), "internal error");
            Code::Internal
        }
    };
    Status::new(code, err.to_string())
}

/// A handler's result as tonic wants it.
pub(super) fn respond<T>(result: Result<T, ApiError>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_code_and_reason() {
        let cases = [
            (
                ApiError::invalid("msisdn", "too short"),
                Code::InvalidArgument,
                "msisdn: too short",
            ),
            (
                ApiError::NotFound("tenant"),
                Code::NotFound,
                "tenant not found",
            ),
            (
                ApiError::AlreadyExists("dup".into()),
                Code::AlreadyExists,
                "dup",
            ),
            (
                ApiError::FailedPrecondition("expired".into()),
                Code::FailedPrecondition,
                "expired",
            ),
            (
                ApiError::QuotaExceeded("sms_per_day"),
                Code::ResourceExhausted,
                "quota exceeded: sms_per_day",
            ),
            (
                ApiError::Unauthenticated("no token"),
                Code::Unauthenticated,
                "no token",
            ),
            (
                ApiError::PermissionDenied("other tenant"),
                Code::PermissionDenied,
                "other tenant",
            ),
            (
                ApiError::unavailable("db", std::io::Error::other("refused")),
                Code::Unavailable,
                "db",
            ),
            (
                ApiError::broken("broken"),
                Code::Internal,
                "internal error: broken",
            ),
        ];
        for (err, code, message) in cases {
            let status = status(err);
            assert_eq!((status.code(), status.message()), (code, message));
        }
    }

    #[test]
    fn a_throttled_call_says_when_to_retry() {
        let status = status(ApiError::throttled("msisdn: cooling down", 1_001));
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(status.message(), "msisdn: cooling down; retry after 2 s");
        assert_eq!(status.metadata().get(RETRY_AFTER).unwrap(), "2");
        let soon = status_of_ms(0);
        assert_eq!(soon.metadata().get(RETRY_AFTER).unwrap(), "1", "never 0");
    }

    fn status_of_ms(ms: i64) -> Status {
        status(ApiError::throttled("x", ms))
    }
}
