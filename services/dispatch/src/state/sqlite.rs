//! Dispatch state in a SQLite file (standalone's data directory), so a
//! restart keeps claims (no second SMS for a redelivered mail) and held
//! mail (the quiet-hours digest still comes). Every call goes through the
//! file's group commit ([`pushmail_common::sqlite::GroupCommit`]): calls
//! waiting at once share one fsynced transaction (a rate-window count per
//! mail would otherwise cost an fsync each), each in its own savepoint,
//! each answered after the COMMIT. WAL with full synchronisation: a claim
//! is on disk before the SMS it guards is sent.

use std::path::Path;

use async_trait::async_trait;
use prost::Message as _;
use pushmail_common::clock::now_ms;
use pushmail_common::sqlite::GroupCommit;
use pushmail_proto::session::v1::Notification;
use sqlx::Row as _;
use sqlx::sqlite::SqliteConnection;

use super::{Claims, Due, HeldMail, RateWindows, SENT, StateError, device_key};

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS claims (
        key TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS held (
        device_key TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        device TEXT NOT NULL,
        until_ms INTEGER NOT NULL,
        version INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS held_by_due ON held (until_ms)",
    "CREATE TABLE IF NOT EXISTS held_keys (
        device_key TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        PRIMARY KEY (device_key, idempotency_key))",
    "CREATE TABLE IF NOT EXISTS held_digests (
        device_key TEXT NOT NULL,
        collapse_key TEXT NOT NULL,
        notification BLOB NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (device_key, collapse_key))",
    "CREATE TABLE IF NOT EXISTS counters (
        key TEXT PRIMARY KEY,
        value INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL)",
];

/// SQLite-backed dispatch state.
#[derive(Debug, Clone)]
pub struct SqliteState {
    group: GroupCommit,
}

fn ms(duration_ms: u64) -> i64 {
    i64::try_from(duration_ms).unwrap_or(i64::MAX)
}

impl SqliteState {
    /// Opens (and creates) the state at `path`.
    pub async fn open(path: &Path) -> Result<Self, StateError> {
        let pool = pushmail_common::sqlite::open(path, SCHEMA).await?;
        Ok(Self {
            group: GroupCommit::start(pool),
        })
    }
}

#[async_trait]
impl Claims for SqliteState {
    async fn claim(&self, key: &str, owner: &str, ttl_ms: u64) -> Result<bool, StateError> {
        let (key, owner) = (key.to_owned(), owner.to_owned());
        self.group
            .call(move |c| Box::pin(async move { claim(c, &key, &owner, ttl_ms).await }))
            .await
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), StateError> {
        let (key, owner) = (key.to_owned(), owner.to_owned());
        self.group
            .call(move |c| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM claims WHERE key = ?1 AND owner = ?2")
                        .bind(&key)
                        .bind(&owner)
                        .execute(&mut *c)
                        .await?;
                    Ok(())
                })
            })
            .await
    }

    async fn confirm(&self, key: &str, owner: &str) -> Result<(), StateError> {
        let (key, owner) = (key.to_owned(), owner.to_owned());
        self.group
            .call(move |c| {
                Box::pin(async move {
                    sqlx::query("UPDATE claims SET owner = ?3 WHERE key = ?1 AND owner = ?2")
                        .bind(&key)
                        .bind(&owner)
                        .bind(SENT)
                        .execute(&mut *c)
                        .await?;
                    Ok(())
                })
            })
            .await
    }
}

async fn claim(
    c: &mut SqliteConnection,
    key: &str,
    owner: &str,
    ttl_ms: u64,
) -> Result<bool, StateError> {
    let now = now_ms();
    sqlx::query("DELETE FROM claims WHERE key = ?1 AND expires_at_ms <= ?2")
        .bind(key)
        .bind(now)
        .execute(&mut *c)
        .await?;
    sqlx::query(
        "INSERT INTO claims (key, owner, expires_at_ms) VALUES (?1, ?2, ?3) \
         ON CONFLICT (key) DO NOTHING",
    )
    .bind(key)
    .bind(owner)
    .bind(now.saturating_add(ms(ttl_ms)))
    .execute(&mut *c)
    .await?;
    let holder: String = sqlx::query_scalar("SELECT owner FROM claims WHERE key = ?1")
        .bind(key)
        .fetch_one(&mut *c)
        .await?;
    // Expired claims of other keys go now and then, keeping the table small.
    if rand::random::<u8>() == 0 {
        sqlx::query("DELETE FROM claims WHERE expires_at_ms <= ?1")
            .bind(now)
            .execute(&mut *c)
            .await?;
    }
    Ok(holder == owner)
}

#[async_trait]
impl HeldMail for SqliteState {
    async fn defer(&self, notification: &Notification, until_ms: i64) -> Result<(), StateError> {
        let notification = notification.clone();
        self.group
            .call(move |c| Box::pin(async move { defer(c, &notification, until_ms).await }))
            .await
    }

    async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<Due>, StateError> {
        self.group
            .call(move |c| Box::pin(async move { due(c, now_ms, limit).await }))
            .await
    }

