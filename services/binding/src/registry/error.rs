//! The one error type of the binding API: what the registry returns and the
//! gRPC edge maps to a status (in `grpc/status.rs`, the only place).

use std::fmt;
use std::sync::Arc;

use pushmail_common::bus::BusError;

use crate::store::StoreError;

/// Why a call was refused or failed. Messages are for the caller: they name
/// the field and the rule, never a secret or an internal detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ApiError {
    /// An input broke a rule.
    #[error("{field}: {reason}")]
    Invalid {
        /// The request field.
        field: &'static str,
        /// The rule it broke.
        reason: String,
    },
    /// The thing does not exist for this tenant.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// It exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// The state does not allow it (expired code, revoked device, …).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A quota is spent.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(&'static str),
    /// A limit that waiting lifts; the caller is told how long.
    #[error("{reason}; retry after {retry_after_seconds} s")]
    Throttled {
        /// Which limit.
        reason: String,
        /// Whole seconds until it lifts (at least 1).
        retry_after_seconds: u64,
    },
    /// No or unknown credentials.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The credentials do not cover this call.
    #[error("{0}")]
    PermissionDenied(&'static str),
    /// A dependency is down; retrying may help. The caller is told which,
    /// the log gets the causes.
    #[error("{0}")]
    Unavailable(Cause),
    /// A stored value is broken or a rule failed inside; retrying will not
    /// help. The caller is told what, the log gets the causes.
    #[error("internal error: {0}")]
    Internal(Cause),
}

/// What failed, for the caller, and why (kept for the log, never sent).
#[derive(Debug, Clone)]
pub(crate) struct Cause {
    what: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Two causes are the same when they say the same (their sources are for
/// the log).
impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        self.what == other.what
    }
}

impl Eq for Cause {}

impl ApiError {
    /// `what` failed inside, because of `source`.
    pub(crate) fn internal(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Internal(Cause {
            what: what.into(),
            source: Some(Arc::from(source.into())),
        })
    }

    /// `what` is down, because of `source`; retrying may help.
    pub(crate) fn unavailable(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Unavailable(Cause {
            what: what.into(),
            source: Some(Arc::from(source.into())),
        })
    }

    /// `what` failed inside, with no further cause.
    pub(crate) fn broken(what: impl Into<String>) -> Self {
        Self::Internal(Cause {
            what: what.into(),
            source: None,
        })
    }

    /// A limit lifting after `retry_after_ms` (rounded up to a second).
    pub(crate) fn throttled(reason: impl Into<String>, retry_after_ms: i64) -> Self {
        let seconds = u64::try_from(retry_after_ms.max(0))
            .unwrap_or(0)
            .div_ceil(1_000);
        Self::Throttled {
            reason: reason.into(),
            retry_after_seconds: seconds.max(1),
        }
    }

    /// An input that broke a rule.
    pub(crate) fn invalid(field: &'static str, reason: impl std::fmt::Display) -> Self {
        Self::Invalid {
            field,
            reason: reason.to_string(),
        }
    }

    /// Submission settings on a kind that has no login of its own to send
    /// with (forwarded and webhook accounts will send through a tenant
    /// relay); the same words at creation and update.
    pub(crate) fn submission_refused(kind: crate::domain::AccountKind) -> Self {
        Self::invalid(
            "submission",
            format!(
                "is only for IMAP and POP3 accounts, not a {} account",
                kind.as_str()
            ),
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(what) => Self::AlreadyExists(what),
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::QuotaExceeded(what) => Self::QuotaExceeded(what),
            StoreError::Throttled {
                reason,
                retry_after_ms,
            } => Self::throttled(reason, retry_after_ms),
            StoreError::Precondition(why) => Self::FailedPrecondition(why),
            StoreError::Forbidden(why) => Self::PermissionDenied(why),
            // The edge validates first, so a refused value is a stored row
            // or a rule the edge missed: not the caller's to fix.
            StoreError::Invalid(what) => Self::broken(what),
            StoreError::Unreadable { what, source } => Self::Internal(Cause {
                what: format!("a stored {what} is unreadable"),
                source: Some(source),
            }),
            err @ StoreError::Unavailable { .. } => {
                Self::unavailable("database unavailable, retry later", err)
            }
        }
    }
}

impl From<BusError> for ApiError {
    fn from(err: BusError) -> Self {
        Self::unavailable("event bus unavailable, retry later", err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_row_is_internal_and_keeps_its_cause_for_the_log() {
        let cause = crate::domain::Msisdn::parse("not a number").unwrap_err();
        let err = ApiError::from(StoreError::unreadable("msisdn", cause.clone()));
        assert_eq!(err, ApiError::broken("a stored msisdn is unreadable"));
        assert_eq!(
            err.to_string(),
            "internal error: a stored msisdn is unreadable"
        );
        let ApiError::Internal(internal) = &err else {
            panic!("internal: {err:?}");
        };
        let source = std::error::Error::source(internal).expect("the cause");
        assert_eq!(source.to_string(), cause.to_string());
    }
}
