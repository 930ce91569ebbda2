//! The mailbox service as the commands use it: the phone's account's
//! folders, changes by token, bodies and the changes a phone makes, each
//! failure sorted into what a command tells the phone (start again, the
//! folder is gone, try later).

use pushmail_common::grpc::TracedChannel;
use pushmail_proto::mailbox::v1 as pb;
use pushmail_proto::mailbox::v1::mailbox_service_client::MailboxServiceClient;
use tonic::Code;

use crate::login::Login;

pub use pb::{AttachmentContent, Body, BodyType, Folder, FolderRole, Summary};

/// Largest answer read from the mailbox service: a page of bodies.
const MAX_ANSWER: usize = 16 << 20;

/// Why the mailbox could not answer.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The token can no longer be honoured: the phone starts again.
    #[error("the sync key is unknown or expired")]
    InvalidKey,
    /// The folder or message is not the account's (any more).
    #[error("not found: {0}")]
    NotFound(String),
    /// The request itself was refused (a bad id, too many at once).
    #[error("refused: {0}")]
    Refused(String),
    /// A byte range past the end.
    #[error("out of range: {0}")]
    OutOfRange(String),
    /// A folder edit the mailbox refused.
    #[error("{0}: {1}")]
    Folder(FolderRefusal, String),
    /// The mailbox service or the mail server could not be reached.
    #[error("the mailbox is unavailable")]
    Unavailable(#[source] tonic::Status),
}

/// Why a folder could not be made, renamed or deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FolderRefusal {
    /// The parent folder named is not there (or is the folder moved).
    #[error("no such parent folder")]
    NoParent,
    /// A folder of that name is there already.
    #[error("the name is taken")]
    Exists,
    /// One of the folders every mailbox keeps, which stay as they are.
    #[error("a special folder")]
    Special,
}

impl From<tonic::Status> for MailError {
    fn from(status: tonic::Status) -> Self {
        let reason = status
            .metadata()
            .get("reason")
            .and_then(|v| v.to_str().ok());
        match (status.code(), reason) {
            (Code::FailedPrecondition, Some("token-invalid")) => Self::InvalidKey,
            (Code::FailedPrecondition, Some("special-folder")) => {
                Self::Folder(FolderRefusal::Special, status.message().to_owned())
            }
            (Code::NotFound, Some("parent")) => {
                Self::Folder(FolderRefusal::NoParent, status.message().to_owned())
            }
            (Code::AlreadyExists, _) => {
                Self::Folder(FolderRefusal::Exists, status.message().to_owned())
            }
            (Code::NotFound, _) => Self::NotFound(status.message().to_owned()),
            (Code::InvalidArgument, _) => Self::Refused(status.message().to_owned()),
            (Code::OutOfRange, _) => Self::OutOfRange(status.message().to_owned()),
            _ => Self::Unavailable(status),
        }
    }
}

/// How a message the phone composed is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outgoing {
    /// The user's signature goes on it.
    pub signed: bool,
    /// A copy is kept in the Sent folder.
    pub sent_copy: bool,
}

/// What a mailbox search looks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailSearch {
    /// Words, any case; empty: any message.
    pub text: String,
    /// Received at or after, ms since the epoch.
    pub after_ms: Option<i64>,
    /// Received before, ms since the epoch.
    pub before_ms: Option<i64>,
}

/// The folder tree's changes.
#[derive(Debug, Clone, Default)]
pub struct TreeChanges {
    /// New folders, parents first.
    pub added: Vec<Folder>,
    /// Renamed or moved.
    pub changed: Vec<Folder>,
    /// Gone (ids), children first.
    pub removed: Vec<String>,
    /// The token for the next call.
    pub token: String,
}

/// A folder's changes.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// New messages, newest first.
    pub added: Vec<Summary>,
    /// Flags changed: message id, read, flagged.
    pub changed: Vec<(String, bool, bool)>,
    /// Gone (message ids).
    pub removed: Vec<String>,
    /// The token for the next call.
    pub token: String,
    /// More wait.
    pub more: bool,
}

