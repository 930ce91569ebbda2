//! One behaviour suite for the binding store, run against SQLite and a
//! fresh PostgreSQL database: both backends must answer alike.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::sync::Arc;

use pushmail_binding::config::DatabaseConfig;
use pushmail_binding::domain::{ApiKey, NewTenant, TenantId};
use pushmail_binding::store::{BindingStore, Database, StoreError};
use pushmail_common::redact::SecretUrl;
use pushmail_integration_tests::TestDatabase;

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

fn acme() -> NewTenant {
    NewTenant {
        name: "Acme Mail".to_owned(),
        max_accounts: 100,
        sms_per_day: 1_000,
    }
}

async fn tenants_behave(store: Arc<dyn BindingStore>) {
    let key = ApiKey::generate();
    let created = store.create_tenant(&acme(), &key.hash()).await.unwrap();
    assert_eq!(created.name, "Acme Mail");
    assert_eq!((created.max_accounts, created.sms_per_day), (100, 1_000));

    let by_key = store
        .tenant_by_api_key(&ApiKey::presented(key.expose()).hash())
        .await
        .unwrap();
    assert_eq!(by_key.as_ref(), Some(&created));
    assert_eq!(
        store.tenant(created.id).await.unwrap().as_ref(),
        Some(&created)
    );

    let stranger = ApiKey::generate();
    assert_eq!(
        store.tenant_by_api_key(&stranger.hash()).await.unwrap(),
        None
    );
    assert_eq!(store.tenant(TenantId::generate()).await.unwrap(), None);

    let again = store.create_tenant(&acme(), &key.hash()).await.unwrap_err();
    assert!(
        matches!(again, StoreError::Conflict(_)),
        "same key twice: {again:?}"
    );

    let nameless = NewTenant {
        name: String::new(),
        ..acme()
    };
    let refused = store
        .create_tenant(&nameless, &stranger.hash())
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::Invalid(_)),
        "empty name: {refused:?}"
    );
    assert_eq!(
        store.tenant_by_api_key(&stranger.hash()).await.unwrap(),
        None,
        "nothing half-written"
    );
}

#[tokio::test]
async fn sqlite_store_behaves() {
    let dir = tempfile::tempdir().unwrap();
    let database = open(&format!(
        "sqlite://{}/binding.db?mode=rwc",
        dir.path().display()
    ))
    .await;
    tenants_behave(database.store()).await;
    database.close().await;
}

#[tokio::test]
async fn postgres_store_behaves() {
    let test_database = TestDatabase::create().await.expect("test database");
    let database = open(&test_database.url).await;
    tenants_behave(database.store()).await;
    database.close().await;
    test_database.drop_database().await.unwrap();
}
