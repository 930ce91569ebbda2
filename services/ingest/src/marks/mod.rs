//! What ingest has already announced per account, persisted so a restart
//! neither misses nor repeats mail. A mark is written only after the event
//! is durable (see `arrival::Announcer`). POP3 keeps the set of UIDLs seen;
//! entries for messages no longer on the server are pruned each poll. IMAP
//! keeps UIDVALIDITY and the UID high-water mark per mailbox, plus the
//! Message-IDs announced lately (bounded), which is how a UIDVALIDITY
//! change is resynchronised without repeating mail.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use sha2::Digest as _;

mod sqlite;

pub use sqlite::SqliteMarks;

/// The mark store failed.
#[derive(Debug, thiserror::Error)]
pub enum MarkError {
    /// Redis refused or could not be reached.
    #[error("mark store (redis)")]
    Redis(#[from] redis::RedisError),
    /// The SQLite file could not be read or written.
    #[error("mark store (sqlite)")]
    Sqlite(#[from] sqlx::Error),
    /// The SQLite file could not be opened.
    #[error("mark store")]
    Open(#[from] pushmail_common::sqlite::OpenError),
    /// A stored mark is not one this code wrote (a UID out of range).
    #[error("mark store holds a mark out of range: {0}")]
    Corrupt(i64),
}

/// A UID as stored (a 64-bit integer), checked back into range.
fn stored_uid(value: i64) -> Result<u32, MarkError> {
    u32::try_from(value).map_err(|_| MarkError::Corrupt(value))
}

/// Seen POP3 UIDLs per account.
#[async_trait]
pub trait Pop3Marks: Send + Sync + 'static {
    /// The UIDLs announced (or taken as the baseline) for `account`;
    /// `None` when the account has no baseline: never polled, or its marks
    /// were lost.
    async fn seen(&self, account: &str) -> Result<Option<HashSet<String>>, MarkError>;
    /// Takes `current` (the server's list now) as what was announced.
    async fn baseline(&self, account: &str, current: &HashSet<String>) -> Result<(), MarkError>;
    /// Records `uidl` as announced.
    async fn mark(&self, account: &str, uidl: &str) -> Result<(), MarkError>;
    /// Forgets every mark not in `current` (the server's list now); the
    /// baseline itself stays.
    async fn retain(&self, account: &str, current: &HashSet<String>) -> Result<(), MarkError>;
}

/// The member that says a POP3 account has a baseline: a UIDL is 1 to 70
/// printable characters (RFC 1939), so the empty string is never one.
const BASELINE: &str = "";

/// Message-IDs remembered per mailbox for a UIDVALIDITY resync.
pub const SEEN_IDS: usize = 5_000;

/// Where an IMAP mailbox stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImapMark {
    /// The mailbox's UIDVALIDITY when last seen.
    pub uid_validity: u32,
    /// Every UID up to this one has been announced (or was there before
    /// the account was first watched).
    pub last_uid: u32,
    /// When the mark last moved, ms since the epoch.
    pub updated_ms: i64,
}

/// IMAP high-water marks per (account, mailbox).
#[async_trait]
pub trait ImapMarks: Send + Sync + 'static {
    /// The mark, or `None` for a mailbox never watched.
    async fn get(&self, account: &str, mailbox: &str) -> Result<Option<ImapMark>, MarkError>;
    /// Moves the mark; with the announced message's Message-ID, if any.
    async fn advance(
        &self,
        account: &str,
        mailbox: &str,
        mark: ImapMark,
        message_id: Option<&str>,
    ) -> Result<(), MarkError>;
    /// The Message-IDs announced lately (at most [`SEEN_IDS`]).
    async fn seen_ids(&self, account: &str, mailbox: &str) -> Result<HashSet<String>, MarkError>;
}

/// A mailbox's mark and its recent Message-IDs, oldest first.
type MailboxMarks = (ImapMark, Vec<String>);

