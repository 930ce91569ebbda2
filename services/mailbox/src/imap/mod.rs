//! The upstream IMAP backend: an external account's mailbox read and
//! written on its provider's server, on the phone's behalf (the U-IMAP of
//! the 139 model). Sessions are opened per request by [`ImapConnector`].

mod conn;
mod folders;
mod select;
mod summary;
mod utf7;
mod write;

use std::time::Duration;

use async_trait::async_trait;
use pushmail_common::upstream::Tls;

pub use conn::ImapAccount;

use crate::backend::{BackendError, Mailbox};
use crate::domain::{FlagUpdate, Flags, Folder, FolderId, Listed, MessageKey, Uid};
use crate::sync::Listing;

use conn::Conn;
use select::Selected;

/// Opens IMAP sessions.
#[derive(Debug, Clone)]
pub struct ImapConnector {
    tls: Tls,
    timeout: Duration,
}

impl ImapConnector {
    /// Connects through `tls` (and its egress policy), waiting at most
    /// `timeout` for any answer.
    pub fn new(tls: Tls, timeout: Duration) -> Self {
        Self { tls, timeout }
    }

    /// A logged-in session on `account`'s server.
    pub async fn open(&self, account: &ImapAccount) -> Result<ImapMailbox, BackendError> {
        let conn = Conn::open(&self.tls, account, self.timeout).await?;
        Ok(ImapMailbox {
            conn,
            selected: None,
        })
    }
}

/// One account's mailbox on its IMAP server.
pub struct ImapMailbox {
    conn: Conn,
    selected: Option<(FolderId, Selected)>,
}

impl std::fmt::Debug for ImapMailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapMailbox")
            .field("caps", &self.conn.caps)
            .field("selected", &self.selected)
            .finish()
    }
}

impl ImapMailbox {
    /// Whether the server offered CONDSTORE and QRESYNC (tests and
    /// operators' diagnostics).
    pub fn incremental(&self) -> bool {
        self.conn.caps.qresync
    }

    /// Selects `folder` unless it is selected, checking that its
    /// UIDVALIDITY is still `uid_validity` (the ids' messages still exist).
    async fn open_folder(
        &mut self,
        folder: &FolderId,
        uid_validity: u32,
    ) -> Result<(), BackendError> {
        let current = match &self.selected {
            Some((selected, state)) if selected == folder => *state,
            _ => {
                self.selected = None;
                let state = select::select(&mut self.conn, folder, None, |_| {}).await?;
                self.selected = Some((folder.clone(), state));
                state
            }
        };
        if current.uid_validity == uid_validity {
            Ok(())
        } else {
            Err(BackendError::NoMessage(format!(
                "{folder} was renumbered (UIDVALIDITY {uid_validity} is now {})",
                current.uid_validity
            )))
        }
    }
}

#[async_trait]
impl Mailbox for ImapMailbox {
    async fn folders(&mut self) -> Result<Vec<Folder>, BackendError> {
        folders::list(&mut self.conn).await
    }

    async fn listing(
        &mut self,
        folder: &FolderId,
        since: Option<(u32, u64)>,
    ) -> Result<Listing, BackendError> {
        self.selected = None;
        let listing = select::listing(&mut self.conn, folder, since).await?;
        self.selected = Some((
            folder.clone(),
            Selected {
                uid_validity: listing.uid_validity,
                exists: 0,
                modseq: listing.modseq,
            },
        ));
        Ok(listing)
    }

    async fn summaries(
        &mut self,
        folder: &FolderId,
        uid_validity: u32,
        uids: &[Uid],
    ) -> Result<Vec<Listed>, BackendError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        self.open_folder(folder, uid_validity).await?;
        summary::fetch(&mut self.conn, folder, uid_validity, uids).await
    }

    async fn raw(&mut self, key: &MessageKey) -> Result<Vec<u8>, BackendError> {
        self.open_folder(&key.folder, key.uid_validity).await?;
        write::raw(&mut self.conn, key).await
    }

    async fn set_flags(
        &mut self,
        folder: &FolderId,
        uid_validity: u32,
        uids: &[Uid],
        update: FlagUpdate,
    ) -> Result<(), BackendError> {
        if uids.is_empty() || update.is_empty() {
            return Ok(());
        }
        self.open_folder(folder, uid_validity).await?;
        write::set_flags(&mut self.conn, uids, update).await
    }

    async fn move_to(
        &mut self,
        folder: &FolderId,
        uid_validity: u32,
        uids: &[Uid],
        to: &FolderId,
    ) -> Result<Vec<(Uid, Option<MessageKey>)>, BackendError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        self.open_folder(folder, uid_validity).await?;
        write::move_to(&mut self.conn, uids, to).await
    }

    async fn expunge(
        &mut self,
        folder: &FolderId,
        uid_validity: u32,
        uids: &[Uid],
    ) -> Result<(), BackendError> {
        if uids.is_empty() {
            return Ok(());
        }
        self.open_folder(folder, uid_validity).await?;
        write::expunge(&mut self.conn, uids).await
    }

    async fn append(
        &mut self,
        folder: &FolderId,
        raw: &[u8],
        flags: Flags,
    ) -> Result<Option<MessageKey>, BackendError> {
        write::append(&mut self.conn, folder, raw, flags).await
    }

    async fn close(self: Box<Self>) {
        self.conn.logout().await;
    }
}
