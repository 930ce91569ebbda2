//! The platform's own store, for accounts whose mail no server of theirs
//! keeps for the phone: forwarded (SMTP/LMTP), webhook and POP3 accounts.
//!
//! Ingest already keeps every arrived message whole in the blob store,
//! granted to its account; this store adds the mailbox around it: an
//! index ([`Index`], PostgreSQL or SQLite) of which message is in which
//! folder under which UID, with its flags and its summary, fed from
//! `pushmail.mail.arrived.v1` ([`feed`]). A message leaves it when the
//! phone deletes it, when its tenant's retention ends ([`retention`]),
//! or with its account.
//!
//! Each account has the standard folders ([`STANDARD`]), made on first
//! use, and the folders its phones make, nested with `/` ([`DELIMITER`]). A folder's UIDs only grow, and its `modseq` counts every change,
//! so its version tells a phone whether a sync would find anything.

pub mod feed;
mod memory;
mod retention;
mod sql;
mod store;
mod stored;

use std::collections::BTreeMap;

use async_trait::async_trait;

pub use memory::MemoryIndex;
pub use retention::{Retention, sweep_every};
pub use sql::{PgIndex, SqliteIndex};
pub use store::LocalMailbox;
pub use stored::summarise;

use crate::domain::{FlagUpdate, Flags, FolderRole, Uid};

/// The folders every account of this store has, with their roles.
pub const STANDARD: [(&str, FolderRole); 6] = [
    ("INBOX", FolderRole::Inbox),
    ("Sent", FolderRole::Sent),
    ("Drafts", FolderRole::Drafts),
    ("Trash", FolderRole::Trash),
    ("Junk", FolderRole::Junk),
    ("Archive", FolderRole::Archive),
];

/// What separates a folder's name from its parent's.
pub const DELIMITER: char = '/';

/// The name `name` takes when `from` (or a folder above it) becomes `to`;
/// `None` when it is not `from` or under it.
pub(crate) fn renamed(name: &str, from: &str, to: &str) -> Option<String> {
    if name == from {
        return Some(to.to_owned());
    }
    let rest = name.strip_prefix(from)?.strip_prefix(DELIMITER)?;
    Some(format!("{to}{DELIMITER}{rest}"))
}

/// The role of a standard folder.
pub fn role_of(folder: &str) -> FolderRole {
    STANDARD
        .iter()
        .find(|(name, _)| *name == folder)
        .map_or(FolderRole::User, |(_, role)| *role)
}

/// Whose mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner {
    /// Tenant.
    pub tenant: String,
    /// Account.
    pub account: String,
}

/// A message being filed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// What makes a redelivered event the same message (the event's
    /// idempotency key): filed once.
    pub key: String,
    /// The raw message in the blob store.
    pub blob: String,
    /// Its size, bytes.
    pub size_bytes: u64,
    /// When it arrived, ms since the epoch: retention counts from here.
    pub received_ms: i64,
    /// Its flags.
    pub flags: Flags,
    /// Its summary as [`stored`] encodes it.
    pub summary: String,
}

impl Arrival {
    /// The raw message `raw`, stored as `blob`, filed under `key`: its
    /// summary read from the bytes.
    pub fn of_message(
        key: String,
        blob: String,
        raw: &[u8],
        received_ms: i64,
        flags: Flags,
    ) -> Self {
        Self {
            key,
            blob,
            size_bytes: raw.len() as u64,
            received_ms,
            flags,
            summary: stored::encode(&stored::summarise(raw)),
        }
    }
}

/// A folder as indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderRow {
    /// Its name.
    pub name: String,
    /// Fixed when the folder was made.
    pub uid_validity: u32,
    /// Counts every change in it.
    pub modseq: u64,
    /// Messages in it.
    pub total: u32,
    /// Unread messages in it.
    pub unread: u32,
}

/// A message as indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its UID in its folder.
    pub uid: Uid,
    /// Its flags.
    pub flags: Flags,
    /// The raw message in the blob store.
    pub blob: String,
    /// Its size, bytes.
    pub size_bytes: u64,
    /// When it arrived.
    pub received_ms: i64,
    /// Its summary as [`stored`] encodes it.
    pub summary: String,
}

/// The index failed, or was asked for what it does not hold.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// No such folder.
    #[error("no folder {0}")]
    NoFolder(String),
    /// The folder's UIDVALIDITY is not the one the ids were issued under.
    #[error("{folder} was renumbered (UIDVALIDITY {asked} is now {now})")]
    Renumbered {
        /// The folder.
        folder: String,
        /// The ids'.
        asked: u32,
        /// The folder's.
        now: u32,
    },
    /// A folder of that name exists already.
    #[error("folder {0} exists already")]
    FolderExists(String),
    /// The database could not be used.
    #[error("the mailbox database is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A database failure as the index reports it.