/// In-process marks (standalone, tests).
#[derive(Debug, Default)]
pub struct MemoryMarks {
    accounts: Mutex<HashMap<String, HashSet<String>>>,
    imap: Mutex<HashMap<(String, String), MailboxMarks>>,
}

impl MemoryMarks {
    fn imap_lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), MailboxMarks>> {
        self.imap
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn with_mailbox<T>(
        &self,
        account: &str,
        mailbox: &str,
        f: impl FnOnce(Option<&MailboxMarks>) -> T,
    ) -> T {
        f(self
            .imap_lock()
            .get(&(account.to_owned(), mailbox.to_owned())))
    }
}

#[async_trait]
impl ImapMarks for MemoryMarks {
    async fn get(&self, account: &str, mailbox: &str) -> Result<Option<ImapMark>, MarkError> {
        Ok(self.with_mailbox(account, mailbox, |m| m.map(|(mark, _)| *mark)))
    }

    async fn advance(
        &self,
        account: &str,
        mailbox: &str,
        mark: ImapMark,
        message_id: Option<&str>,
    ) -> Result<(), MarkError> {
        let mut imap = self.imap_lock();
        let entry = imap
            .entry((account.to_owned(), mailbox.to_owned()))
            .or_insert((mark, Vec::new()));
        entry.0 = mark;
        if let Some(id) = message_id {
            entry.1.push(id.to_owned());
            if entry.1.len() > SEEN_IDS {
                entry.1.remove(0);
            }
        }
        Ok(())
    }

    async fn seen_ids(&self, account: &str, mailbox: &str) -> Result<HashSet<String>, MarkError> {
        Ok(self.with_mailbox(account, mailbox, |m| {
            m.map(|(_, ids)| ids.iter().cloned().collect())
                .unwrap_or_default()
        }))
    }
}

impl MemoryMarks {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, HashSet<String>>) -> T) -> T {
        f(&mut self
            .accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

#[async_trait]
impl Pop3Marks for MemoryMarks {
    async fn seen(&self, account: &str) -> Result<Option<HashSet<String>>, MarkError> {
        Ok(self.with(|a| a.get(account).cloned()))
    }

    async fn baseline(&self, account: &str, current: &HashSet<String>) -> Result<(), MarkError> {
        self.with(|a| {
            a.entry(account.to_owned())
                .or_default()
                .extend(current.iter().cloned())
        });
        Ok(())
    }

    async fn mark(&self, account: &str, uidl: &str) -> Result<(), MarkError> {
        self.with(|a| {
            a.entry(account.to_owned())
                .or_default()
                .insert(uidl.to_owned())
        });
        Ok(())
    }

    async fn retain(&self, account: &str, current: &HashSet<String>) -> Result<(), MarkError> {
        self.with(|a| {
            if let Some(seen) = a.get_mut(account) {
                seen.retain(|u| current.contains(u));
            }
        });
        Ok(())
    }
}

/// Redis-backed marks: a set of UIDLs per POP3 account; a hash (mark) and
/// a sorted set (recent Message-IDs by time) per IMAP mailbox.
pub struct RedisMarks {
    redis: ConnectionManager,
    prefix: String,
    imap_prefix: String,
}

impl std::fmt::Debug for RedisMarks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisMarks")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisMarks {
    /// Keys under `{prefix}ingest:pop3:` and `{prefix}ingest:imap:`.
    pub fn new(redis: ConnectionManager, prefix: &str) -> Self {
        Self {
            redis,
            prefix: format!("{prefix}ingest:pop3:"),
            imap_prefix: format!("{prefix}ingest:imap:"),
        }
    }

    fn imap_keys(&self, account: &str, mailbox: &str) -> (String, String) {
        // The mailbox name is arbitrary text; its hash keeps keys clean.
        let mailbox = hex::encode(&sha2::Sha256::digest(mailbox.as_bytes())[..8]);
        let base = format!("{}{account}:{mailbox}", self.imap_prefix);
        (format!("{base}:mark"), format!("{base}:ids"))
    }

    fn key(&self, account: &str) -> String {
        format!("{}{account}", self.prefix)
    }
}

#[async_trait]
impl Pop3Marks for RedisMarks {
    async fn seen(&self, account: &str) -> Result<Option<HashSet<String>>, MarkError> {
        let mut redis = self.redis.clone();
        let mut seen: HashSet<String> = redis::cmd("SMEMBERS")
            .arg(self.key(account))
            .query_async(&mut redis)
            .await?;
        Ok(seen.remove(BASELINE).then_some(seen))
    }

