//! Why a request was not served, and the one place that becomes a gRPC
//! status: the code follows the kind of failure. Everything a file can
//! cause (a bound, a limit that killed its worker, the deadline) is
//! FAILED_PRECONDITION, which the gateway answers `422 cannot_convert`: a
//! device asking again gets the same answer, so it must not look like a
//! transient 504.

use pushmail_common::blob::BlobError;
use pushmail_common::report::Report;
use tonic::{Code, Status};

use crate::parts::PartError;
use crate::pipeline::FailureKind;
use crate::pool::PoolError;
use crate::profile::ProfileError;
use crate::worker::Failure;

/// Why a request was not served.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    /// The request names no tenant or account.
    #[error("tenant_id and account_id are required")]
    Unidentified,
    /// The message reference is malformed.
    #[error("blob_ref must be sha256:<64 hex digits>")]
    BlobRef(#[source] BlobError),
    /// The blob store failed (logged where it happens, not told the caller).
    #[error("the message store is unavailable")]
    Store,
    /// No such message, or not this account's.
    #[error("no such message for this account")]
    NoSuchMessage,
    /// The stored message is over the bound read.
    #[error("the message is {size} bytes; at most {max} are read")]
    MessageTooBig {
        /// Its size.
        size: usize,
        /// The bound.
        max: usize,
    },
    /// No part named.
    #[error("part_id is required (an IMAP section or \"body\")")]
    NoPartId,
    /// The part cannot be had.
    #[error(transparent)]
    Part(#[from] PartError),
    /// The part is over the bound converted.
    #[error("part {part} is {size} bytes; at most {max} are converted")]
    PartTooBig {
        /// The part.
        part: String,
        /// Its size.
        size: usize,
        /// The bound.
        max: usize,
    },
    /// The named profile is not configured.
    #[error("no profile {name:?}; configured: {configured}")]
    UnknownProfile {
        /// The name asked for.
        name: String,
        /// The names there are.
        configured: String,
    },
    /// The profile sent with the request is unusable.
    #[error("profile")]
    Profile(#[source] ProfileError),
    /// No converter takes the part's type.
    #[error("no converter for {0}")]
    NoConverter(String),
    /// A worker refused the job: the file is not one it converts.
    #[error(transparent)]
    Failed(Failure),
    /// No worker answered: busy, out of time, killed by a limit, or none
    /// could be started.
    #[error(transparent)]
    Worker(PoolError),
    /// A worker answered something else than what it was asked for.
    #[error("the converter gave up on this file: the worker answered {0} out of turn")]
    OutOfTurn(&'static str),
    /// A worker's description of the message does not decode.
    #[error("the converter gave up on this file: its description is unreadable")]
    Description(#[source] prost::DecodeError),
}

impl Refusal {
    fn code(&self) -> Code {
        match self {
            Self::Unidentified
            | Self::BlobRef(_)
            | Self::NoPartId
            | Self::UnknownProfile { .. }
            | Self::Profile(_) => Code::InvalidArgument,
            Self::Store => Code::Unavailable,
            Self::NoSuchMessage | Self::Part(PartError::NoSuchPart(_)) => Code::NotFound,
            Self::Failed(f) if f.kind == FailureKind::NoSuchPage => Code::NotFound,
            Self::Worker(PoolError::Busy) => Code::ResourceExhausted,
            Self::Worker(PoolError::Spawn { .. } | PoolError::Limit(_)) => Code::Unavailable,
            // What the file caused: its worker killed by a limit, the
            // deadline passed, garbage on the pipe.
            Self::MessageTooBig { .. }
            | Self::Part(_)
            | Self::PartTooBig { .. }
            | Self::NoConverter(_)
            | Self::Failed(_)
            | Self::Worker(_)
            | Self::OutOfTurn(_)
            | Self::Description(_) => Code::FailedPrecondition,
        }
    }
}

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Self {
        Status::new(refusal.code(), Report(&refusal).to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn each_kind_of_refusal_has_its_code_and_says_why() {
        let cases = [
            (
                Refusal::Unidentified,
                Code::InvalidArgument,
                "tenant_id and account_id are required",
            ),
            (
                Refusal::Profile(ProfileError::Width(0)),
                Code::InvalidArgument,
                "profile: ",
            ),
            (
                Refusal::Store,
                Code::Unavailable,
                "the message store is unavailable",
            ),
            (Refusal::NoSuchMessage, Code::NotFound, "no such message"),
            (
                Refusal::Part(PartError::NoSuchPart("9".into())),
                Code::NotFound,
                "the message has no part \"9\"",
            ),
            (
                Refusal::Part(PartError::Container("1".into())),
                Code::FailedPrecondition,
                "multipart container",
            ),
            (
                Refusal::MessageTooBig { size: 9, max: 5 },
                Code::FailedPrecondition,
                "the message is 9 bytes; at most 5 are read",
            ),
            (
                Refusal::Worker(PoolError::Busy),
                Code::ResourceExhausted,
                "busy",
            ),
            (
                Refusal::Worker(PoolError::Limit(std::io::Error::other("no prlimit"))),
                Code::Unavailable,
                "cannot limit a converter worker: no prlimit",
            ),
            (
                Refusal::Failed(Failure {
                    kind: FailureKind::NoSuchPage,
                    detail: "page 9 asked".into(),
                }),
                Code::NotFound,
                "page 9",
            ),
            (
                Refusal::Failed(Failure {
                    kind: FailureKind::OverLimit,
                    detail: "image of 9 bytes is over the 5-byte limit".into(),
                }),
                Code::FailedPrecondition,
                "over the 5-byte limit",
            ),
            (
                Refusal::Worker(PoolError::Timeout(Duration::from_secs(1))),
                Code::FailedPrecondition,
                "did not finish",
            ),
        ];
        for (refusal, code, says) in cases {
            let status = Status::from(refusal);
            assert_eq!(status.code(), code, "{status:?}");
            assert!(status.message().contains(says), "{status:?}");
        }
    }
}