pub(crate) fn unavailable(error: sqlx::Error) -> IndexError {
    IndexError::Unavailable(Box::new(error))
}

/// The index of the platform's own store. Every write bumps the
/// folder's `modseq`; every call on an account first makes its standard
/// folders if it has none.
#[async_trait]
pub trait Index: Send + Sync {
    /// Files `arrival` in `folder` under the next UID. `None` when its key
    /// was filed before (a redelivered event): nothing changes.
    async fn file(
        &self,
        owner: &Owner,
        folder: &str,
        arrival: &Arrival,
    ) -> Result<Option<(u32, Uid)>, IndexError>;

    /// The account's folders with their counts.
    async fn folders(&self, owner: &Owner) -> Result<Vec<FolderRow>, IndexError>;

    /// A folder's UIDVALIDITY and every message's flags.
    async fn listing(
        &self,
        owner: &Owner,
        folder: &str,
    ) -> Result<(u32, BTreeMap<Uid, Flags>), IndexError>;

    /// The messages `uids` of `folder` (those still there), in UID order.
    async fn entries(
        &self,
        owner: &Owner,
        folder: &str,
        uid_validity: u32,
        uids: &[Uid],
    ) -> Result<Vec<Entry>, IndexError>;

    /// Changes flags.
    async fn set_flags(
        &self,
        owner: &Owner,
        folder: &str,
        uid_validity: u32,
        uids: &[Uid],
        update: FlagUpdate,
    ) -> Result<(), IndexError>;

    /// Moves messages to `to`; each moved UID with its UIDVALIDITY and UID
    /// there (a UID no longer in `folder` is left out).
    async fn move_to(
        &self,
        owner: &Owner,
        folder: &str,
        uid_validity: u32,
        uids: &[Uid],
        to: &str,
    ) -> Result<Vec<(Uid, u32, Uid)>, IndexError>;

    /// Removes messages for good.
    async fn expunge(
        &self,
        owner: &Owner,
        folder: &str,
        uid_validity: u32,
        uids: &[Uid],
    ) -> Result<(), IndexError>;

    /// Makes the (empty) folder `name`: `FolderExists` when there is one.
    async fn create_folder(&self, owner: &Owner, name: &str) -> Result<(), IndexError>;

    /// Renames `from`, and every folder under it (`from/…`), to `to`,
    /// with their messages (which keep their UIDs): `NoFolder` without
    /// `from`, `FolderExists` when `to` is taken.
    async fn rename_folder(&self, owner: &Owner, from: &str, to: &str) -> Result<(), IndexError>;

    /// Deletes the folder `name` with its messages (not the folders under
    /// it): `NoFolder` without it.
    async fn delete_folder(&self, owner: &Owner, name: &str) -> Result<(), IndexError>;

    /// Forgets the account: every folder, message and arrival key.
    async fn forget(&self, owner: &Owner) -> Result<(), IndexError>;

    /// Tenants that have messages, for the retention sweep.
    async fn tenants(&self) -> Result<Vec<String>, IndexError>;

    /// Removes `tenant`'s messages (and arrival keys) that arrived before
    /// `before_ms`; how many messages went.
    async fn expire(&self, tenant: &str, before_ms: i64) -> Result<u64, IndexError>;
}

/// The UIDVALIDITY of a folder made now: seconds since the epoch, so a
/// folder made again (its account deleted and the id reused) is
/// numbered anew, as RFC 3501 asks.
pub(crate) fn new_uid_validity() -> u32 {
    u32::try_from(pushmail_common::clock::now_ms() / 1000)
        .unwrap_or(u32::MAX)
        .max(1)
}

/// Flags after `update`: bits set, bits cleared.
pub(crate) fn masks(update: FlagUpdate) -> (u8, u8) {
    let on = Flags {
        seen: update.seen == Some(true),
        flagged: update.flagged == Some(true),
        answered: update.answered == Some(true),
        forwarded: update.forwarded == Some(true),
        draft: false,
    };
    let off = Flags {
        seen: update.seen == Some(false),
        flagged: update.flagged == Some(false),
        answered: update.answered == Some(false),
        forwarded: update.forwarded == Some(false),
        draft: false,
    };
    (on.bits(), off.bits())
}

#[cfg(test)]
mod tests;
