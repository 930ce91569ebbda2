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
            | Refusal::TooBig { .. } => Code::InvalidArgument,
            Refusal::Directory(_) => Code::Unavailable,
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
