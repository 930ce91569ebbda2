//! Why a mail could not be dispatched, with its causes: permanent (a dead
//! letter now) or worth retrying.

use pushmail_common::bus::BusError;
use pushmail_outbox::OutboxError;

use crate::domain::Missing;
use crate::state::StateError;

/// Why a mail (or digest) could not be dispatched.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// The event is unusable.
    #[error("the event is unusable")]
    Unusable(#[from] Missing),
    /// Binding does not know the account (gone, or never was).
    #[error("binding does not know the account")]
    UnknownAccount(#[source] Box<tonic::Status>),
    /// Binding could not answer.
    #[error("binding is unavailable")]
    Binding(#[source] Box<tonic::Status>),
    /// The state store failed.
    #[error("dispatch state")]
    State(#[from] StateError),
    /// The outbox failed.
    #[error("outbox")]
    Outbox(#[from] OutboxError),
    /// The event bus refused a record.
    #[error("event bus")]
    Bus(#[from] BusError),
}

impl Failure {
    /// Retrying cannot help: the event goes to the dead-letter topic now.
    pub(crate) fn is_permanent(&self) -> bool {
        matches!(self, Self::Unusable(_) | Self::UnknownAccount(_))
    }

    /// A failed call to binding: permanent when the account is unknown.
    pub(crate) fn binding(status: tonic::Status) -> Self {
        match status.code() {
            tonic::Code::NotFound | tonic::Code::InvalidArgument => {
                Self::UnknownAccount(Box::new(status))
            }
            _ => Self::Binding(Box::new(status)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unusable_event_or_unknown_account_is_permanent() {
        let permanent = [
            Failure::Unusable(Missing("tenant")),
            Failure::binding(tonic::Status::not_found("account")),
            Failure::binding(tonic::Status::invalid_argument("account_id")),
        ];
        for failure in &permanent {
            assert!(failure.is_permanent(), "{failure:?}");
        }
        let transient = [
            Failure::binding(tonic::Status::unavailable("down")),
            Failure::binding(tonic::Status::deadline_exceeded("slow")),
            Failure::binding(tonic::Status::internal("bug")),
        ];
        for failure in &transient {
            assert!(!failure.is_permanent(), "{failure:?}");
        }
    }
}