/// What a phone's message is: new, or a reply to or forward of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sending<'a> {
    /// A new message.
    New,
    /// A reply to the message with this id.
    Reply(&'a str),
    /// A forward of the message with this id (quoted, its attachments
    /// carried).
    Forward(&'a str),
}

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// It cannot be sent as it is (not a message, no recipient).
    #[error("refused: {0}")]
    Invalid(String),
    /// The message replied to or forwarded is gone.
    #[error("the original is gone: {0}")]
    NoOriginal(String),
    /// The account cannot send, or submission refused it.
    #[error("not sent: {0}")]
    NotSent(String),
    /// A send with the same ClientId is being made: ask again later.
    #[error("a send with this ClientId is in progress")]
    InFlight,
    /// The mailbox service or the provider could not be reached.
    #[error("the mailbox is unavailable")]
    Unavailable(#[source] tonic::Status),
}

impl From<tonic::Status> for SendError {
    fn from(status: tonic::Status) -> Self {
        let message = status.message().to_owned();
        match status.code() {
            Code::InvalidArgument => Self::Invalid(message),
            Code::NotFound => Self::NoOriginal(message),
            Code::FailedPrecondition | Code::PermissionDenied => Self::NotSent(message),
            Code::Aborted => Self::InFlight,
            _ => Self::Unavailable(status),
        }
    }
}

/// Messages the phone marked: read and flagged as set (`None`: left).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagsSet {
    /// The messages.
    pub ids: Vec<String>,
    /// Read.
    pub read: Option<bool>,
    /// Flagged for follow-up.
    pub flagged: Option<bool>,
}

/// The mailbox service, with activesync's credential.
#[derive(Debug, Clone)]
pub struct Mail(MailboxServiceClient<TracedChannel>);

impl Mail {
    /// Over `channel`.
    pub fn new(channel: TracedChannel) -> Self {
        Self(MailboxServiceClient::new(channel).max_decoding_message_size(MAX_ANSWER))
    }

    /// What changed in the tree since `token` ("": all of it).
    pub async fn folder_changes(
        &self,
        login: &Login,
        token: &str,
    ) -> Result<TreeChanges, MailError> {
        let answer = self
            .0
            .clone()
            .folder_changes(pb::FolderChangesRequest {
                tenant_id: login.tenant.clone(),
                account_id: login.account.clone(),
                since_token: token.to_owned(),
            })
            .await?
            .into_inner();
        Ok(TreeChanges {
            added: answer.added,
            changed: answer.changed,
            removed: answer.removed,
            token: answer.next_token,
        })
    }

    /// Makes the folder `name` under `parent` ("": the top) for the phone
    /// holding the tree `token`; the folder and the tree's next token.
    pub async fn create_folder(
        &self,
        login: &Login,
        token: &str,
        parent: &str,
        name: &str,
    ) -> Result<(Folder, String), MailError> {
        let answer = self
            .0
            .clone()
            .create_folder(pb::CreateFolderRequest {
                tenant_id: login.tenant.clone(),
                account_id: login.account.clone(),
                since_token: token.to_owned(),
                parent_id: parent.to_owned(),
                name: name.to_owned(),
            })
            .await?
            .into_inner();
        Ok((answer.folder.unwrap_or_default(), answer.next_token))
    }

    /// Renames (or moves) `folder`; the tree's next token.
    pub async fn rename_folder(
        &self,
        login: &Login,
        token: &str,
        folder: &str,
        parent: &str,
        name: &str,
    ) -> Result<String, MailError> {
        let answer = self
            .0
            .clone()
            .rename_folder(pb::RenameFolderRequest {
                tenant_id: login.tenant.clone(),
                account_id: login.account.clone(),
                since_token: token.to_owned(),
                folder_id: folder.to_owned(),
                parent_id: parent.to_owned(),
                name: name.to_owned(),
            })
            .await?
            .into_inner();
        Ok(answer.next_token)
    }

    /// Deletes `folder` and what is under it; the tree's next token.
    pub async fn delete_folder(
        &self,
        login: &Login,
        token: &str,
        folder: &str,
    ) -> Result<String, MailError> {
        let answer = self
            .0
            .clone()
            .delete_folder(pb::DeleteFolderRequest {
                tenant_id: login.tenant.clone(),
                account_id: login.account.clone(),
                since_token: token.to_owned(),
                folder_id: folder.to_owned(),
            })
            .await?
            .into_inner();
        Ok(answer.next_token)
    }

