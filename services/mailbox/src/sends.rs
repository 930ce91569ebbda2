//! Sends by the phone's idempotency key (`client_send_id`): a phone that
//! lost the answer to a Send and asks again gets the first answer, and
//! nothing is sent twice. A send claims its key before it submits (so the
//! same Send arriving twice at once, on two replicas, sends once: the
//! second is told the first is in flight), records the answer once the
//! submission server accepted the message, and releases the claim when
//! nothing was sent. Answers are kept for `max_age`; a claim whose holder
//! died mid-send is taken over after `abandoned_after`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use pushmail_common::clock::now_ms;
use sqlx::{PgPool, SqlitePool};

use crate::sync::{StatesError, unavailable};

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

/// What claiming a key came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The caller holds the key: send, then record or release.
    Mine,
    /// Sent already: the first answer.
    Done(Sent),
    /// Another call holds the key and has not finished.
    InFlight,
}

/// Where sends are remembered.
#[async_trait]
pub trait Sends: Send + Sync {
    /// Claims `key` for a send about to be made.
    async fn claim(&self, key: &SendKey) -> Result<Claim, StatesError>;
    /// Remembers `sent` under the claimed `key`.
    async fn record(&self, key: &SendKey, sent: &Sent) -> Result<(), StatesError>;
    /// Gives up the claim on `key` (nothing was sent), so a retry may send.
    async fn release(&self, key: &SendKey) -> Result<(), StatesError>;
}

/// How long a claim may go unfinished before it counts as abandoned: well
/// past a Send's longest run (every submission step's timeout).
pub const ABANDONED_AFTER: Duration = Duration::from_secs(600);

fn ago_ms(age: Duration) -> i64 {
    now_ms().saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX))
}

/// In memory (tests).
#[derive(Debug)]
pub struct MemorySends {
    max_age: Duration,
    abandoned_after: Duration,
    /// When claimed or sent, and the answer once sent.
    inner: Mutex<HashMap<SendKey, (i64, Option<Sent>)>>,
}

