//! The uploads' ledger in PostgreSQL (the service) or SQLite (standalone),
//! in the sync states' database (its migrations create both).

use async_trait::async_trait;
use sqlx::{PgPool, SqlitePool};

use super::ledger::{Appended, Ledger, Refused};
use super::{Chunk, Owner, Upload, UploadId};
use crate::sync::{StatesError, unavailable};

/// The ledger in SQL: [`PgLedger`] or [`SqliteLedger`].
#[derive(Debug, Clone)]
pub struct SqlLedger<P> {
    pool: P,
}

/// The ledger in PostgreSQL.
pub type PgLedger = SqlLedger<PgPool>;
/// The ledger in SQLite.
pub type SqliteLedger = SqlLedger<SqlitePool>;

impl<P> SqlLedger<P> {
    /// Over a pool the sync states opened (and migrated).
    pub fn new(pool: P) -> Self {
        Self { pool }
    }
}

/// The upload's columns, in `Row`'s order (a macro: sqlx takes only
/// literal SQL).
macro_rules! columns {
    () => {
        "upload_id, tenant_id, account_id, file_name, content_type, \
         total_bytes, received_bytes, blob_ref, created_ms, expires_ms"
    };
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    i64,
    i64,
);

fn upload(row: Row) -> Result<Upload, StatesError> {
    let (id, tenant, account, file_name, content_type, total, received, blob, created, expires) =
        row;
    let id = UploadId::parse(&id).ok_or_else(|| {
        StatesError::Unavailable(format!("the ledger holds a malformed upload id {id:?}").into())
    })?;
    Ok(Upload {
        id,
        owner: Owner { tenant, account },
        file_name,
        content_type,
        total: u64::try_from(total).unwrap_or(0),
        received: u64::try_from(received).unwrap_or(0),
        blob,
        created_ms: created,
        expires_ms: expires,
    })
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// PostgreSQL serializes the count-then-insert per owner with an advisory
/// lock (READ COMMITTED lets two inserts each see the other's absence);
/// SQLite runs one writer at a time anyway.
const PG_OWNER_LOCK: Option<&str> = Some("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))");
const SQLITE_OWNER_LOCK: Option<&str> = None;

macro_rules! sql_ledger {
    ($ledger:ty, $owner_lock:expr) => {
        #[async_trait]
        impl Ledger for $ledger {
            async fn create(&self, u: &Upload, max_open: u32) -> Result<(), Refused> {
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                if let Some(lock) = $owner_lock {
                    sqlx::query(lock)
                        .bind(format!(
                            "mailbox-upload/{}/{}",
                            u.owner.tenant, u.owner.account
                        ))
                        .execute(&mut *tx)
                        .await
                        .map_err(unavailable)?;
                }
                let inserted = sqlx::query(concat!(
                    "INSERT INTO mailbox_uploads (",
                    columns!(),
                    ") \
                     SELECT $1, $2, $3, $4, $5, $6, 0, NULL, $7, $8 \
                     WHERE (SELECT COUNT(*) FROM mailbox_uploads \
                            WHERE tenant_id = $2 AND account_id = $3 \
                            AND blob_ref IS NULL AND expires_ms > $7) < $9"
                ))
                .bind(u.id.as_str())
                .bind(&u.owner.tenant)
                .bind(&u.owner.account)
                .bind(&u.file_name)
                .bind(&u.content_type)
                .bind(signed(u.total))
                .bind(u.created_ms)
                .bind(u.expires_ms)
                .bind(i64::from(max_open))
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?
                .rows_affected();
                if inserted == 0 {
                    return Err(Refused::TooManyOpen { max: max_open });
                }
                tx.commit().await.map_err(unavailable)?;
                Ok(())
            }

            async fn get(
                &self,
                owner: &Owner,
                id: &UploadId,
                now_ms: i64,
            ) -> Result<Option<Upload>, StatesError> {
                let row: Option<Row> = sqlx::query_as(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM mailbox_uploads \
                     WHERE upload_id = $1 AND tenant_id = $2 AND account_id = $3 \
                     AND expires_ms > $4"
                ))
                .bind(id.as_str())
                .bind(&owner.tenant)
                .bind(&owner.account)
                .bind(now_ms)
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
                row.map(upload).transpose()
            }

            async fn append(
                &self,
                owner: &Owner,
                id: &UploadId,
                chunk: &Chunk,
                now_ms: i64,
            ) -> Result<Appended, StatesError> {
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                let row: Option<Row> = sqlx::query_as(concat!(
                    "UPDATE mailbox_uploads SET received_bytes = received_bytes + $1 \
                     WHERE upload_id = $2 AND tenant_id = $3 AND account_id = $4 \
                     AND received_bytes = $5 AND blob_ref IS NULL AND expires_ms > $6 \
                     RETURNING ",
                    columns!()
                ))
                .bind(signed(chunk.len))
                .bind(id.as_str())
                .bind(&owner.tenant)
                .bind(&owner.account)
                .bind(signed(chunk.offset))
                .bind(now_ms)
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable)?;
                let Some(row) = row else {
                    drop(tx);
                    return Ok(match self.get(owner, id, now_ms).await? {
                        Some(upload) => Appended::Elsewhere(upload),
                        None => Appended::Missing,
                    });
                };
                sqlx::query(
                    "INSERT INTO mailbox_upload_chunks \
                     (upload_id, offset_bytes, length_bytes, file) VALUES ($1, $2, $3, $4)",
                )
                .bind(id.as_str())
                .bind(signed(chunk.offset))
                .bind(signed(chunk.len))
                .bind(&chunk.file)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                tx.commit().await.map_err(unavailable)?;
                Ok(Appended::Accepted(upload(row)?))
            }

            async fn chunks(&self, id: &UploadId) -> Result<Vec<Chunk>, StatesError> {
                let rows: Vec<(i64, i64, String)> = sqlx::query_as(
                    "SELECT offset_bytes, length_bytes, file FROM mailbox_upload_chunks \
                     WHERE upload_id = $1 ORDER BY offset_bytes",
                )
                .bind(id.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
                Ok(rows
                    .into_iter()
                    .map(|(offset, len, file)| Chunk {
                        offset: u64::try_from(offset).unwrap_or(0),
                        len: u64::try_from(len).unwrap_or(0),
                        file,
                    })
                    .collect())
            }

            async fn complete(
                &self,
                id: &UploadId,
                blob: &str,
                expires_ms: i64,
            ) -> Result<(), StatesError> {
                sqlx::query(
                    "UPDATE mailbox_uploads SET blob_ref = $1, expires_ms = $2 \
                     WHERE upload_id = $3 AND blob_ref IS NULL",
                )
                .bind(blob)
                .bind(expires_ms)
                .bind(id.as_str())
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
                Ok(())
            }

            async fn expired(&self, now_ms: i64, limit: u32) -> Result<Vec<UploadId>, StatesError> {
                let ids: Vec<(String,)> = sqlx::query_as(
                    "SELECT upload_id FROM mailbox_uploads WHERE expires_ms <= $1 \
                     ORDER BY expires_ms LIMIT $2",
                )
                .bind(now_ms)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
                Ok(ids
                    .into_iter()
                    .filter_map(|(id,)| UploadId::parse(&id))
                    .collect())
            }

            async fn exists(&self, id: &UploadId) -> Result<bool, StatesError> {
                let (count,): (i64,) =
                    sqlx::query_as("SELECT COUNT(*) FROM mailbox_uploads WHERE upload_id = $1")
                        .bind(id.as_str())
                        .fetch_one(&self.pool)
                        .await
                        .map_err(unavailable)?;
                Ok(count > 0)
            }

            async fn remove(&self, id: &UploadId) -> Result<(), StatesError> {
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                for delete in [
                    "DELETE FROM mailbox_upload_chunks WHERE upload_id = $1",
                    "DELETE FROM mailbox_uploads WHERE upload_id = $1",
                ] {
                    sqlx::query(delete)
                        .bind(id.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(unavailable)?;
                }
                tx.commit().await.map_err(unavailable)
            }
        }
    };
}

sql_ledger!(PgLedger, PG_OWNER_LOCK);
sql_ledger!(SqliteLedger, SQLITE_OWNER_LOCK);
