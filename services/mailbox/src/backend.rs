//! Where an account's mail lives, behind one trait: the upstream IMAP
//! server for an external IMAP account, the platform's own store for the
//! others. Every backend is held to the behaviour suite in
//! `integration-tests/tests/mailbox_backend.rs`.

use async_trait::async_trait;

use crate::domain::{
    FlagUpdate, Flags, Folder, FolderId, FolderRole, Listed, MessageKey, Query, Uid,
};
use crate::sync::Listing;

/// A backend could not do what was asked. Nothing was half-done: a failed
/// move or delete leaves the messages where they were.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The mail server could not be reached, or dropped the connection,
    /// or did not answer in time. Worth retrying.
    #[error("the mail server is unavailable")]
    Unavailable(#[source] std::io::Error),
    /// The mail server refused the account's credentials.
    #[error("the mail server refused the account's credentials: {0}")]
    Credentials(String),
    /// The folder does not exist (any more).
    #[error("no folder {0}")]
    NoFolder(FolderId),
    /// The message does not exist (any more), or its folder was
    /// renumbered since its id was issued.
    #[error("no message {0}")]
    NoMessage(String),
    /// The server refused a command for a reason of its own.
    #[error("the mail server refused {command}: {text}")]
    Refused {
        /// The command's verb.
        command: &'static str,
        /// What the server said.
        text: String,
    },
    /// A message over the size this service reads whole.
    #[error("the message is {size} bytes; at most {max} are read")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The bound.
        max: u64,
    },
    /// The server answered with something that is not its protocol.
    #[error("the mail server broke the protocol: {0}")]
    Protocol(String),
    /// A folder of that name exists already.
    #[error("folder {0} exists already")]
    FolderExists(FolderId),
    /// A folder name this mailbox cannot hold.
    #[error("folder name: {0}")]
    BadName(&'static str),
}

/// One account's mailbox, connected. A value serves one caller at a time;
/// the service holds it only for the length of a request.
#[async_trait]
pub trait Mailbox: Send {
    /// Every folder, with its role, counts and version.
    async fn folders(&mut self) -> Result<Vec<Folder>, BackendError>;

    /// The folder with `role`, if the account has one. The default lists
    /// every folder; a backend that can find roles more cheaply says so.
    async fn folder_with_role(
        &mut self,
        role: FolderRole,
    ) -> Result<Option<FolderId>, BackendError> {
        Ok(self
            .folders()
            .await?
            .into_iter()
            .find(|f| f.role == role)
            .map(|f| f.id))
    }

    /// What `folder` holds now: only the changes after `since` (the
    /// UIDVALIDITY and HIGHESTMODSEQ a state was complete at) where the
    /// backend can say so, else everything.
    async fn listing(
        &mut self,
        folder: &FolderId,
        since: Option<(u32, u64)>,
    ) -> Result<Listing, BackendError>;

    /// Summaries of `uids` in `folder`, in the order asked; a UID that is
    /// gone is left out.
    async fn summaries(
        &mut self,
        folder: &FolderId,
        uid_validity: u32,
        uids: &[Uid],
    ) -> Result<Vec<Listed>, BackendError>;

    /// The UIDs of `folder`'s messages that match `query` (the server's
    /// own search where there is one), with the folder's UIDVALIDITY. A
    /// backend may match the dates by the day and more widely than asked;
    /// the caller checks them against the summaries.
    async fn search(
        &mut self,
        folder: &FolderId,
        query: &Query,
    ) -> Result<(u32, Vec<Uid>), BackendError>;

    /// The message as mailed.
    async fn raw(&mut self, key: &MessageKey) -> Result<Vec<u8>, BackendError>;

    /// Several messages of one folder as mailed, each shown to `each`
    /// with its own outcome (`NoMessage` when gone, `TooLarge`), in no
    /// set order; `Err` when the folder or the server failed. The default
    /// reads them one by one; a backend with round trips to save batches
    /// them.
    async fn raws(
        &mut self,
        folder: &FolderId,
        uid_validity: u32,
        uids: &[Uid],
        each: &mut (dyn FnMut(Uid, Result<Vec<u8>, BackendError>) + Send),
    ) -> Result<(), BackendError> {
        for &uid in uids {
            let key = MessageKey {
                folder: folder.clone(),
                uid_validity,
                uid,
            };
            match self.raw(&key).await {
                Err(error @ (BackendError::Unavailable(_) | BackendError::Protocol(_))) => {
                    return Err(error);
                }
                outcome => each(uid, outcome),
            }
        }
        Ok(())
    }

    /// Changes flags of messages of one folder.
    async fn set_flags(
        &mut self,
        folder: &FolderId,
        uid_validity: u32,
        uids: &[Uid],
        update: FlagUpdate,
    ) -> Result<(), BackendError>;

    /// Moves messages of one folder to `to`; each moved UID with its new
    /// UID where the backend knows it.
    async fn move_to(
        &mut self,
        folder: &FolderId,
        uid_validity: u32,
        uids: &[Uid],
        to: &FolderId,
    ) -> Result<Vec<(Uid, Option<MessageKey>)>, BackendError>;

    /// Removes messages of one folder for good.
    async fn expunge(
        &mut self,
        folder: &FolderId,
        uid_validity: u32,
        uids: &[Uid],
    ) -> Result<(), BackendError>;

    /// Stores a message in `folder` (a sent copy, a draft); its key where
    /// the backend knows it.
    async fn append(
        &mut self,
        folder: &FolderId,
        raw: &[u8],
        flags: Flags,
    ) -> Result<Option<MessageKey>, BackendError>;

    /// Makes a folder named `name` (as a person writes it) under
    /// `parent` (`None`: at the top); its id. The caller has checked that
    /// the parent exists and has no child of that name.
    async fn create_folder(
        &mut self,
        parent: Option<&FolderId>,
        name: &str,
    ) -> Result<FolderId, BackendError>;

    /// Renames `folder` to `name` under `parent` (`None`: the top), with
    /// everything under it; its new id (a folder's id is its name).
    async fn rename_folder(
        &mut self,
        folder: &FolderId,
        parent: Option<&FolderId>,
        name: &str,
    ) -> Result<FolderId, BackendError>;

    /// Deletes `folder` with its messages; the caller deletes what is
    /// under it first.
    async fn delete_folder(&mut self, folder: &FolderId) -> Result<(), BackendError>;

    /// Ends the session politely (IMAP LOGOUT).
    async fn close(self: Box<Self>);
}
