//! The system of record: PostgreSQL in production, SQLite standalone, both
//! behind [`BindingStore`] and both checked by one behaviour suite
//! (`integration-tests/tests/binding_store.rs`). Migrations are per backend
//! (`migrations/postgres`, `migrations/sqlite`) and run at start-up.

mod app_passwords;
mod extra;
mod relay;
mod sql;
mod tenancy;

use std::sync::Arc;

use async_trait::async_trait;

pub use app_passwords::AppPasswordStore;
pub use extra::{AccountUpdateStore, CheckpointStore, SmsOutboxStore};
pub use relay::RelayStore;
pub use tenancy::TenancyStore;

use crate::domain::{
    Account, AccountId, AccountKind, ApiKeyHash, Binding, BindingId, Delivery, DeliveryCursor,
    DeliveryTarget, Device, DeviceId, Msisdn, NewAccount, NewApiKey, NewDevice, NewTenant,
    OtpCheck, PendingCode, Preferences, RelayPolicy, SendLimits, Tenant, TenantId, Traffic,
    TrafficDay,
};

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};

use crate::config::DatabaseConfig;
use crate::error::Error;

/// A connection pool to one of the supported databases.
#[derive(Debug, Clone)]
pub enum Database {
    /// PostgreSQL.
    Postgres(PgPool),
    /// SQLite (standalone mode).
    Sqlite(SqlitePool),
}

impl Database {
    /// Connects, failing at start-up if the database cannot be reached.
    pub async fn connect(config: &DatabaseConfig) -> Result<Self, Error> {
        let url = config.url.expose();
        let timeout = Duration::from_millis(config.acquire_timeout_ms);
        let wrap = |source| Error::Database {
            url: config.url.masked().to_string(),
            source,
        };
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(wrap)?
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(timeout);
            // A newcomer's first run must not fail on a missing data directory.
            if let Some(dir) = options
                .get_filename()
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir).map_err(|source| Error::DataDir {
                    dir: dir.to_owned(),
                    source,
                })?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(config.max_connections)
                .acquire_timeout(timeout)
                .connect_with(options)
                .await
                .map_err(wrap)?;
            Ok(Self::Sqlite(pool))
        } else {
            let options = PgConnectOptions::from_str(url).map_err(wrap)?;
            let pool = PgPoolOptions::new()
                .max_connections(config.max_connections)
                .acquire_timeout(timeout)
                .connect_with(options)
                .await
                .map_err(wrap)?;
            Ok(Self::Postgres(pool))
        }
    }

    /// Applies pending migrations (PostgreSQL: under sqlx's advisory lock,
    /// so replicas starting together migrate once).
    pub async fn migrate(&self) -> Result<(), Error> {
        let result = match self {
            Self::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await,
            Self::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await,
        };
        result.map_err(Error::Migrate)
    }

    /// The store over this pool.
    pub fn store(&self) -> Arc<dyn BindingStore> {
        match self {
            Self::Postgres(pool) => Arc::new(sql::PgStore(pool.clone())),
            Self::Sqlite(pool) => Arc::new(sql::SqliteStore(pool.clone())),
        }
    }

    /// A round trip, for `/readyz`.
    pub(crate) async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
            Self::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
        }
    }

    /// Closes the pool, waiting for checked-out connections.
    pub async fn close(&self) {
        match self {
            Self::Postgres(pool) => pool.close().await,
            Self::Sqlite(pool) => pool.close().await,
        }
    }
}

