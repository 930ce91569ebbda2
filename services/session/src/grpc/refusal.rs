//! Why a `SessionService` call was refused, and the one place that becomes
//! a gRPC status (the code by the kind of failure).

use pushmail_common::report::Report;
use tonic::{Code, Status};

use crate::directory::DirectoryError;

/// Why a call was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    /// `Deliver` without a notification.
    #[error("notification is required")]
    NoNotification,
    /// The notification names no tenant or device.
    #[error("notification.tenant_id and device_id are required")]
    Unaddressed,
    /// A notification always has an outbox sequence.
    #[error("notification.sequence must be positive")]
    NoSequence,
    /// Larger than any connection is asked to buffer.
    #[error("notification is {size} bytes as a frame; at most {max}")]
    TooBig {
        /// Its frame's size.
        size: usize,
        /// The bound.
        max: usize,
    },
    /// A hold's interval out of bounds.
    #[error("heartbeat_seconds {seconds} is out of 1..={max}")]
    HoldInterval {
        /// As asked.
        seconds: u32,
        /// The bound.
        max: u64,
    },
    /// A hold watching more mailboxes than any phone names.
    #[error("{count} mailboxes watched; at most {max}")]
    TooManyWatched {
        /// As asked.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// The hold could not start.
    #[error("the device cannot be held now")]
    Hold(#[from] crate::hold::HoldError),
    /// The directory could not be read.
    #[error("the device directory is unavailable")]
    Directory(#[from] DirectoryError),
}

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Self {
        let code = match refusal {
            Refusal::NoNotification
            | Refusal::Unaddressed
            | Refusal::NoSequence
            | Refusal::TooBig { .. }
            | Refusal::HoldInterval { .. }
            | Refusal::TooManyWatched { .. } => Code::InvalidArgument,
            Refusal::Directory(_) | Refusal::Hold(_) => Code::Unavailable,
        };
        Status::new(code, Report(&refusal).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_requests_are_invalid_and_a_lost_directory_is_unavailable() {
        for refusal in [
            Refusal::NoNotification,
            Refusal::Unaddressed,
            Refusal::NoSequence,
            Refusal::TooBig { size: 9, max: 4 },
            Refusal::HoldInterval {
                seconds: 0,
                max: 3_600,
            },
            Refusal::TooManyWatched {
                count: 1_001,
                max: 1_000,
            },
        ] {
            assert_eq!(Status::from(refusal).code(), Code::InvalidArgument);
        }
        let lost = Refusal::Directory(DirectoryError::BadRenewal {
            position: 3,
            sent: 2,
        });
        let status = Status::from(lost);
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            status.message(),
            "the device directory is unavailable: lease renewal answered position 3 of 2"
        );
    }
}
