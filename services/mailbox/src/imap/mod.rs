//! The upstream IMAP backend: an external account's mailbox read and
//! written on its provider's server, on the phone's behalf (the U-IMAP of
//! the 139 model). [`ImapConnector`] opens sessions, or hands out one
//! kept from an earlier request (`pool`).

mod conn;
mod folders;
mod manage;
mod pool;
mod raws;
mod search;
mod select;
mod summary;
mod utf7;
mod write;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pushmail_common::upstream::Tls;

pub use conn::ImapAccount;
pub use pool::PoolLimits;

use crate::backend::{BackendError, Mailbox};
use crate::domain::{
    FlagUpdate, Flags, Folder, FolderId, FolderRole, Listed, MessageKey, Query, Uid,
};
use crate::sync::Listing;

use conn::Conn;
use select::Selected;

/// How long a kept session has to answer NOOP before it is dropped.
const PROBE: std::time::Duration = std::time::Duration::from_secs(3);

/// Largest message read whole unless configured otherwise.
const DEFAULT_MAX_MESSAGE_BYTES: u64 = 64 * 1024 * 1024;

/// Opens IMAP sessions, and keeps them between requests.
#[derive(Clone)]
pub struct ImapConnector {
    tls: Tls,
    timeout: Duration,
    pool: Arc<pool::Pool>,
    max_message_bytes: u64,
}

impl std::fmt::Debug for ImapConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapConnector")
            .field("timeout", &self.timeout)
            .field("kept", &self.pool.held())
            .finish()
    }
}

impl ImapConnector {
    /// Connects through `tls` (and its egress policy), waiting at most
    /// `timeout` for any answer; keeps no session between requests.
    pub fn new(tls: Tls, timeout: Duration) -> Self {
        Self::pooled(
            tls,
            timeout,
            PoolLimits {
                per_account: 0,
                total: 0,
                idle: Duration::ZERO,
            },
        )
    }

    /// The same, keeping sessions within `limits`.
    pub fn pooled(tls: Tls, timeout: Duration, limits: PoolLimits) -> Self {
        Self {
            tls,
            timeout,
            pool: Arc::new(pool::Pool::new(limits)),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }

    /// The same, reading whole messages of at most `max` bytes.
    pub fn with_max_message_bytes(self, max: u64) -> Self {
        Self {
            max_message_bytes: max,
            ..self
        }
    }

    /// A logged-in session on `account`'s server: a kept one that still
    /// answers, else a new one.
    pub async fn open(&self, account: &ImapAccount) -> Result<ImapMailbox, BackendError> {
        let key = pool::key(account);
        while let Some(mut idle) = self.pool.take(&key) {
            // A server may have dropped it while kept; then it is let go.
            // A live server answers NOOP at once: a silently dropped
            // connection (a NAT timeout) must not cost the phone the whole
            // answer timeout before a new login.
            let probe = tokio::time::timeout(PROBE, idle.conn.run("NOOP", "NOOP")).await;
            if matches!(probe, Ok(Ok(_))) {
                return Ok(ImapMailbox {
                    conn: idle.conn,
                    // Re-selected on first use: the folder may have been
                    // renumbered meanwhile.
                    selected: None,
                    pool: Some((self.pool.clone(), key)),
                    broken: false,
                    max_message_bytes: self.max_message_bytes,
                });
            }
        }
        let conn = Conn::open(&self.tls, account, self.timeout).await?;
        Ok(ImapMailbox {
            conn,
            selected: None,
            pool: Some((self.pool.clone(), key)),
            broken: false,
            max_message_bytes: self.max_message_bytes,
        })
    }

    /// Sessions kept now.
    pub fn kept(&self) -> usize {
        self.pool.held()
    }
}

/// One account's mailbox on its IMAP server.
pub struct ImapMailbox {
    conn: Conn,
    selected: Option<(FolderId, Selected)>,
    /// Where it goes back to when closed.
    pool: Option<(Arc<pool::Pool>, [u8; 32])>,
    /// A request failed on the connection: never kept.
    broken: bool,
    /// Largest message read whole.
    max_message_bytes: u64,
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
    /// `result`, noting a connection-level failure (the session is then
    /// not kept).
    fn note<T>(&mut self, result: Result<T, BackendError>) -> Result<T, BackendError> {
        if matches!(
            result,
            Err(BackendError::Unavailable(_) | BackendError::Protocol(_))
        ) {
            self.broken = true;
        }
        result
    }

    /// Whether the server offered CONDSTORE and QRESYNC (tests and
    /// operators' diagnostics).
    pub fn incremental(&self) -> bool {
        self.conn.caps.qresync
    }