impl MemorySends {
    /// Remembering sends for `max_age`.
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            abandoned_after: ABANDONED_AFTER,
            inner: Mutex::new(HashMap::new()),
        }
    }

    /// Claims older than `after` are taken over.
    #[must_use]
    pub fn abandoned_after(mut self, after: Duration) -> Self {
        self.abandoned_after = after;
        self
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, HashMap<SendKey, (i64, Option<Sent>)>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl Sends for MemorySends {
    async fn claim(&self, key: &SendKey) -> Result<Claim, StatesError> {
        let mut inner = self.locked();
        let oldest = ago_ms(self.max_age);
        inner.retain(|_, (at, _)| *at >= oldest);
        let abandoned = ago_ms(self.abandoned_after);
        match inner.get(key) {
            Some((_, Some(sent))) => return Ok(Claim::Done(sent.clone())),
            Some((at, None)) if *at >= abandoned => return Ok(Claim::InFlight),
            _ => {}
        }
        inner.insert(key.clone(), (now_ms(), None));
        Ok(Claim::Mine)
    }

    async fn record(&self, key: &SendKey, sent: &Sent) -> Result<(), StatesError> {
        let mut inner = self.locked();
        let entry = inner.entry(key.clone()).or_insert((now_ms(), None));
        if entry.1.is_none() {
            *entry = (now_ms(), Some(sent.clone()));
        }
        Ok(())
    }

    async fn release(&self, key: &SendKey) -> Result<(), StatesError> {
        let mut inner = self.locked();
        if matches!(inner.get(key), Some((_, None))) {
            inner.remove(key);
        }
        Ok(())
    }
}

/// A send store in SQL: PostgreSQL ([`PgSends`], the schema comes with the
/// sync states') or SQLite ([`SqliteSends`]). A claim is a row with no
/// answer yet (`rfc_message_id` empty: a sent message always has one).
#[derive(Debug, Clone)]
pub struct SqlSends<P> {
    pool: P,
    max_age: Duration,
    abandoned_after: Duration,
}

/// Sends in PostgreSQL.
pub type PgSends = SqlSends<PgPool>;
/// Sends in SQLite.
pub type SqliteSends = SqlSends<SqlitePool>;

impl<P> SqlSends<P> {
    /// Over a pool the sync states opened (and migrated).
    pub fn new(pool: P, max_age: Duration) -> Self {
        Self {
            pool,
            max_age,
            abandoned_after: ABANDONED_AFTER,
        }
    }

    /// Claims older than `after` are taken over.
    #[must_use]
    pub fn abandoned_after(mut self, after: Duration) -> Self {
        self.abandoned_after = after;
        self
    }
}

macro_rules! sql_sends {
    ($store:ty) => {
        #[async_trait]
        impl Sends for $store {
            async fn claim(&self, key: &SendKey) -> Result<Claim, StatesError> {
                // An answer past its age is forgotten: the key is new again.
                sqlx::query(
                    "DELETE FROM mailbox_sends WHERE tenant_id = $1 AND account_id = $2 \
                     AND client_send_id = $3 AND sent_ms < $4",
                )
                .bind(&key.tenant)
                .bind(&key.account)
                .bind(&key.client_send_id)
                .bind(ago_ms(self.max_age))
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
                let now = now_ms();
                // Twice: a claim released between our insert and our read
                // leaves the key free for a second insert.
                let mut found = None;
                for _ in 0..2 {
                let claimed = sqlx::query(
                    "INSERT INTO mailbox_sends \
                     (tenant_id, account_id, client_send_id, rfc_message_id, sent_message_id, sent_ms) \
                     VALUES ($1, $2, $3, '', '', $4) ON CONFLICT DO NOTHING",
                )
                .bind(&key.tenant)
                .bind(&key.account)
                .bind(&key.client_send_id)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(unavailable)?
                .rows_affected();
                if claimed == 1 {
                    return Ok(Claim::Mine);
                }
                let row: Option<(String, String, i64)> = sqlx::query_as(
                    "SELECT rfc_message_id, sent_message_id, sent_ms FROM mailbox_sends \
                     WHERE tenant_id = $1 AND account_id = $2 AND client_send_id = $3",
                )
                .bind(&key.tenant)
                .bind(&key.account)
                .bind(&key.client_send_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
                if row.is_some() {
                    found = row;
                    break;
                }
                }
                let Some((rfc_message_id, sent_message_id, at)) = found else {
                    return Ok(Claim::InFlight);
                };
                if !rfc_message_id.is_empty() {
                    return Ok(Claim::Done(Sent {
                        rfc_message_id,
                        sent_message_id,
                    }));
                }
                if at >= ago_ms(self.abandoned_after) {
                    return Ok(Claim::InFlight);
                }
                // Abandoned: take it over, unless another caller just did.
                let taken = sqlx::query(
                    "UPDATE mailbox_sends SET sent_ms = $4 WHERE tenant_id = $1 \
                     AND account_id = $2 AND client_send_id = $3 \
                     AND rfc_message_id = '' AND sent_ms = $5",
                )
                .bind(&key.tenant)
                .bind(&key.account)
                .bind(&key.client_send_id)
                .bind(now)
                .bind(at)
                .execute(&self.pool)
                .await
                .map_err(unavailable)?
                .rows_affected();
                Ok(if taken == 1 {
                    Claim::Mine
                } else {
                    Claim::InFlight
                })
            }

            async fn record(&self, key: &SendKey, sent: &Sent) -> Result<(), StatesError> {
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                sqlx::query("DELETE FROM mailbox_sends WHERE sent_ms < $1")
                    .bind(ago_ms(self.max_age))
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                sqlx::query(
                    "INSERT INTO mailbox_sends \
                     (tenant_id, account_id, client_send_id, rfc_message_id, sent_message_id, sent_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (tenant_id, account_id, client_send_id) DO UPDATE \
                     SET rfc_message_id = excluded.rfc_message_id, \
                     sent_message_id = excluded.sent_message_id, sent_ms = excluded.sent_ms \
                     WHERE mailbox_sends.rfc_message_id = ''",
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

            async fn release(&self, key: &SendKey) -> Result<(), StatesError> {
                sqlx::query(
                    "DELETE FROM mailbox_sends WHERE tenant_id = $1 AND account_id = $2 \
                     AND client_send_id = $3 AND rfc_message_id = ''",
                )
                .bind(&key.tenant)
                .bind(&key.account)
                .bind(&key.client_send_id)
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
                Ok(())
            }
        }
    };
}

sql_sends!(PgSends);
sql_sends!(SqliteSends);
