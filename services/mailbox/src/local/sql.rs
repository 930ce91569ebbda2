//! The index in PostgreSQL (the service) or SQLite (standalone), over the
//! pool the sync states opened and migrated. The same statements run on
//! both: `$n` parameters, and UID lists passed as one JSON array (there
//! is no array type both databases bind).
//!
//! Every transaction that writes takes its folders' rows first (two of
//! them in name order), then messages: PostgreSQL then never finds two
//! writers each waiting for a row the other holds.

use std::collections::BTreeMap;

use async_trait::async_trait;
use sqlx::{PgPool, SqlitePool};

use super::{
    Arrival, Entry, FolderRow, Index, IndexError, Owner, STANDARD, masks, new_uid_validity,
    unavailable,
};
use crate::domain::{FlagUpdate, Flags, Uid};

/// The index in SQL.
#[derive(Debug, Clone)]
pub struct SqlIndex<P> {
    pool: P,
}

/// In PostgreSQL.
pub type PgIndex = SqlIndex<PgPool>;
/// In SQLite.
pub type SqliteIndex = SqlIndex<SqlitePool>;

impl<P> SqlIndex<P> {
    /// Over a pool whose schema the sync states applied.
    pub fn new(pool: P) -> Self {
        Self { pool }
    }
}

/// Makes the standard folders of an account that has none: one statement.
fn ensure_sql() -> String {
    let rows: Vec<String> = STANDARD
        .iter()
        .map(|(name, _)| format!("($1, $2, '{name}', $3, 1, 1)"))
        .collect();
    format!(
        "INSERT INTO mailbox_local_folders \
         (tenant_id, account_id, folder, uid_validity, next_uid, modseq) VALUES {} \
         ON CONFLICT DO NOTHING",
        rows.join(", ")
    )
}

fn uid_list(uids: &[Uid]) -> String {
    let mut sorted: Vec<u32> = uids.iter().map(|u| u.0).collect();
    sorted.sort_unstable();
    sorted.dedup();
    format!(
        "[{}]",
        sorted
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    )
}

fn uid_of(value: i64) -> Uid {
    Uid(u32::try_from(value).unwrap_or(0))
}

