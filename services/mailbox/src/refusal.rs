//! Why a request was not served, and the one place that becomes a gRPC
//! status: the code follows the kind of failure, and where the caller must
//! act differently a `reason` metadata entry says how (`token-invalid`:
//! sync from the start; `credentials`: the account's password is wrong;
//! `offset`: resume an upload from the `received-bytes` entry).

use pushmail_common::report::Report;
use tonic::{Code, Status};

use crate::accounts::AccountError;
use crate::backend::BackendError;
use crate::domain::BadId;
use crate::sync::{StatesError, SyncError};
use crate::uploads::UploadError;

/// Most messages one request may name.
pub(crate) const MAX_IDS: usize = 1_000;

/// Why a request was not served.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    /// The request names no tenant or account.
    #[error("tenant_id and account_id are required")]
    Unidentified,
    /// An id this service did not issue.
    #[error(transparent)]
    BadId(#[from] BadId),
    /// A sync token in no format this service issues.
    #[error("since_token is not a sync token; sync again from the start")]
    BadToken,
    /// Too many messages named at once.
    #[error("{asked} messages named; at most {MAX_IDS} at once")]
    TooMany {
        /// How many were named.
        asked: usize,
    },
    /// Too many bodies asked at once.
    #[error("{asked} bodies asked; at most {max} at once", max = crate::service::MAX_BODIES)]
    TooManyBodies {
        /// How many were asked.
        asked: usize,
    },
    /// The message has no attachment at that section.
    #[error("the message has no attachment at part {0}")]
    NoPart(String),
    /// An offset past the attachment's end.
    #[error("offset {offset} is past the attachment's {total} bytes")]
    BadRange {
        /// Asked.
        offset: u64,
        /// The attachment's size.
        total: u64,
    },
    /// Nothing named.
    #[error("no message_ids")]
    NoMessages,
    /// A search this service does not make.
    #[error("{field}: {reason}")]
    BadSearch {
        /// The request field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A delete with nowhere to move to.
    #[error("the account has no trash folder; delete with `permanent` to remove for good")]
    NoTrash,
    #[error("folder name: {0}")]
    BadFolderName(&'static str),
    #[error("the parent folder does not exist, or is the folder itself or under it")]
    NoParent,
    #[error("the inbox, sent, drafts, trash, junk and archive folders stay as they are")]
    SpecialFolder,
    /// The account cannot be opened.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// The mail server failed or refused.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A sync could not be answered.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// A Send without a kind.
    #[error("kind is required (new, reply, reply-all, forward)")]
    NoKind,
    /// The account has nowhere to send from.
    #[error(
        "the account has no submission server configured (forwarded and webhook \
         accounts send through their tenant's relay)"
    )]
    NoSubmission,
    /// The message a phone composed cannot be read.
    #[error("the message to send is not a mail message this service reads")]
    PhoneMessage(#[source] pushmail_mime::ParseError),
    /// The message replied to or forwarded cannot be read.
    #[error("the original message cannot be read")]
    Original(#[source] pushmail_mime::ParseError),
    /// The draft cannot be sent as it is.
    #[error(transparent)]
    Compose(#[from] crate::compose::ComposeError),
    /// Submission failed; nothing was sent.
    #[error(transparent)]
    Submit(#[from] crate::submit::SubmitError),
    /// The composed message is over the bound of what is read whole.
    #[error("the message would be {size} bytes; at most {max} can be sent")]
    TooLarge {
        /// Its size, encoded.
        size: u64,
        /// `imap.max_message_bytes`.
        max: u64,
    },
    /// As many Sends as this replica makes at once are being made: nothing
    /// was claimed or sent, try again.
    #[error("too many sends in progress here; try again")]
    Busy,
    /// A Send with this `client_send_id` is being made right now.
    #[error("a send with this client_send_id is in progress; ask again for its answer")]
    SendInFlight,
    /// An upload request (or a Send naming uploads) was refused.
    #[error(transparent)]
    Upload(#[from] UploadError),
}

impl From<StatesError> for Refusal {
    fn from(error: StatesError) -> Self {
        Self::Sync(SyncError::States(error))
    }
}

impl Refusal {
    /// Whether the mail may have gone out although the Send failed: its
    /// key stays claimed rather than let a retry send it again.
    pub(crate) fn maybe_sent(&self) -> bool {
        matches!(self, Self::Submit(crate::submit::SubmitError::Unknown(_)))
    }

    fn code_and_reason(&self) -> (Code, Option<&'static str>) {
        match self {
            Self::Unidentified
            | Self::BadId(_)
            | Self::TooMany { .. }
            | Self::TooManyBodies { .. }
            | Self::NoMessages
            | Self::BadSearch { .. }
            | Self::NoKind
            | Self::PhoneMessage(_)
            | Self::Compose(_) => (Code::InvalidArgument, None),
            Self::NoSubmission | Self::Original(_) => (Code::FailedPrecondition, None),
            Self::Submit(error) => submit(error),
            Self::BadToken | Self::Sync(SyncError::UnknownToken | SyncError::Renumbered(_)) => {
                (Code::FailedPrecondition, Some("token-invalid"))
            }
            Self::NoTrash => (Code::FailedPrecondition, None),
            Self::BadFolderName(_) => (Code::InvalidArgument, Some("folder-name")),
            Self::NoParent => (Code::NotFound, Some("parent")),
            Self::SpecialFolder => (Code::FailedPrecondition, Some("special-folder")),
            Self::Account(AccountError::Unknown) | Self::NoPart(_) => (Code::NotFound, None),
            Self::Account(AccountError::Unservable(_)) => (Code::FailedPrecondition, None),
            Self::Account(AccountError::Unavailable(_)) | Self::Sync(SyncError::States(_)) => {
                (Code::Unavailable, None)
            }
            Self::Backend(error) | Self::Sync(SyncError::Backend(error)) => backend(error),
            Self::Upload(error) => upload(error),
            Self::SendInFlight => (Code::Aborted, Some("send-in-flight")),
            Self::Busy => (Code::Unavailable, Some("busy")),
            Self::TooLarge { .. } => (Code::InvalidArgument, None),
            Self::BadRange { .. } => (Code::OutOfRange, None),
        }
    }
}

fn upload(error: &UploadError) -> (Code, Option<&'static str>) {
    match error {
        UploadError::NotFound => (Code::NotFound, None),
        UploadError::Offset { .. } => (Code::Aborted, Some("offset")),
        UploadError::TooLarge { .. }
        | UploadError::ChunkTooLarge { .. }
        | UploadError::EmptyChunk
        | UploadError::BeyondEnd { .. }
        | UploadError::BadName(_)
        | UploadError::BadContentType(_)
        | UploadError::TooMuchToSend { .. } => (Code::InvalidArgument, None),
        UploadError::TooManyOpen { .. } => (Code::ResourceExhausted, None),
        UploadError::Incomplete { .. } => (Code::FailedPrecondition, Some("upload-incomplete")),
        UploadError::Damaged { .. } => (Code::FailedPrecondition, Some("upload-damaged")),
        UploadError::Storage(_) | UploadError::States(_) => (Code::Unavailable, None),
    }
}

fn backend(error: &BackendError) -> (Code, Option<&'static str>) {
    match error {
        BackendError::Unavailable(_) | BackendError::Protocol(_) => (Code::Unavailable, None),
        BackendError::Credentials(_) => (Code::FailedPrecondition, Some("credentials")),
        BackendError::NoFolder(_) | BackendError::NoMessage(_) => (Code::NotFound, None),
        BackendError::BadName(_) => (Code::InvalidArgument, Some("folder-name")),
        BackendError::FolderExists(_) => (Code::AlreadyExists, None),
        BackendError::Refused { .. } | BackendError::TooLarge { .. } => {
            (Code::FailedPrecondition, None)
        }
    }
}

fn submit(error: &crate::submit::SubmitError) -> (Code, Option<&'static str>) {
    use crate::submit::SubmitError;
    match error {
        SubmitError::Unavailable(_) | SubmitError::Protocol(_) => (Code::Unavailable, None),
        SubmitError::Unknown(_) => (Code::Unavailable, Some("outcome-unknown")),
        SubmitError::Refused {
            temporary: true, ..
        } => (Code::Unavailable, None),
        SubmitError::Credentials(_) => (Code::FailedPrecondition, Some("credentials")),
        SubmitError::Recipient { .. } => (Code::InvalidArgument, Some("recipient")),
        SubmitError::Refused {
            temporary: false, ..
        } => (Code::FailedPrecondition, None),
    }
}

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Self {
        let (code, reason) = refusal.code_and_reason();
        if code == Code::Unavailable {
            tracing::warn!(error = %Report(&refusal), "mailbox request failed upstream");
        }
        let mut status = Status::new(code, Report(&refusal).to_string());
        if let Some(reason) = reason {
            status.metadata_mut().insert(
                "reason",
                tonic::metadata::MetadataValue::from_static(reason),
            );
        }
        // Where to resume: the phone need not parse the message.
        if let Refusal::Upload(UploadError::Offset { received, .. }) = &refusal {
            status.metadata_mut().insert(
                "received-bytes",
                tonic::metadata::MetadataValue::from(*received),
            );
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FolderId;
    use crate::sync::Renumbered;

    #[test]
    fn each_kind_of_refusal_has_its_code_and_reason() {
        let cases: Vec<(Refusal, Code, Option<&str>)> = vec![
            (Refusal::Unidentified, Code::InvalidArgument, None),
            (
                Refusal::BadToken,
                Code::FailedPrecondition,
                Some("token-invalid"),
            ),
            (
                Refusal::Sync(SyncError::Renumbered(Renumbered { was: 1, now: 2 })),
                Code::FailedPrecondition,
                Some("token-invalid"),
            ),
            (
                Refusal::Sync(SyncError::UnknownToken),
                Code::FailedPrecondition,
                Some("token-invalid"),
            ),
            (
                Refusal::Backend(BackendError::Credentials("no".into())),
                Code::FailedPrecondition,
                Some("credentials"),
            ),
            (
                Refusal::Sync(SyncError::Backend(BackendError::NoFolder(FolderId::new(
                    "x",
                )))),
                Code::NotFound,
                None,
            ),
            (
                Refusal::Backend(BackendError::Unavailable(std::io::Error::other("gone"))),
                Code::Unavailable,
                None,
            ),
            (
                Refusal::Account(AccountError::Unknown),
                Code::NotFound,
                None,
            ),
            (
                Refusal::Upload(UploadError::Offset {
                    offset: 0,
                    received: 5,
                }),
                Code::Aborted,
                Some("offset"),
            ),
            (
                Refusal::Upload(UploadError::TooManyOpen { max: 1 }),
                Code::ResourceExhausted,
                None,
            ),
        ];
        for (refusal, code, reason) in cases {
            let text = refusal.to_string();
            let status = Status::from(refusal);
            assert_eq!(status.code(), code, "{text}");
            assert_eq!(
                status
                    .metadata()
                    .get("reason")
                    .and_then(|v| v.to_str().ok()),
                reason,
                "{text}"
            );
            assert!(status.message().starts_with(&text), "{}", status.message());
        }
    }
}