    async fn digested(&self, due: &Due) -> Result<bool, StateError> {
        let (device, version) = (device_key(&due.tenant, &due.device), due.version);
        self.group
            .call(move |c| Box::pin(async move { digested(c, &device, version).await }))
            .await
    }
}

async fn defer(
    c: &mut SqliteConnection,
    notification: &Notification,
    until_ms: i64,
) -> Result<(), StateError> {
    let device = device_key(&notification.tenant_id, &notification.device_id);
    let new = sqlx::query(
        "INSERT INTO held_keys (device_key, idempotency_key) VALUES (?1, ?2) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&device)
    .bind(&notification.idempotency_key)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if new == 0 {
        // Held already: a redelivered event is not counted twice.
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO held (device_key, tenant, device, until_ms, version) \
         VALUES (?1, ?2, ?3, ?4, 1) \
         ON CONFLICT (device_key) DO UPDATE SET \
           until_ms = MIN(until_ms, excluded.until_ms), version = version + 1",
    )
    .bind(&device)
    .bind(&notification.tenant_id)
    .bind(&notification.device_id)
    .bind(until_ms)
    .execute(&mut *c)
    .await?;
    sqlx::query(
        "INSERT INTO held_digests (device_key, collapse_key, notification, count) \
         VALUES (?1, ?2, ?3, 1) \
         ON CONFLICT (device_key, collapse_key) DO UPDATE SET \
           notification = excluded.notification, count = count + 1",
    )
    .bind(&device)
    .bind(&notification.collapse_key)
    .bind(notification.encode_to_vec())
    .execute(&mut *c)
    .await?;
    Ok(())
}

async fn due(c: &mut SqliteConnection, now_ms: i64, limit: usize) -> Result<Vec<Due>, StateError> {
    let devices = sqlx::query(
        "SELECT device_key, tenant, device, until_ms, version FROM held \
         WHERE until_ms <= ?1 ORDER BY until_ms LIMIT ?2",
    )
    .bind(now_ms)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(&mut *c)
    .await?;
    let mut due = Vec::with_capacity(devices.len());
    for row in devices {
        let device_key: String = row.get("device_key");
        let digests = sqlx::query(
            "SELECT notification, count FROM held_digests WHERE device_key = ?1 \
             ORDER BY collapse_key",
        )
        .bind(&device_key)
        .fetch_all(&mut *c)
        .await?
        .into_iter()
        .map(|d| {
            let bytes: Vec<u8> = d.get("notification");
            let count: i64 = d.get("count");
            Notification::decode(bytes.as_slice())
                .map(|n| (n, u32::try_from(count).unwrap_or(u32::MAX)))
                .map_err(StateError::Unreadable)
        })
        .collect::<Result<_, _>>()?;
        let version: i64 = row.get("version");
        due.push(Due {
            tenant: row.get("tenant"),
            device: row.get("device"),
            until_ms: row.get("until_ms"),
            digests,
            version: u64::try_from(version).unwrap_or_default(),
        });
    }
    Ok(due)
}

async fn digested(
    c: &mut SqliteConnection,
    device: &str,
    due_version: u64,
) -> Result<bool, StateError> {
    let version: Option<i64> = sqlx::query_scalar("SELECT version FROM held WHERE device_key = ?1")
        .bind(device)
        .fetch_optional(&mut *c)
        .await?;
    match version {
        Some(v) if u64::try_from(v).ok() != Some(due_version) => return Ok(false),
        None => return Ok(true),
        Some(_) => {}
    }
    for table in ["held", "held_keys", "held_digests"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE device_key = ?1"
        )))
        .bind(device)
        .execute(&mut *c)
        .await?;
    }
    Ok(true)
}

#[async_trait]
impl RateWindows for SqliteState {
    async fn count(&self, key: &str, n: u64, ttl_ms: u64) -> Result<u64, StateError> {
        let key = key.to_owned();
        self.group
            .call(move |c| Box::pin(async move { count(c, &key, n, ttl_ms).await }))
            .await
    }
}

async fn count(
    c: &mut SqliteConnection,
    key: &str,
    n: u64,
    ttl_ms: u64,
) -> Result<u64, StateError> {
    let now = now_ms();
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    let value: i64 = sqlx::query_scalar(
        "INSERT INTO counters (key, value, expires_at_ms) VALUES (?1, ?2, ?3) \
         ON CONFLICT (key) DO UPDATE SET \
           value = CASE WHEN expires_at_ms <= ?4 THEN excluded.value ELSE value + excluded.value END, \
           expires_at_ms = CASE WHEN expires_at_ms <= ?4 THEN excluded.expires_at_ms ELSE expires_at_ms END \
         RETURNING value",
    )
    .bind(key)
    .bind(n)
    .bind(now.saturating_add(ms(ttl_ms)))
    .bind(now)
    .fetch_one(&mut *c)
    .await?;
    // Expired windows of other keys go now and then, keeping the table small.
    if value == n && rand::random::<u8>() == 0 {
        sqlx::query("DELETE FROM counters WHERE expires_at_ms <= ?1")
            .bind(now)
            .execute(&mut *c)
            .await?;
    }
    Ok(u64::try_from(value).unwrap_or_default())
}