/// A store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A unique key is taken (duplicate tenant key, account, binding).
    #[error("already exists: {0}")]
    Conflict(String),
    /// The database refused a value (a constraint the edge should have caught).
    #[error("rejected by the database: {0}")]
    Invalid(String),
    /// A row the operation needs does not exist (for this tenant).
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// The tenant's quota does not allow it.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(&'static str),
    /// A limit that waiting lifts (a cooldown, a daily cap).
    #[error("{reason}")]
    Throttled {
        /// Which limit, for the caller.
        reason: String,
        /// How long until it lifts, ms.
        retry_after_ms: i64,
    },
    /// The state does not allow it (the caller's to change first).
    #[error("{0}")]
    Precondition(String),
    /// Another tenant holds what this would take.
    #[error("{0}")]
    Forbidden(&'static str),
    /// A stored value does not read back as the domain allows (written by
    /// another version, or damaged).
    #[error("a stored {what} is unreadable")]
    Unreadable {
        /// What was being read.
        what: &'static str,
        /// Why the domain refused it.
        #[source]
        source: std::sync::Arc<dyn std::error::Error + Send + Sync>,
    },
    /// The database could not be reached or failed.
    #[error("database unavailable ({what})")]
    Unavailable {
        /// What was being read or written.
        what: &'static str,
        /// The driver's error.
        #[source]
        source: std::sync::Arc<sqlx::Error>,
    },
}

impl StoreError {
    /// A stored `what` the domain refuses, because of `source`.
    pub(crate) fn unreadable(
        what: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Unreadable {
            what,
            source: std::sync::Arc::new(source),
        }
    }

    /// The database failed while reading or writing `what`.
    pub(crate) fn unavailable(what: &'static str, source: sqlx::Error) -> Self {
        Self::Unavailable {
            what,
            source: std::sync::Arc::new(source),
        }
    }
}

/// Two store errors are the same outcome: an unavailable database is one
/// whatever the driver said (its error has no equality).
impl PartialEq for StoreError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Unavailable { what: a, .. }, Self::Unavailable { what: b, .. })
            | (Self::Unreadable { what: a, .. }, Self::Unreadable { what: b, .. }) => a == b,
            (Self::Conflict(a), Self::Conflict(b))
            | (Self::Invalid(a), Self::Invalid(b))
            | (Self::Precondition(a), Self::Precondition(b)) => a == b,
            (Self::NotFound(a), Self::NotFound(b))
            | (Self::QuotaExceeded(a), Self::QuotaExceeded(b))
            | (Self::Forbidden(a), Self::Forbidden(b)) => a == b,
            (
                Self::Throttled {
                    reason: a,
                    retry_after_ms: x,
                },
                Self::Throttled {
                    reason: b,
                    retry_after_ms: y,
                },
            ) => a == b && x == y,
            _ => false,
        }
    }
}

impl Eq for StoreError {}

/// Who an inbound address reaches, with the tenant's relay policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// Owner.
    pub tenant: TenantId,
    /// The account.
    pub account: AccountId,
    /// How its mail reaches pushmail.
    pub kind: AccountKind,
    /// The owner's relay policy.
    pub policy: RelayPolicy,
}

