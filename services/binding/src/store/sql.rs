//! [`BindingStore`] over PostgreSQL and SQLite. The SQL is written once in
//! the dialect both accept (`$N` parameters, plain types); the macro stamps
//! it out per pool type because sqlx's executors are typed by backend.

use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sqlx::Row as _;
use sqlx::{PgPool, SqlitePool};
use uuid::Uuid;

use super::{BindingStore, StoreError};
use crate::domain::{ApiKeyHash, NewTenant, Tenant, TenantId};

/// PostgreSQL store.
pub(super) struct PgStore(pub(super) PgPool);

/// SQLite store.
pub(super) struct SqliteStore(pub(super) SqlitePool);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn map_err(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_owned())
        }
        sqlx::Error::Database(db) if db.is_check_violation() => {
            StoreError::Invalid(db.message().to_owned())
        }
        _ => StoreError::Unavailable(err.to_string()),
    }
}

fn quota(value: i64, column: &str) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Invalid(format!("{column} out of range: {value}")))
}

const TENANT_COLUMNS: &str = "id, name, max_accounts, sms_per_day, created_at_ms";

macro_rules! sql_store {
    ($store:ty, $row:ty) => {
        fn tenant_from_row(row: &$row) -> Result<Tenant, StoreError> {
            let get = |e: sqlx::Error| StoreError::Unavailable(format!("tenant row: {e}"));
            Ok(Tenant {
                id: TenantId::from_uuid(row.try_get::<Uuid, _>("id").map_err(get)?),
                name: row.try_get("name").map_err(get)?,
                max_accounts: quota(row.try_get("max_accounts").map_err(get)?, "max_accounts")?,
                sms_per_day: quota(row.try_get("sms_per_day").map_err(get)?, "sms_per_day")?,
                created_at_ms: row.try_get("created_at_ms").map_err(get)?,
            })
        }

        #[async_trait]
        impl BindingStore for $store {
            async fn create_tenant(&self, tenant: &NewTenant, key: &ApiKeyHash) -> Result<Tenant, StoreError> {
                let created = Tenant {
                    id: TenantId::generate(),
                    name: tenant.name.clone(),
                    max_accounts: tenant.max_accounts,
                    sms_per_day: tenant.sms_per_day,
                    created_at_ms: now_ms(),
                };
                sqlx::query(
                    "INSERT INTO tenants (id, name, api_key_hash, max_accounts, sms_per_day, created_at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(created.id.as_uuid())
                .bind(&created.name)
                .bind(key.as_str())
                .bind(i64::from(created.max_accounts))
                .bind(i64::from(created.sms_per_day))
                .bind(created.created_at_ms)
                .execute(&self.0)
                .await
                .map_err(map_err)?;
                Ok(created)
            }

            async fn tenant_by_api_key(&self, key: &ApiKeyHash) -> Result<Option<Tenant>, StoreError> {
                let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE api_key_hash = $1");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(key.as_str())
                    .fetch_optional(&self.0)
                    .await
                    .map_err(map_err)?
                    .map(|row| tenant_from_row(&row))
                    .transpose()
            }

            async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
                let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id.as_uuid())
                    .fetch_optional(&self.0)
                    .await
                    .map_err(map_err)?
                    .map(|row| tenant_from_row(&row))
                    .transpose()
            }
        }
    };
}

mod pg {
    use super::*;
    sql_store!(PgStore, sqlx::postgres::PgRow);
}

mod sqlite {
    use super::*;
    sql_store!(SqliteStore, sqlx::sqlite::SqliteRow);
}