    /// Leaves the selected folder, if any (UNSELECT, RFC 3691: CLOSE
    /// would expunge), so it can be renamed or deleted; a server without
    /// UNSELECT refuses and nothing is lost.
    async fn unselect(&mut self) {
        if self.selected.take().is_some()
            && let Err(error) = self.conn.run("UNSELECT", "UNSELECT").await
        {
            tracing::debug!(%error, "UNSELECT refused");
        }
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
        let result = folders::list(&mut self.conn).await;
        self.note(result)
    }

    async fn folder_with_role(
        &mut self,
        role: FolderRole,
    ) -> Result<Option<FolderId>, BackendError> {
        let result = folders::with_role(&mut self.conn, role).await;
        self.note(result)
    }

    async fn listing(
        &mut self,
        folder: &FolderId,
        since: Option<(u32, u64)>,
    ) -> Result<Listing, BackendError> {
        self.selected = None;
        let result = select::listing(&mut self.conn, folder, since).await;
        let listing = self.note(result)?;
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
        let result = match self.open_folder(folder, uid_validity).await {
            Ok(()) => summary::fetch(&mut self.conn, folder, uid_validity, uids).await,
            Err(error) => Err(error),
        };
        self.note(result)
    }

    async fn search(
        &mut self,
        folder: &FolderId,
        query: &Query,
    ) -> Result<(u32, Vec<Uid>), BackendError> {
        let uid_validity = match &self.selected {
            Some((selected, state)) if selected == folder => Ok(state.uid_validity),
            _ => {
                self.selected = None;
                select::select(&mut self.conn, folder, None, |_| {})
                    .await
                    .map(|state| {
                        self.selected = Some((folder.clone(), state));
                        state.uid_validity
                    })
            }
        };
        let result = match uid_validity {
            Ok(uid_validity) => search::search(&mut self.conn, query)
                .await
                .map(|uids| (uid_validity, uids)),
            Err(error) => Err(error),
        };
        self.note(result)
    }

    async fn raw(&mut self, key: &MessageKey) -> Result<Vec<u8>, BackendError> {
        let result = match self.open_folder(&key.folder, key.uid_validity).await {
            Ok(()) => write::raw(&mut self.conn, key, self.max_message_bytes).await,
            Err(error) => Err(error),
        };
        self.note(result)
    }

    async fn raws(
        &mut self,
        folder: &FolderId,
        uid_validity: u32,
        uids: &[Uid],
        each: &mut (dyn FnMut(Uid, Result<Vec<u8>, BackendError>) + Send),
    ) -> Result<(), BackendError> {
        let result = match self.open_folder(folder, uid_validity).await {
            Ok(()) => raws::raws(&mut self.conn, uids, self.max_message_bytes, each).await,
            Err(error) => Err(error),
        };
        self.note(result)
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
        let result = match self.open_folder(folder, uid_validity).await {
            Ok(()) => write::set_flags(&mut self.conn, uids, update).await,
            Err(error) => Err(error),
        };
        self.note(result)
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
        let result = match self.open_folder(folder, uid_validity).await {
            Ok(()) => write::move_to(&mut self.conn, uids, to).await,
            Err(error) => Err(error),
        };
        self.note(result)
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
        let result = match self.open_folder(folder, uid_validity).await {
            Ok(()) => write::expunge(&mut self.conn, uids).await,
            Err(error) => Err(error),
        };
        self.note(result)
    }

    async fn append(
        &mut self,
        folder: &FolderId,
        raw: &[u8],
        flags: Flags,
    ) -> Result<Option<MessageKey>, BackendError> {
        let result = write::append(&mut self.conn, folder, raw, flags).await;
        self.note(result)
    }

    async fn create_folder(
        &mut self,
        parent: Option<&FolderId>,
        name: &str,
    ) -> Result<FolderId, BackendError> {
        let result = manage::create(&mut self.conn, parent, name).await;
        self.note(result)
    }

    async fn rename_folder(
        &mut self,
        folder: &FolderId,
        parent: Option<&FolderId>,
        name: &str,
    ) -> Result<FolderId, BackendError> {
        // A selected folder cannot be renamed on every server.
        self.unselect().await;
        let result = manage::rename(&mut self.conn, folder, parent, name).await;
        self.note(result)
    }

    async fn delete_folder(&mut self, folder: &FolderId) -> Result<(), BackendError> {
        self.unselect().await;
        let result = manage::delete(&mut self.conn, folder).await;
        self.note(result)
    }

    async fn close(self: Box<Self>) {
        let this = *self;
        let unkept = match this.pool {
            Some((pool, key)) if !this.broken => pool.keep(key, this.conn),
            _ => Some(this.conn),
        };
        if let Some(conn) = unkept {
            conn.logout().await;
        }
    }
}
