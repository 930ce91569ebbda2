//! One behaviour suite for the binding store, run against SQLite and a
//! fresh PostgreSQL database: both backends must answer alike.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

mod accounts;
mod app_passwords;
mod bindings;
mod checkpoints;
mod devices;
mod keys;
mod migration;
mod outbox;
mod preferences;
mod relay;
mod tenants;
mod traffic;
mod verification;

use std::sync::Arc;

use pushmail_binding::config::DatabaseConfig;
use pushmail_binding::crypto::CredentialCipher;
use pushmail_binding::domain::{
    AccountId, AccountKind, AddressList, ApiKey, BindingId, BindingState, ContentLevel, DeviceId,
    MailDomain, Msisdn, NewAccount, NewApiKey, NewDevice, NewTenant, OtpCheck, OtpIssuer,
    OtpPolicy, PendingCode, Preferences, QuietHours, SendLimits, ServerSettings, TenantId, TlsMode,
    Traffic,
};
use pushmail_binding::store::{BindingStore, Database, StoreError};
use pushmail_common::redact::SecretUrl;
use pushmail_integration_tests::TestDatabase;
use uuid::Uuid;

async fn open(url: &str) -> Database {
    let config = DatabaseConfig {
        url: SecretUrl::new(url),
        ..DatabaseConfig::default()
    };
    let database = Database::connect(&config).await.expect("connect");
    database.migrate().await.expect("migrate");
    database.migrate().await.expect("migrations are idempotent");
    database
}

/// The UTC day the suite's SMS are charged to.
pub(crate) const DAY: jiff::civil::Date = jiff::civil::date(2026, 11, 26);

pub(crate) fn acme() -> NewTenant {
    NewTenant {
        name: "Acme Mail".to_owned(),
        max_accounts: 100,
        sms_per_day: 1_000,
        push_per_minute: 0,
        codes_per_day: None,
        domains: Vec::new(),
        time_zone: pushmail_binding::domain::TenantZone::utc(),
    }
}

/// What a tenant's first key is stored as.
pub(crate) fn first_key(key: &ApiKey) -> NewApiKey {
    NewApiKey::of(key, "made with the tenant", None)
}

pub(crate) async fn new_tenant(store: &Arc<dyn BindingStore>, tenant: &NewTenant) -> TenantId {
    store
        .create_tenant(tenant, &first_key(&ApiKey::generate()))
        .await
        .unwrap()
        .id
}

/// Limits loose enough not to matter: no cooldown, high caps.
pub(crate) fn limits() -> SendLimits {
    SendLimits {
        now_ms: 1_000,
        day: DAY,
        cooldown_ms: 0,
        per_number: 100,
        per_tenant_default: 1_000,
        wrong_answers: 3,
    }
}

/// An IMAP account of `tenant` without credentials.
pub(crate) async fn new_account(
    store: &Arc<dyn BindingStore>,
    tenant: TenantId,
    address: &str,
) -> AccountId {
    let id = AccountId::generate();
    store
        .create_account(tenant, id, &imap(address), None)
        .await
        .unwrap();
    id
}

/// A verified binding of `account` to `number`.
pub(crate) async fn verified(
    store: &Arc<dyn BindingStore>,
    tenant: TenantId,
    account: AccountId,
    number: &Msisdn,
) -> BindingId {
    let issuer = OtpIssuer::new(
        b"otp key",
        OtpPolicy {
            ttl_ms: 300_000,
            max_attempts: 3,
        },
    );
    let (code, pending) = issuer.issue(0).unwrap();
    let binding = store
        .start_binding(tenant, account, number, &pending, &limits())
        .await
        .unwrap();
    let answer = code.expose().to_owned();
    let (outcome, _) = store
        .answer_binding(tenant, binding.id, DAY, &move |c: &mut PendingCode| {
            issuer.check(c, &answer, 1)
        })
        .await
        .unwrap();
    assert_eq!(outcome, OtpCheck::Accepted);
    binding.id
}

pub(crate) fn imap(address: &str) -> NewAccount {
    NewAccount {
        address: address.to_owned(),
        kind: AccountKind::ExternalImap,
        server: Some(ServerSettings {
            host: "imap.example.net".to_owned(),
            port: 993,
            tls: TlsMode::Implicit,
            username: address.to_owned(),
        }),
        submission: None,
    }
}

/// The whole suite, against one backend.
async fn behaves(store: Arc<dyn BindingStore>) {
    tenants::behave(store.clone()).await;
    accounts::behave(store.clone()).await;
    bindings::behave(store.clone()).await;
    devices::behave(store.clone()).await;
    preferences::behave(store.clone()).await;
    keys::behave(store.clone()).await;
    relay::behave(store.clone()).await;
    app_passwords::behave(store.clone()).await;
    app_passwords::wipes(store.clone()).await;
    outbox::behave(store.clone()).await;
    checkpoints::behave(store.clone()).await;
    verification::behave(store.clone()).await;
    traffic::behave(store).await;
}

#[tokio::test]
async fn sqlite_store_behaves() {
    let dir = tempfile::tempdir().unwrap();
    let database = open(&format!(
        "sqlite://{}/binding.db?mode=rwc",
        dir.path().display()
    ))
    .await;
    behaves(database.store()).await;
    database.close().await;
}

#[tokio::test]
async fn postgres_store_behaves() {
    let test_database = TestDatabase::create().await.expect("test database");
    let database = open(&test_database.url).await;
    behaves(database.store()).await;
    database.close().await;
    test_database.drop_database().await.unwrap();
}