    /// Up to `window` changes of `folder` since `token` ("": all).
    pub async fn sync(
        &self,
        login: &Login,
        folder: &str,
        token: &str,
        window: u32,
    ) -> Result<Changes, MailError> {
        let answer = self
            .0
            .clone()
            .sync(pb::SyncRequest {
                tenant_id: login.tenant.clone(),
                account_id: login.account.clone(),
                folder_id: folder.to_owned(),
                since_token: token.to_owned(),
                window,
            })
            .await?
            .into_inner();
        Ok(Changes {
            added: answer.added,
            changed: answer
                .changed
                .into_iter()
                .map(|c| {
                    let flags = c.flags.unwrap_or_default();
                    (c.message_id, flags.seen, flags.flagged)
                })
                .collect(),
            removed: answer.removed,
            token: answer.next_token,
            more: answer.more_available,
        })
    }

    /// The token after `token` holding the phone's own changes as told:
    /// `flagged` (ids with the read and flagged values set) and `removed`.
    pub async fn acknowledge(
        &self,
        login: &Login,
        folder: &str,
        token: &str,
        flagged: &[FlagsSet],
        removed: &[String],
    ) -> Result<String, MailError> {
        Ok(self
            .0
            .clone()
            .acknowledge(pb::AcknowledgeRequest {
                tenant_id: login.tenant.clone(),
                account_id: login.account.clone(),
                folder_id: folder.to_owned(),
                since_token: token.to_owned(),
                flagged: flagged
                    .iter()
                    .map(|set| pb::Acknowledged {
                        message_ids: set.ids.clone(),
                        update: Some(pb::FlagUpdate {
                            seen: set.read,
                            flagged: set.flagged,
                            ..Default::default()
                        }),
                    })
                    .collect(),
                removed: removed.to_vec(),
            })
            .await?
            .into_inner()
            .next_token)
    }

    /// Up to `max` bytes (0: the service's most) of an attachment from
    /// `offset`.
    pub async fn attachment(
        &self,
        login: &Login,
        message_id: &str,
        part_id: &str,
        offset: u64,
        max: u64,
    ) -> Result<AttachmentContent, MailError> {
        Ok(self
            .0
            .clone()
            .get_attachment(pb::GetAttachmentRequest {
                tenant_id: login.tenant.clone(),
                account_id: login.account.clone(),
                message_id: message_id.to_owned(),
                part_id: part_id.to_owned(),
                offset,
                max_bytes: max,
            })
            .await?
            .into_inner())
    }

    /// Removes every message of `folder` for good.
    pub async fn empty_folder(&self, login: &Login, folder: &str) -> Result<(), MailError> {
        self.0
            .clone()
            .empty_folder(pb::EmptyFolderRequest {
                tenant_id: login.tenant.clone(),
                account_id: login.account.clone(),
                folder_id: folder.to_owned(),
                device_id: login.device.clone(),
            })
            .await?;
        Ok(())
    }