    async fn baseline(&self, account: &str, current: &HashSet<String>) -> Result<(), MarkError> {
        let mut redis = self.redis.clone();
        Ok(redis::cmd("SADD")
            .arg(self.key(account))
            .arg(BASELINE)
            .arg(current.iter().collect::<Vec<_>>())
            .query_async(&mut redis)
            .await?)
    }

    async fn mark(&self, account: &str, uidl: &str) -> Result<(), MarkError> {
        let mut redis = self.redis.clone();
        Ok(redis::cmd("SADD")
            .arg(self.key(account))
            .arg(uidl)
            .query_async(&mut redis)
            .await?)
    }

    async fn retain(&self, account: &str, current: &HashSet<String>) -> Result<(), MarkError> {
        let seen = self.seen(account).await?.unwrap_or_default();
        let gone: Vec<&String> = seen.iter().filter(|u| !current.contains(*u)).collect();
        if gone.is_empty() {
            return Ok(());
        }
        let mut redis = self.redis.clone();
        Ok(redis::cmd("SREM")
            .arg(self.key(account))
            .arg(gone)
            .query_async(&mut redis)
            .await?)
    }
}

#[async_trait]
impl ImapMarks for RedisMarks {
    async fn get(&self, account: &str, mailbox: &str) -> Result<Option<ImapMark>, MarkError> {
        let (mark, _) = self.imap_keys(account, mailbox);
        let mut redis = self.redis.clone();
        let fields: Vec<Option<i64>> = redis::cmd("HMGET")
            .arg(&mark)
            .arg("v")
            .arg("u")
            .arg("t")
            .query_async(&mut redis)
            .await?;
        Ok(match fields.as_slice() {
            [Some(v), Some(u), Some(t)] => Some(ImapMark {
                uid_validity: stored_uid(*v)?,
                last_uid: stored_uid(*u)?,
                updated_ms: *t,
            }),
            _ => None,
        })
    }

    async fn advance(
        &self,
        account: &str,
        mailbox: &str,
        mark: ImapMark,
        message_id: Option<&str>,
    ) -> Result<(), MarkError> {
        let (key, ids) = self.imap_keys(account, mailbox);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HSET")
            .arg(&key)
            .arg("v")
            .arg(i64::from(mark.uid_validity))
            .arg("u")
            .arg(i64::from(mark.last_uid))
            .arg("t")
            .arg(mark.updated_ms);
        if let Some(id) = message_id {
            pipe.cmd("ZADD").arg(&ids).arg(mark.updated_ms).arg(id);
            // Keep the newest SEEN_IDS.
            pipe.cmd("ZREMRANGEBYRANK")
                .arg(&ids)
                .arg(0)
                .arg(-(SEEN_IDS as i64) - 1);
        }
        let mut redis = self.redis.clone();
        Ok(pipe.query_async(&mut redis).await?)
    }

    async fn seen_ids(&self, account: &str, mailbox: &str) -> Result<HashSet<String>, MarkError> {
        let (_, ids) = self.imap_keys(account, mailbox);
        let mut redis = self.redis.clone();
        Ok(redis::cmd("ZRANGE")
            .arg(&ids)
            .arg(0)
            .arg(-1)
            .query_async(&mut redis)
            .await?)
    }
}