/// Everything the binding service keeps. Every method that reads or writes
/// tenant data takes the tenant, and every query filters on it.
#[async_trait]
pub trait BindingStore:
    TenancyStore
    + RelayStore
    + AppPasswordStore
    + SmsOutboxStore
    + AccountUpdateStore
    + CheckpointStore
    + Send
    + Sync
    + 'static
{
    /// Creates a tenant with its domains and its first API key, in one
    /// transaction (a domain another tenant owns is a conflict).
    async fn create_tenant(
        &self,
        tenant: &NewTenant,
        key: &NewApiKey,
    ) -> Result<Tenant, StoreError>;

    /// The tenant owning an API key that works at `now_ms`.
    async fn tenant_by_api_key(
        &self,
        key: &ApiKeyHash,
        now_ms: i64,
    ) -> Result<Option<Tenant>, StoreError>;

    /// A tenant by id.
    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError>;

    /// Creates an account within the tenant's `max_accounts` quota. The
    /// caller picks the id so it can seal the credentials to the row first.
    /// A forwarded account takes its address's platform-wide route (a
    /// conflict when taken) and needs its domain unowned or the tenant's
    /// (`Forbidden` otherwise).
    async fn create_account(
        &self,
        tenant: TenantId,
        id: AccountId,
        account: &NewAccount,
        sealed_credentials: Option<&[u8]>,
    ) -> Result<Account, StoreError>;

    /// Deletes one of the tenant's accounts with its bindings, preferences
    /// and traffic; returns the numbers that were verified on it.
    async fn delete_account(
        &self,
        tenant: TenantId,
        id: AccountId,
    ) -> Result<Vec<Msisdn>, StoreError>;

    /// The account an inbound address reaches: within `tenant` when given,
    /// else the forwarded account holding its route, else the oldest
    /// account of another kind with the address (which ingest refuses to
    /// take SMTP for); never an error because of another tenant's rows.
    async fn recipient(
        &self,
        address: &str,
        tenant: Option<TenantId>,
    ) -> Result<Option<Recipient>, StoreError>;

    /// Accounts of every tenant that ingest watches (IMAP, POP3) with their
    /// sealed credentials, in id order after `after`.
    async fn watched_accounts(
        &self,
        after: Option<AccountId>,
        limit: u32,
    ) -> Result<Vec<(Account, Option<Vec<u8>>)>, StoreError>;

    /// One of the tenant's accounts with its sealed credentials, in one
    /// read, so the settings and the password belong together even while
    /// `UpdateAccount` changes both.
    async fn account_with_credentials(
        &self,
        tenant: TenantId,
        id: AccountId,
    ) -> Result<Option<(Account, Option<Vec<u8>>)>, StoreError>;

    /// Dispatch's hot path: every verified number of the account with its
    /// live devices and preferences, in one round trip.
    async fn delivery_targets(
        &self,
        tenant: TenantId,
        account: AccountId,
    ) -> Result<Vec<DeliveryTarget>, StoreError>;

    /// The tenant's accounts with a verified binding to `msisdn` (whose
    /// targets change when a device behind the number does).
    async fn accounts_bound_to(
        &self,
        tenant: TenantId,
        msisdn: &Msisdn,
    ) -> Result<Vec<AccountId>, StoreError>;

    /// One of the tenant's accounts.
    async fn account(&self, tenant: TenantId, id: AccountId)
    -> Result<Option<Account>, StoreError>;

    /// The tenant's accounts in id (creation) order, after `after`.
    /// Accounts in id order; `query` (lowercase, may be empty) keeps those
    /// whose address contains it.
    async fn list_accounts(
        &self,
        tenant: TenantId,
        query: &str,
        after: Option<AccountId>,
        limit: u32,
    ) -> Result<Vec<Account>, StoreError>;

    /// The sealed credentials of one of the tenant's accounts.
    async fn sealed_credentials(
        &self,
        tenant: TenantId,
        id: AccountId,
    ) -> Result<Option<Vec<u8>>, StoreError>;

    /// Starts binding one of the tenant's accounts to `msisdn` with a
    /// pending code, within `limits` (the number's cooldown, daily cap and
    /// guess budget, the tenant's code budget: `Throttled` otherwise),
    /// counted in the same transaction. A pending binding of the same pair
    /// gets the new code (a resend: the old code is void, its wrong answers
    /// still count); a verified one is a conflict.
    async fn start_binding(
        &self,
        tenant: TenantId,
        account: AccountId,
        msisdn: &Msisdn,
        code: &PendingCode,
        limits: &SendLimits,
    ) -> Result<Binding, StoreError>;

    /// One of the tenant's bindings.
    async fn binding(&self, tenant: TenantId, id: BindingId)
    -> Result<Option<Binding>, StoreError>;

    /// Runs `check` on a pending binding's code under a row lock and stores
    /// its outcome (attempt counted, code spent, binding verified) in the
    /// same transaction, so two racing answers cannot both count once. The
    /// code's attempts start from the wrong answers its number was given on
    /// `day` (the guess budget is per number and day, across resends).
    async fn answer_binding(
        &self,
        tenant: TenantId,
        id: BindingId,
        day: jiff::civil::Date,
        check: &(dyn for<'c> Fn(&'c mut PendingCode) -> OtpCheck + Send + Sync),
    ) -> Result<(OtpCheck, Binding), StoreError>;

    /// Ends one of the tenant's bindings.
    async fn revoke_binding(&self, tenant: TenantId, id: BindingId) -> Result<Binding, StoreError>;

    /// Registers a device behind one of the tenant's numbers; `NotFound
    /// ("verified binding")` unless the number has a verified binding in
    /// the tenant.
    async fn register_device(
        &self,
        tenant: TenantId,
        device: &NewDevice,
    ) -> Result<Device, StoreError>;

    /// One of the tenant's devices.
    async fn device(&self, tenant: TenantId, id: DeviceId) -> Result<Option<Device>, StoreError>;

    /// The tenant's devices behind `msisdn`, oldest first.
    async fn devices_of(
        &self,
        tenant: TenantId,
        msisdn: &Msisdn,
    ) -> Result<Vec<Device>, StoreError>;

    /// Revokes a device at `at_ms` (kept if already revoked earlier).
    async fn revoke_device(
        &self,
        tenant: TenantId,
        id: DeviceId,
        at_ms: i64,
    ) -> Result<Device, StoreError>;

    /// A binding's preferences (defaults until set); `NotFound` when the
    /// binding is not the tenant's.
    async fn preferences(
        &self,
        tenant: TenantId,
        binding: BindingId,
    ) -> Result<Preferences, StoreError>;

    /// Replaces a binding's preferences.
    async fn set_preferences(
        &self,
        tenant: TenantId,
        binding: BindingId,
        preferences: &Preferences,
    ) -> Result<(), StoreError>;

    /// Adds `traffic` to one of the tenant's accounts on `day`.
    async fn record_traffic(
        &self,
        tenant: TenantId,
        account: AccountId,
        day: jiff::civil::Date,
        traffic: &Traffic,
    ) -> Result<(), StoreError>;

    /// Charges one SMS (sent for one of the tenant's accounts) to the
    /// tenant's `sms_per_day` on `day`; `QuotaExceeded` when it is used up.
    async fn charge_sms(
        &self,
        tenant: TenantId,
        account: AccountId,
        day: jiff::civil::Date,
    ) -> Result<(), StoreError>;

    /// Adds a receipt to the log (once per event id); a receipt for an
    /// account that is not the tenant's (deleted meanwhile) is dropped.
    /// Whether it was written now (not before, not dropped).
    async fn record_delivery(&self, delivery: &Delivery) -> Result<bool, StoreError>;

    /// An account's log, newest first, after `after`, at most `limit`.
    async fn deliveries(
        &self,
        tenant: TenantId,
        account: AccountId,
        after: Option<&DeliveryCursor>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Drops log entries older than `before_ms`; returns how many.
    async fn prune_deliveries(&self, before_ms: i64) -> Result<u64, StoreError>;

    /// Drops verification-code counts of days before `day` (numbers that
    /// are never sent a code again would keep them); returns how many.
    async fn prune_code_counts(&self, day: jiff::civil::Date) -> Result<u64, StoreError>;

    /// One of the tenant's accounts' traffic from `from` to `to` (inclusive), by day.
    async fn traffic(
        &self,
        tenant: TenantId,
        account: AccountId,
        from: jiff::civil::Date,
        to: jiff::civil::Date,
    ) -> Result<Vec<TrafficDay>, StoreError>;

    /// The bindings of one of the tenant's accounts, newest last.
    async fn list_bindings(
        &self,
        tenant: TenantId,
        account: AccountId,
    ) -> Result<Vec<Binding>, StoreError>;
}
