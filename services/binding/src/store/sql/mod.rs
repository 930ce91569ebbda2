//! [`BindingStore`] over PostgreSQL and SQLite. The SQL is written once in
//! the dialect both accept (`$N` parameters, plain types); the macros in
//! `rows.rs` and `queries.rs` stamp it out per backend because sqlx's
//! executors and rows are typed by backend.

#[macro_use]
mod rows;
#[macro_use]
mod queries;
#[macro_use]
mod otp;
#[macro_use]
mod relay;
#[macro_use]
mod app_passwords;
#[macro_use]
mod tenancy;
#[macro_use]
mod extra;

use async_trait::async_trait;
use sqlx::Row as _;
use sqlx::{PgPool, SqlitePool};
use uuid::Uuid;

use super::{
    AccountUpdateStore, AppPasswordStore, BindingStore, CheckpointStore, Recipient, RelayStore,
    SmsOutboxStore, StoreError, TenancyStore,
};
use crate::clock::now_ms;
use crate::domain::{
    Account, AccountId, AccountKind, AddressList, ApiKeyHash, ApiKeyId, ApiKeyRecord, AppPassword,
    AppPasswordId, Binding, BindingId, BindingState, ClientDevice, ContentLevel, Delivery,
    DeliveryCursor, DeliveryTarget, Device, DeviceId, DeviceInformation, MAX_LIVE_KEYS, MailDomain,
    MailboxCheckpoint, Msisdn, NewAccount, NewApiKey, NewDevice, NewTenant, OtpCheck, OutboxSms,
    PendingCode, Preferences, QuietHours, RelayCredential, RelayCredentialId, RelayPolicy,
    SendLimits, ServerSettings, SubmissionChange, TargetDevice, Tenant, TenantId, TenantZone,
    TlsMode, Traffic, TrafficDay, Wipe, WipeKind, owners_of, until_next_day,
};

/// PostgreSQL store.
pub(super) struct PgStore(pub(super) PgPool);

/// SQLite store.
pub(super) struct SqliteStore(pub(super) SqlitePool);

fn map_err(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_owned())
        }
        sqlx::Error::Database(db) if db.is_check_violation() => {
            StoreError::Invalid(db.message().to_owned())
        }
        _ => StoreError::unavailable("database call", err),
    }
}

fn quota(value: i64, column: &str) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Invalid(format!("{column} out of range: {value}")))
}

/// Largest page a list returns, whatever the caller asks for.
const MAX_PAGE: u32 = 1_000;

const TENANT_COLUMNS: &str =
    "id, name, max_accounts, sms_per_day, push_per_minute, codes_per_day, time_zone, created_at_ms";
const API_KEY_COLUMNS: &str =
    "id, tenant_id, prefix, description, created_at_ms, expires_at_ms, revoked_at_ms";
const RELAY_COLUMNS: &str = "id, tenant_id, username, description, created_at_ms, revoked_at_ms";
const APP_PASSWORD_COLUMNS: &str = "p.id, p.tenant_id, p.account_id, p.device_id, p.msisdn, p.label, \
     p.client_device_id, p.client_device_type, p.created_at_ms, p.last_used_at_ms, p.policy_key, \
     p.policy_digest, \
     p.device_model, p.device_os, p.device_name, p.device_user_agent, p.device_operator, \
     p.revoked_at_ms, p.wipe_kind, p.wipe_ordered_at_ms, p.wipe_done_at_ms";
const ACCOUNT_COLUMNS: &str = "id, tenant_id, address, kind, server_host, server_port, server_tls, \
     server_username, submission_host, submission_port, submission_tls, submission_username, \
     sealed_credentials IS NOT NULL AS has_credentials, created_at_ms, watched_folders";

const DEVICE_COLUMNS: &str =
    "id, tenant_id, msisdn, label, has_push_client, revoked_at_ms, created_at_ms";
const BINDING_COLUMNS: &str = "id, tenant_id, account_id, msisdn, state, updated_at_ms";

const PREFERENCE_COLUMNS: &str = "content_level, max_push_bytes, attachments, quiet_start_min, \
     quiet_end_min, quiet_zone, black_list, white_list, signature";

/// The preference columns of the `p` alias, for joins.
const PREFERENCE_COLUMNS_OF_P: &str = "p.content_level, p.max_push_bytes, p.attachments, \
     p.quiet_start_min, p.quiet_end_min, p.quiet_zone, p.black_list, p.white_list, p.signature";

fn counter(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn address_list(json: &str) -> Result<AddressList, StoreError> {
    let entries: Vec<String> =
        serde_json::from_str(json).map_err(|e| StoreError::unreadable("address list", e))?;
    AddressList::parse(&entries).map_err(|e| StoreError::unreadable("address list", e))
}

fn list_json(list: &AddressList) -> String {
    serde_json::to_string(list.entries()).unwrap_or_else(|_| "[]".to_owned())
}

/// A relay policy from its stored JSON (no row: the empty policy).
fn relay_policy(sources: Option<String>, certs: Option<String>) -> Result<RelayPolicy, StoreError> {
    let list = |json: Option<String>| -> Result<Vec<String>, StoreError> {
        json.map_or(Ok(Vec::new()), |json| {
            serde_json::from_str(&json).map_err(|e| StoreError::unreadable("relay policy", e))
        })
    };
    RelayPolicy::parse(&list(sources)?, &list(certs)?)
        .map_err(|e| StoreError::unreadable("relay policy", e))
}

/// One set of `<prefix>_host`, `_port`, `_tls`, `_username` columns; no
/// host: none set.
fn server_settings(
    prefix: &str,
    host: Option<String>,
    port: Option<i32>,
    tls: Option<String>,
    username: Option<String>,
) -> Result<Option<ServerSettings>, StoreError> {
    let Some(host) = host else { return Ok(None) };
    let port = port
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| StoreError::Invalid(format!("{prefix}_port missing or out of range")))?;
    let tls = tls
        .as_deref()
        .and_then(TlsMode::parse)
        .ok_or_else(|| StoreError::Invalid(format!("{prefix}_tls missing or unknown")))?;
    Ok(Some(ServerSettings {
        host,
        port,
        tls,
        username: username.unwrap_or_default(),
    }))
}

mod pg {
    use super::*;
    sql_rows!(sqlx::postgres::PgRow);
    sql_store!(PgStore, sqlx::postgres::PgRow, " FOR UPDATE", "BEGIN");
    sql_tenancy!(PgStore, " FOR UPDATE", "BEGIN");
    sql_relay!(PgStore);
    sql_app_passwords!(PgStore, "BEGIN");
    sql_extra!(PgStore, sqlx::postgres::PgRow);
}

mod sqlite {
    use super::*;
    sql_rows!(sqlx::sqlite::SqliteRow);
    // IMMEDIATE: a transaction that reads and then writes takes the write
    // lock up front and waits for it (busy_timeout); a deferred one fails
    // with SQLITE_BUSY at its first write when another connection wrote
    // or still holds the lock (seen under load after a rolled-back delete).
    sql_store!(SqliteStore, sqlx::sqlite::SqliteRow, "", "BEGIN IMMEDIATE");
    sql_tenancy!(SqliteStore, "", "BEGIN IMMEDIATE");
    sql_relay!(SqliteStore);
    sql_app_passwords!(SqliteStore, "BEGIN IMMEDIATE");
    sql_extra!(SqliteStore, sqlx::sqlite::SqliteRow);
}