    /// Moves `ids` to `folder`: each moved id with its id there ("" where
    /// the server did not say).
    pub async fn move_to(
        &self,
        login: &Login,
        ids: &[String],
        folder: &str,
    ) -> Result<Vec<(String, String)>, MailError> {
        Ok(self
            .0
            .clone()
            .r#move(pb::MoveRequest {
                tenant_id: login.tenant.clone(),
                account_id: login.account.clone(),
                message_ids: ids.to_vec(),
                to_folder_id: folder.to_owned(),
                device_id: login.device.clone(),
            })
            .await?
            .into_inner()
            .moved
            .into_iter()
            .map(|m| (m.message_id, m.new_message_id))
            .collect())
    }

    /// Sends the message the phone composed (`mime`), once per
    /// `client_id`: a repeated request sends nothing again.
    pub async fn send(
        &self,
        login: &Login,
        sending: Sending<'_>,
        mime: Vec<u8>,
        client_id: &str,
        how: Outgoing,
    ) -> Result<(), SendError> {
        let signature = &login.preferences.signature;
        let (kind, reference) = match sending {
            Sending::New => (pb::SendKind::New, ""),
            Sending::Reply(id) => (pb::SendKind::Reply, id),
            Sending::Forward(id) => (pb::SendKind::ForwardInline, id),
        };
        self.0
            .clone()
            .send(pb::SendRequest {
                tenant_id: login.tenant.clone(),
                account_id: login.account.clone(),
                kind: kind.into(),
                reference_message_id: reference.to_owned(),
                client_send_id: client_id.to_owned(),
                device_id: login.device.clone(),
                mime,
                no_sent_copy: !how.sent_copy,
                signature: (how.signed && !signature.is_empty()).then(|| pb::Signature {
                    text: signature.clone(),
                    html: String::new(),
                }),
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// A message's summary.
    pub async fn summary(&self, login: &Login, id: &str) -> Result<Summary, MailError> {
        self.0
            .clone()
            .get_message(pb::GetMessageRequest {
                tenant_id: login.tenant.clone(),
                account_id: login.account.clone(),
                message_id: id.to_owned(),
            })
            .await?
            .into_inner()
            .summary
            .ok_or_else(|| MailError::NotFound(id.to_owned()))
    }

    /// Messages in `folders` (none: every folder) matching `search`,
    /// newest first, at most `limit`, with how many matched.
    pub async fn search(
        &self,
        login: &Login,
        folders: &[String],
        search: &MailSearch,
        limit: u32,
    ) -> Result<(Vec<Summary>, u32), MailError> {
        let found = self
            .0
            .clone()
            .search(pb::SearchRequest {
                tenant_id: login.tenant.clone(),
                account_id: login.account.clone(),
                folder_ids: folders.to_vec(),
                text: search.text.clone(),
                received_after: search.after_ms.map(pushmail_common::clock::timestamp),
                received_before: search.before_ms.map(pushmail_common::clock::timestamp),
                limit,
            })
            .await?
            .into_inner();
        Ok((found.found, found.total))
    }

    /// How many changes a sync of `folder` from `token` would give.
    pub async fn estimate(
        &self,
        login: &Login,
        folder: &str,
        token: &str,
    ) -> Result<u32, MailError> {
        Ok(self
            .0
            .clone()
            .estimate_sync(pb::EstimateSyncRequest {
                tenant_id: login.tenant.clone(),
                account_id: login.account.clone(),
                folder_id: folder.to_owned(),
                since_token: token.to_owned(),
            })
            .await?
            .into_inner()
            .estimate)
    }

    /// The bodies of `ids` as `kind`, each at most `max_bytes`.
    pub async fn bodies(
        &self,
        login: &Login,
        ids: &[String],
        kind: BodyType,
        max_bytes: u64,
    ) -> Result<Vec<Body>, MailError> {
        Ok(self
            .0
            .clone()
            .get_bodies(pb::GetBodiesRequest {
                tenant_id: login.tenant.clone(),
                account_id: login.account.clone(),
                message_ids: ids.to_vec(),
                r#type: kind.into(),
                max_bytes,
            })
            .await?
            .into_inner()
            .bodies)
    }

    /// Marks messages read or unread and flagged or not, as the phone says.
    pub async fn set_flags(&self, login: &Login, set: &FlagsSet) -> Result<(), MailError> {
        self.0
            .clone()
            .set_flags(pb::SetFlagsRequest {
                tenant_id: login.tenant.clone(),
                account_id: login.account.clone(),
                message_ids: set.ids.clone(),
                update: Some(pb::FlagUpdate {
                    seen: set.read,
                    flagged: set.flagged,
                    ..Default::default()
                }),
                device_id: login.device.clone(),
            })
            .await?;
        Ok(())
    }

    /// Deletes `ids`: to the trash, or for good when `permanent`.
    pub async fn delete(
        &self,
        login: &Login,
        ids: &[String],
        permanent: bool,
    ) -> Result<(), MailError> {
        self.0
            .clone()
            .delete(pb::DeleteRequest {
                tenant_id: login.tenant.clone(),
                account_id: login.account.clone(),
                message_ids: ids.to_vec(),
                permanent,
                device_id: login.device.clone(),
            })
            .await?;
        Ok(())
    }
}
