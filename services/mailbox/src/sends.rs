//! Sends already made, by the phone's idempotency key (`client_send_id`):
//! a phone that lost the answer to a Send and asks again gets the first
//! answer, and nothing is sent twice. Recorded once the submission server
//! has accepted the message; kept for `max_age`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use pushmail_common::clock::now_ms;
use sqlx::{PgPool, SqlitePool};

use crate::sync::StatesError;

/// A send as answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The message's Message-ID.
    pub rfc_message_id: String,
    /// Its copy in Sent ("" when none was stored).
    pub sent_message_id: String,
}

/// Whose send it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SendKey {
    /// Tenant.
    pub tenant: String,
    /// Account.
    pub account: String,
    /// The phone's key.
    pub client_send_id: String,
}

/// Where sends are remembered.
#[async_trait]
pub trait Sends: Send + Sync {
    /// The send made under `key`, if any (and not expired).
    async fn find(&self, key: &SendKey) -> Result<Option<Sent>, StatesError>;
    /// Remembers `sent` under `key` (the first record wins).
    async fn record(&self, key: &SendKey, sent: &Sent) -> Result<(), StatesError>;
}

fn oldest_ms(max_age: Duration) -> i64 {
    now_ms().saturating_sub(i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX))
}

/// In memory (tests).
#[derive(Debug)]
pub struct MemorySends {
    max_age: Duration,
    inner: Mutex<HashMap<SendKey, (i64, Sent)>>,
}

impl MemorySends {
    /// Remembering sends for `max_age`.
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            inner: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl Sends for MemorySends {
    async fn find(&self, key: &SendKey) -> Result<Option<Sent>, StatesError> {
        let inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let oldest = oldest_ms(self.max_age);
        Ok(inner
            .get(key)
            .filter(|(at, _)| *at >= oldest)
            .map(|(_, sent)| sent.clone()))
    }

    async fn record(&self, key: &SendKey, sent: &Sent) -> Result<(), StatesError> {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let oldest = oldest_ms(self.max_age);
        inner.retain(|_, (at, _)| *at >= oldest);
        inner
            .entry(key.clone())
            .or_insert_with(|| (now_ms(), sent.clone()));
        Ok(())
    }
}

/// PostgreSQL (the schema comes with the sync states').
#[derive(Debug, Clone)]
pub struct PgSends {
    pool: PgPool,
    max_age: Duration,
}

/// SQLite.
#[derive(Debug, Clone)]
pub struct SqliteSends {
    pool: SqlitePool,
    max_age: Duration,
}

impl PgSends {
    /// Over a pool the sync states opened (and migrated).
    pub fn new(pool: PgPool, max_age: Duration) -> Self {
        Self { pool, max_age }
    }
}

impl SqliteSends {
    /// Over a pool the sync states opened (and migrated).
    pub fn new(pool: SqlitePool, max_age: Duration) -> Self {
        Self { pool, max_age }
    }
}

fn unavailable(error: sqlx::Error) -> StatesError {
    StatesError::Unavailable(Box::new(error))
}

macro_rules! sql_sends {
    ($store:ty) => {
        #[async_trait]
        impl Sends for $store {
            async fn find(&self, key: &SendKey) -> Result<Option<Sent>, StatesError> {
                let row: Option<(String, String)> = sqlx::query_as(
                    "SELECT rfc_message_id, sent_message_id FROM mailbox_sends \
                     WHERE tenant_id = $1 AND account_id = $2 AND client_send_id = $3 \
                     AND sent_ms >= $4",
                )
                .bind(&key.tenant)
                .bind(&key.account)
                .bind(&key.client_send_id)
                .bind(oldest_ms(self.max_age))
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
                Ok(row.map(|(rfc_message_id, sent_message_id)| Sent {
                    rfc_message_id,
                    sent_message_id,
                }))
            }

            async fn record(&self, key: &SendKey, sent: &Sent) -> Result<(), StatesError> {
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                sqlx::query("DELETE FROM mailbox_sends WHERE sent_ms < $1")
                    .bind(oldest_ms(self.max_age))
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                sqlx::query(
                    "INSERT INTO mailbox_sends \
                     (tenant_id, account_id, client_send_id, rfc_message_id, sent_message_id, sent_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                )
                .bind(&key.tenant)
                .bind(&key.account)
                .bind(&key.client_send_id)
                .bind(&sent.rfc_message_id)
                .bind(&sent.sent_message_id)
                .bind(now_ms())
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                tx.commit().await.map_err(unavailable)
            }
        }
    };
}

sql_sends!(PgSends);
sql_sends!(SqliteSends);
