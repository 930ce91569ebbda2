//! Sync states in PostgreSQL (the service) or SQLite (standalone): tokens
//! outlive a restart, and any replica answers any phone. Each save trims
//! its folder to the newest tokens and drops expired ones, so a folder
//! holds a bounded number of rows.

use std::time::Duration;

use async_trait::async_trait;
use pushmail_common::clock::now_ms;
use sqlx::{PgPool, SqlitePool};

use super::{Scope, States, StatesError, Token, unavailable};

/// How long and how many tokens a folder keeps.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Newest tokens kept per folder (one per device, and a few behind).
    pub per_folder: u32,
    /// Age after which a token is refused.
    pub max_age: Duration,
}

impl Retention {
    fn oldest_ms(self) -> i64 {
        now_ms().saturating_sub(i64::try_from(self.max_age.as_millis()).unwrap_or(i64::MAX))
    }
}

/// PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStates {
    pool: PgPool,
    retention: Retention,
}

/// SQLite.
#[derive(Debug, Clone)]
pub struct SqliteStates {
    pool: SqlitePool,
    retention: Retention,
}

impl PgStates {
    /// Applies the schema (under sqlx's advisory lock) and serves `pool`.
    pub async fn open(pool: PgPool, retention: Retention) -> Result<Self, StatesError> {
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StatesError::Unavailable(Box::new(e)))?;
        Ok(Self { pool, retention })
    }
}

impl SqliteStates {
    /// Applies the schema and serves `pool`.
    pub async fn open(pool: SqlitePool, retention: Retention) -> Result<Self, StatesError> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| StatesError::Unavailable(Box::new(e)))?;
        Ok(Self { pool, retention })
    }
}

/// The same statements on both databases (both take `$n` parameters).
macro_rules! sql_states {
    ($store:ty) => {
        #[async_trait]
        impl States for $store {
            async fn put(&self, scope: &Scope, state: Vec<u8>) -> Result<Token, StatesError> {
                let token = Token::random();
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                sqlx::query(
                    "INSERT INTO mailbox_sync_states \
                     (token, tenant_id, account_id, folder, issued_ms, state) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(token.as_str())
                .bind(&scope.tenant)
                .bind(&scope.account)
                .bind(scope.folder.raw())
                .bind(now_ms())
                .bind(state)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                sqlx::query(
                    "DELETE FROM mailbox_sync_states \
                     WHERE tenant_id = $1 AND account_id = $2 AND folder = $3 \
                     AND (issued_ms < $4 OR token NOT IN ( \
                         SELECT token FROM mailbox_sync_states \
                         WHERE tenant_id = $1 AND account_id = $2 AND folder = $3 \
                         ORDER BY issued_ms DESC, token DESC LIMIT $5))",
                )
                .bind(&scope.tenant)
                .bind(&scope.account)
                .bind(scope.folder.raw())
                .bind(self.retention.oldest_ms())
                .bind(i64::from(self.retention.per_folder.max(1)))
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                tx.commit().await.map_err(unavailable)?;
                Ok(token)
            }

            async fn get(
                &self,
                scope: &Scope,
                token: &Token,
            ) -> Result<Option<Vec<u8>>, StatesError> {
                let row: Option<(Vec<u8>,)> = sqlx::query_as(
                    "SELECT state FROM mailbox_sync_states \
                     WHERE token = $1 AND tenant_id = $2 AND account_id = $3 AND folder = $4 \
                     AND issued_ms >= $5",
                )
                .bind(token.as_str())
                .bind(&scope.tenant)
                .bind(&scope.account)
                .bind(scope.folder.raw())
                .bind(self.retention.oldest_ms())
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
                Ok(row.map(|(bytes,)| bytes))
            }

            async fn forget_account(&self, tenant: &str, account: &str) -> Result<(), StatesError> {
                sqlx::query(
                    "DELETE FROM mailbox_sync_states WHERE tenant_id = $1 AND account_id = $2",
                )
                .bind(tenant)
                .bind(account)
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
                Ok(())
            }
        }
    };
}

sql_states!(PgStates);
sql_states!(SqliteStates);
