//! Marks in a SQLite file (standalone's data directory): a restart neither
//! re-announces a mailbox nor skips what arrived while it was down. WAL
//! with full synchronisation, since a mark is written right after the
//! event it stands for is durable.

use std::collections::HashSet;
use std::path::Path;

use async_trait::async_trait;
use sqlx::Row as _;
use sqlx::sqlite::SqlitePool;

use super::{BASELINE, ImapMark, ImapMarks, MarkError, Pop3Marks, SEEN_IDS, stored_uid};

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS pop3_seen (
        account TEXT NOT NULL,
        uidl TEXT NOT NULL,
        PRIMARY KEY (account, uidl))",
    "CREATE TABLE IF NOT EXISTS imap_marks (
        account TEXT NOT NULL,
        mailbox TEXT NOT NULL,
        uid_validity INTEGER NOT NULL,
        last_uid INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (account, mailbox))",
    "CREATE TABLE IF NOT EXISTS imap_ids (
        account TEXT NOT NULL,
        mailbox TEXT NOT NULL,
        message_id TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        seq INTEGER PRIMARY KEY AUTOINCREMENT)",
    "CREATE INDEX IF NOT EXISTS imap_ids_by_mailbox ON imap_ids (account, mailbox, seq)",
];

/// SQLite-backed marks.
#[derive(Debug, Clone)]
pub struct SqliteMarks {
    pool: SqlitePool,
}

impl SqliteMarks {
    /// Opens (and creates) the marks at `path`.
    pub async fn open(path: &Path) -> Result<Self, MarkError> {
        let pool = pushmail_common::sqlite::open(path, SCHEMA).await?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl Pop3Marks for SqliteMarks {
    async fn seen(&self, account: &str) -> Result<Option<HashSet<String>>, MarkError> {
        let mut seen: HashSet<String> =
            sqlx::query_scalar("SELECT uidl FROM pop3_seen WHERE account = ?1")
                .bind(account)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .collect();
        Ok(seen.remove(BASELINE).then_some(seen))
    }

    async fn baseline(&self, account: &str, current: &HashSet<String>) -> Result<(), MarkError> {
        let mut tx = self.pool.begin().await?;
        for uidl in current.iter().map(String::as_str).chain([BASELINE]) {
            sqlx::query(
                "INSERT INTO pop3_seen (account, uidl) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            )
            .bind(account)
            .bind(uidl)
            .execute(&mut *tx)
            .await?;
        }
        Ok(tx.commit().await?)
    }

    async fn mark(&self, account: &str, uidl: &str) -> Result<(), MarkError> {
        sqlx::query("INSERT INTO pop3_seen (account, uidl) VALUES (?1, ?2) ON CONFLICT DO NOTHING")
            .bind(account)
            .bind(uidl)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn retain(&self, account: &str, current: &HashSet<String>) -> Result<(), MarkError> {
        let seen = self.seen(account).await?.unwrap_or_default();
        let mut tx = self.pool.begin().await?;
        for gone in seen.iter().filter(|u| !current.contains(*u)) {
            sqlx::query("DELETE FROM pop3_seen WHERE account = ?1 AND uidl = ?2")
                .bind(account)
                .bind(gone)
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx.commit().await?)
    }
}

#[async_trait]
impl ImapMarks for SqliteMarks {
    async fn get(&self, account: &str, mailbox: &str) -> Result<Option<ImapMark>, MarkError> {
        let row = sqlx::query(
            "SELECT uid_validity, last_uid, updated_ms FROM imap_marks \
             WHERE account = ?1 AND mailbox = ?2",
        )
        .bind(account)
        .bind(mailbox)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(ImapMark {
                uid_validity: stored_uid(row.get("uid_validity"))?,
                last_uid: stored_uid(row.get("last_uid"))?,
                updated_ms: row.get("updated_ms"),
            })
        })
        .transpose()
    }

    async fn advance(
        &self,
        account: &str,
        mailbox: &str,
        mark: ImapMark,
        message_id: Option<&str>,
    ) -> Result<(), MarkError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO imap_marks (account, mailbox, uid_validity, last_uid, updated_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (account, mailbox) DO UPDATE SET \
             uid_validity = excluded.uid_validity, last_uid = excluded.last_uid, \
             updated_ms = excluded.updated_ms",
        )
        .bind(account)
        .bind(mailbox)
        .bind(i64::from(mark.uid_validity))
        .bind(i64::from(mark.last_uid))
        .bind(mark.updated_ms)
        .execute(&mut *tx)
        .await?;
        if let Some(id) = message_id {
            sqlx::query(
                "INSERT INTO imap_ids (account, mailbox, message_id, at_ms) VALUES (?1, ?2, ?3, ?4)",
            )
            .bind(account)
            .bind(mailbox)
            .bind(id)
            .bind(mark.updated_ms)
            .execute(&mut *tx)
            .await?;
            // Keep the newest SEEN_IDS of the mailbox.
            sqlx::query(
                "DELETE FROM imap_ids WHERE account = ?1 AND mailbox = ?2 AND seq <= \
                 (SELECT seq FROM imap_ids WHERE account = ?1 AND mailbox = ?2 \
                  ORDER BY seq DESC LIMIT 1 OFFSET ?3)",
            )
            .bind(account)
            .bind(mailbox)
            .bind(i64::try_from(SEEN_IDS).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        }
        Ok(tx.commit().await?)
    }

    async fn seen_ids(&self, account: &str, mailbox: &str) -> Result<HashSet<String>, MarkError> {
        Ok(sqlx::query_scalar(
            "SELECT message_id FROM imap_ids WHERE account = ?1 AND mailbox = ?2",
        )
        .bind(account)
        .bind(mailbox)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .collect())
    }
}