fn validity_of(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

fn flags_of(value: i64) -> Flags {
    Flags::from_bits(u8::try_from(value & 0xff).unwrap_or(0))
}

fn count(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

type EntryRow = (i64, i64, String, i64, i64, String);

fn entry((uid, flags, blob, size, received_ms, summary): EntryRow) -> Entry {
    Entry {
        uid: uid_of(uid),
        flags: flags_of(flags),
        blob,
        size_bytes: u64::try_from(size).unwrap_or(0),
        received_ms,
        summary,
    }
}

/// The statements, for one database: `$db` its sqlx type, `$uids` how it
/// reads the JSON array bound as the named parameter.
macro_rules! sql_index {
    ($store:ty, $db:ty, $uids:literal) => {
        impl $store {
            async fn ensure<'e, E>(executor: E, owner: &Owner) -> Result<(), IndexError>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                // Built from the constant folder names alone.
                sqlx::query(sqlx::AssertSqlSafe(ensure_sql()))
                    .bind(&owner.tenant)
                    .bind(&owner.account)
                    .bind(i64::from(new_uid_validity()))
                    .execute(executor)
                    .await
                    .map_err(unavailable)?;
                Ok(())
            }

            /// The folder's UIDVALIDITY, checked against `asked`.
            async fn validity<'e, E>(
                executor: E,
                owner: &Owner,
                folder: &str,
                asked: Option<u32>,
            ) -> Result<u32, IndexError>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let row: Option<(i64,)> = sqlx::query_as(
                    "SELECT uid_validity FROM mailbox_local_folders \
                     WHERE tenant_id = $1 AND account_id = $2 AND folder = $3",
                )
                .bind(&owner.tenant)
                .bind(&owner.account)
                .bind(folder)
                .fetch_optional(executor)
                .await
                .map_err(unavailable)?;
                let now = validity_of(row.ok_or_else(|| IndexError::NoFolder(folder.to_owned()))?.0);
                match asked {
                    Some(asked) if asked != now => Err(IndexError::Renumbered {
                        folder: folder.to_owned(),
                        asked,
                        now,
                    }),
                    _ => Ok(now),
                }
            }

            /// Takes `n` UIDs of `folder` (and counts a change): the first.
            async fn allocate<'e, E>(
                executor: E,
                owner: &Owner,
                folder: &str,
                n: i64,
            ) -> Result<u32, IndexError>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let (first,): (i64,) = sqlx::query_as(
                    "UPDATE mailbox_local_folders \
                     SET next_uid = next_uid + CAST($4 AS BIGINT), modseq = modseq + 1 \
                     WHERE tenant_id = $1 AND account_id = $2 AND folder = $3 \
                     RETURNING next_uid - CAST($4 AS BIGINT)",
                )
                .bind(&owner.tenant)
                .bind(&owner.account)
                .bind(folder)
                .bind(n)
                .fetch_one(executor)
                .await
                .map_err(unavailable)?;
                u32::try_from(first).map_err(|e| IndexError::Unavailable(Box::new(e)))
            }

            async fn bump<'e, E>(executor: E, owner: &Owner, folder: &str) -> Result<(), IndexError>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                sqlx::query(
                    "UPDATE mailbox_local_folders SET modseq = modseq + 1 \
                     WHERE tenant_id = $1 AND account_id = $2 AND folder = $3",
                )
                .bind(&owner.tenant)
                .bind(&owner.account)
                .bind(folder)
                .execute(executor)
                .await
                .map_err(unavailable)?;
                Ok(())
            }
        }

        #[async_trait]
        impl Index for $store {
            async fn file(
                &self,
                owner: &Owner,
                folder: &str,
                arrival: &Arrival,
            ) -> Result<Option<(u32, Uid)>, IndexError> {
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                Self::ensure(&mut *tx, owner).await?;
                let uid_validity = Self::validity(&mut *tx, owner, folder, None).await?;
                let new = sqlx::query(
                    "INSERT INTO mailbox_local_arrivals \
                     (tenant_id, account_id, arrival_key, received_ms) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&owner.tenant)
                .bind(&owner.account)
                .bind(&arrival.key)
                .bind(arrival.received_ms)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?
                .rows_affected();
                if new == 0 {
                    tx.commit().await.map_err(unavailable)?;
                    return Ok(None);
                }
                let uid = Self::allocate(&mut *tx, owner, folder, 1).await?;
                sqlx::query(
                    "INSERT INTO mailbox_local_messages \
                     (tenant_id, account_id, folder, uid, flags, blob_ref, size_bytes, received_ms, summary) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&owner.tenant)
                .bind(&owner.account)
                .bind(folder)
                .bind(i64::from(uid))
                .bind(i64::from(arrival.flags.bits()))
                .bind(&arrival.blob)
                .bind(i64::try_from(arrival.size_bytes).unwrap_or(i64::MAX))
                .bind(arrival.received_ms)
                .bind(&arrival.summary)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                tx.commit().await.map_err(unavailable)?;
                Ok(Some((uid_validity, Uid(uid))))
            }

            async fn folders(&self, owner: &Owner) -> Result<Vec<FolderRow>, IndexError> {
                Self::ensure(&self.pool, owner).await?;
                let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
                    "SELECT f.folder, f.uid_validity, f.modseq, COUNT(m.uid), \
                     COALESCE(SUM(CASE WHEN m.uid IS NOT NULL AND (m.flags & 1) = 0 \
                     THEN 1 ELSE 0 END), 0) \
                     FROM mailbox_local_folders f LEFT JOIN mailbox_local_messages m \
                     ON m.tenant_id = f.tenant_id AND m.account_id = f.account_id \
                     AND m.folder = f.folder \
                     WHERE f.tenant_id = $1 AND f.account_id = $2 \
                     GROUP BY f.folder, f.uid_validity, f.modseq",
                )
                .bind(&owner.tenant)
                .bind(&owner.account)
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
                Ok(rows
                    .into_iter()
                    .map(|(name, uid_validity, modseq, total, unread)| FolderRow {
                        name,
                        uid_validity: validity_of(uid_validity),
                        modseq: u64::try_from(modseq).unwrap_or(0),
                        total: count(total),
                        unread: count(unread),
                    })
                    .collect())
            }

            async fn listing(
                &self,
                owner: &Owner,
                folder: &str,
            ) -> Result<(u32, BTreeMap<Uid, Flags>), IndexError> {
                Self::ensure(&self.pool, owner).await?;
                // A folder's UIDVALIDITY never changes: read apart.
                let uid_validity = Self::validity(&self.pool, owner, folder, None).await?;
                let rows: Vec<(i64, i64)> = sqlx::query_as(
                    "SELECT uid, flags FROM mailbox_local_messages \
                     WHERE tenant_id = $1 AND account_id = $2 AND folder = $3",
                )
                .bind(&owner.tenant)
                .bind(&owner.account)
                .bind(folder)
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
                Ok((
                    uid_validity,
                    rows.into_iter()
                        .map(|(uid, flags)| (uid_of(uid), flags_of(flags)))
                        .collect(),
                ))
            }

            async fn entries(
                &self,
                owner: &Owner,
                folder: &str,
                uid_validity: u32,
                uids: &[Uid],
            ) -> Result<Vec<Entry>, IndexError> {
                Self::validity(&self.pool, owner, folder, Some(uid_validity)).await?;
                if uids.is_empty() {
                    return Ok(Vec::new());
                }
                let rows: Vec<EntryRow> = sqlx::query_as(concat!(
                    "SELECT uid, flags, blob_ref, size_bytes, received_ms, summary \
                     FROM mailbox_local_messages \
                     WHERE tenant_id = $1 AND account_id = $2 AND folder = $3 AND uid IN ",
                    $uids,
                    " ORDER BY uid"
                ))
                .bind(&owner.tenant)
                .bind(&owner.account)
                .bind(folder)
                .bind(uid_list(uids))
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
                Ok(rows.into_iter().map(entry).collect())
            }

            async fn set_flags(
                &self,
                owner: &Owner,
                folder: &str,
                uid_validity: u32,
                uids: &[Uid],
                update: FlagUpdate,
            ) -> Result<(), IndexError> {
                let (on, off) = masks(update);
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                Self::validity(&mut *tx, owner, folder, Some(uid_validity)).await?;
                Self::bump(&mut *tx, owner, folder).await?;
                let changed = sqlx::query(concat!(
                    "UPDATE mailbox_local_messages \
                     SET flags = (flags | CAST($5 AS BIGINT)) & ~CAST($6 AS BIGINT) \
                     WHERE tenant_id = $1 AND account_id = $2 AND folder = $3 \
                     AND flags <> ((flags | CAST($5 AS BIGINT)) & ~CAST($6 AS BIGINT)) AND uid IN ",
                    $uids
                ))
                .bind(&owner.tenant)
                .bind(&owner.account)
                .bind(folder)
                .bind(uid_list(uids))
                .bind(i64::from(on))
                .bind(i64::from(off))
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?
                .rows_affected();
                // Nothing changed: nor does the folder's version.
                if changed == 0 {
                    return tx.rollback().await.map_err(unavailable);
                }
                tx.commit().await.map_err(unavailable)
            }

            async fn move_to(
                &self,
                owner: &Owner,
                folder: &str,
                uid_validity: u32,
                uids: &[Uid],
                to: &str,
            ) -> Result<Vec<(Uid, u32, Uid)>, IndexError> {
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                let to_validity = Self::validity(&mut *tx, owner, to, None).await?;
                Self::validity(&mut *tx, owner, folder, Some(uid_validity)).await?;
                let present: Vec<(i64,)> = sqlx::query_as(concat!(
                    "SELECT uid FROM mailbox_local_messages \
                     WHERE tenant_id = $1 AND account_id = $2 AND folder = $3 AND uid IN ",
                    $uids,
                    " ORDER BY uid"
                ))
                .bind(&owner.tenant)
                .bind(&owner.account)
                .bind(folder)
                .bind(uid_list(uids))
                .fetch_all(&mut *tx)
                .await
                .map_err(unavailable)?;
                let present: Vec<Uid> = present.into_iter().map(|(uid,)| uid_of(uid)).collect();
                if folder == to || present.is_empty() {
                    tx.commit().await.map_err(unavailable)?;
                    return Ok(present.into_iter().map(|uid| (uid, to_validity, uid)).collect());
                }
                let n = i64::try_from(present.len()).unwrap_or(i64::MAX);
                // Both folders' rows, in name order.
                if folder < to {
                    Self::bump(&mut *tx, owner, folder).await?;
                }
                let first = Self::allocate(&mut *tx, owner, to, n).await?;
                if folder > to {
                    Self::bump(&mut *tx, owner, folder).await?;
                }
                let mut moved = Vec::with_capacity(present.len());
                for (uid, new) in present.into_iter().zip(first..) {
                    sqlx::query(
                        "UPDATE mailbox_local_messages SET folder = $5, uid = $6 \
                         WHERE tenant_id = $1 AND account_id = $2 AND folder = $3 AND uid = $4",
                    )
                    .bind(&owner.tenant)
                    .bind(&owner.account)
                    .bind(folder)
                    .bind(i64::from(uid.0))
                    .bind(to)
                    .bind(i64::from(new))
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                    moved.push((uid, to_validity, Uid(new)));
                }
                tx.commit().await.map_err(unavailable)?;
                Ok(moved)
            }

            async fn expunge(
                &self,
                owner: &Owner,
                folder: &str,
                uid_validity: u32,
                uids: &[Uid],
            ) -> Result<(), IndexError> {
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                Self::validity(&mut *tx, owner, folder, Some(uid_validity)).await?;
                Self::bump(&mut *tx, owner, folder).await?;
                let gone = sqlx::query(concat!(
                    "DELETE FROM mailbox_local_messages \
                     WHERE tenant_id = $1 AND account_id = $2 AND folder = $3 AND uid IN ",
                    $uids
                ))
                .bind(&owner.tenant)
                .bind(&owner.account)
                .bind(folder)
                .bind(uid_list(uids))
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?
                .rows_affected();
                if gone == 0 {
                    return tx.rollback().await.map_err(unavailable);
                }
                tx.commit().await.map_err(unavailable)
            }

            async fn create_folder(&self, owner: &Owner, name: &str) -> Result<(), IndexError> {
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                Self::ensure(&mut *tx, owner).await?;
                let made = sqlx::query(
                    "INSERT INTO mailbox_local_folders \
                     (tenant_id, account_id, folder, uid_validity, next_uid, modseq) \
                     VALUES ($1, $2, $3, $4, 1, 1) ON CONFLICT DO NOTHING",
                )
                .bind(&owner.tenant)
                .bind(&owner.account)
                .bind(name)
                .bind(i64::from(new_uid_validity()))
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                if made.rows_affected() == 0 {
                    return Err(IndexError::FolderExists(name.to_owned()));
                }
                tx.commit().await.map_err(unavailable)
            }

            async fn rename_folder(
                &self,
                owner: &Owner,
                from: &str,
                to: &str,
            ) -> Result<(), IndexError> {
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                Self::validity(&mut *tx, owner, from, None).await?;
                match Self::validity(&mut *tx, owner, to, None).await {
                    Ok(_) => return Err(IndexError::FolderExists(to.to_owned())),
                    Err(IndexError::NoFolder(_)) => {}
                    Err(other) => return Err(other),
                }
                // Characters, as substr counts them in both databases; no
                // LIKE, so a `%` or `_` in a name is only itself.
                let under = format!("{from}{}", super::DELIMITER);
                let cut = i32::try_from(from.chars().count() + 1).unwrap_or(i32::MAX);
                for table in ["mailbox_local_folders", "mailbox_local_messages"] {
                    let statement = format!(
                        "UPDATE {table} SET folder = $4 || substr(folder, $5) \
                         WHERE tenant_id = $1 AND account_id = $2 \
                         AND (folder = $3 OR substr(folder, 1, $5) = $6)"
                    );
                    // The table names are the two constants above.
                    sqlx::query(sqlx::AssertSqlSafe(statement))
                        .bind(&owner.tenant)
                        .bind(&owner.account)
                        .bind(from)
                        .bind(to)
                        .bind(cut)
                        .bind(&under)
                        .execute(&mut *tx)
                        .await
                        .map_err(unavailable)?;
                }
                tx.commit().await.map_err(unavailable)
            }

            async fn delete_folder(&self, owner: &Owner, name: &str) -> Result<(), IndexError> {
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                Self::validity(&mut *tx, owner, name, None).await?;
                for statement in [
                    "DELETE FROM mailbox_local_messages \
                     WHERE tenant_id = $1 AND account_id = $2 AND folder = $3",
                    "DELETE FROM mailbox_local_folders \
                     WHERE tenant_id = $1 AND account_id = $2 AND folder = $3",
                ] {
                    sqlx::query(statement)
                        .bind(&owner.tenant)
                        .bind(&owner.account)
                        .bind(name)
                        .execute(&mut *tx)
                        .await
                        .map_err(unavailable)?;
                }
                tx.commit().await.map_err(unavailable)
            }

            async fn forget(&self, owner: &Owner) -> Result<(), IndexError> {
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                for statement in [
                    "DELETE FROM mailbox_local_folders WHERE tenant_id = $1 AND account_id = $2",
                    "DELETE FROM mailbox_local_messages WHERE tenant_id = $1 AND account_id = $2",
                    "DELETE FROM mailbox_local_arrivals WHERE tenant_id = $1 AND account_id = $2",
                ] {
                    sqlx::query(statement)
                    .bind(&owner.tenant)
                    .bind(&owner.account)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                }
                tx.commit().await.map_err(unavailable)
            }

            async fn tenants(&self) -> Result<Vec<String>, IndexError> {
                let rows: Vec<(String,)> =
                    sqlx::query_as("SELECT DISTINCT tenant_id FROM mailbox_local_folders")
                        .fetch_all(&self.pool)
                        .await
                        .map_err(unavailable)?;
                Ok(rows.into_iter().map(|(t,)| t).collect())
            }

            async fn expire(&self, tenant: &str, before_ms: i64) -> Result<u64, IndexError> {
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                sqlx::query(
                    "UPDATE mailbox_local_folders SET modseq = modseq + 1 \
                     WHERE tenant_id = $1 AND EXISTS (SELECT 1 FROM mailbox_local_messages m \
                     WHERE m.tenant_id = mailbox_local_folders.tenant_id \
                     AND m.account_id = mailbox_local_folders.account_id \
                     AND m.folder = mailbox_local_folders.folder AND m.received_ms < $2)",
                )
                .bind(tenant)
                .bind(before_ms)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                let gone = sqlx::query(
                    "DELETE FROM mailbox_local_messages WHERE tenant_id = $1 AND received_ms < $2",
                )
                .bind(tenant)
                .bind(before_ms)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?
                .rows_affected();
                sqlx::query(
                    "DELETE FROM mailbox_local_arrivals WHERE tenant_id = $1 AND received_ms < $2",
                )
                .bind(tenant)
                .bind(before_ms)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                tx.commit().await.map_err(unavailable)?;
                Ok(gone)
            }
        }
    };
}

sql_index!(
    PgIndex,
    sqlx::Postgres,
    "(SELECT value::bigint FROM json_array_elements_text($4::json))"
);
sql_index!(
    SqliteIndex,
    sqlx::Sqlite,
    "(SELECT value FROM json_each($4))"
);
