//! The tenant-isolation migrations expand a database of the release before
//! them: each tenant's key becomes its first API key, and where two tenants
//! held one forwarded address (the incident: every delivery to it `451`)
//! the oldest account takes the route again.

use std::path::Path;

use sqlx::migrate::Migrator;

use super::*;

/// The last migration of the release before tenant isolation.
const BEFORE: i64 = 20261127000009;

/// What the release before wrote: two tenants with their keys, each with a
/// forwarded account at one address (Alice's first), and a watched one.
macro_rules! seed {
    ($pool:expr, $alice:expr, $mallory:expr, $keys:expr, $first:expr, $second:expr) => {{
        for (tenant, key, at) in [($alice, &$keys.0, 1_000_i64), ($mallory, &$keys.1, 2_000)] {
            sqlx::query(
                "INSERT INTO tenants (id, name, api_key_hash, max_accounts, sms_per_day, created_at_ms) \
                 VALUES ($1, 'old', $2, 10, 10, $3)",
            )
            .bind(tenant)
            .bind(key)
            .bind(at)
            .execute($pool)
            .await
            .unwrap();
        }
        for (id, tenant, kind, at) in [
            ($first, $alice, "enterprise_forwarded", 3_000_i64),
            ($second, $mallory, "enterprise_forwarded", 4_000),
            (uuid::Uuid::now_v7(), $mallory, "webhook", 5_000),
        ] {
            let address = if kind == "webhook" { "hook@old.example" } else { "boss@old.example" };
            sqlx::query(
                "INSERT INTO accounts (id, tenant_id, address, kind, created_at_ms) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(tenant)
            .bind(address)
            .bind(kind)
            .bind(at)
            .execute($pool)
            .await
            .unwrap();
        }
    }};
}

/// After the migration, through the store.
async fn expanded(url: &str, alice: Uuid, mallory: Uuid, keys: (ApiKey, ApiKey), first: Uuid) {
    let database = open(url).await;
    let store = database.store();
    for (tenant, key) in [(alice, &keys.0), (mallory, &keys.1)] {
        let found = store.tenant_by_api_key(&key.hash(), 10_000).await.unwrap();
        assert_eq!(
            found.map(|t| t.id.as_uuid()),
            Some(tenant),
            "the old key works"
        );
        let listed = store.api_keys(TenantId::from_uuid(tenant)).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            listed[0].id.as_uuid(),
            tenant,
            "the first key's id is the tenant's"
        );
        assert_eq!(listed[0].prefix, "", "its prefix was never stored");
    }
    let routed = store
        .recipient("boss@old.example", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (routed.tenant.as_uuid(), routed.account.as_uuid()),
        (alice, first),
        "the oldest account takes the route"
    );
    let hook = store
        .recipient("hook@old.example", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hook.kind, AccountKind::Webhook, "other kinds still resolve");
    // Mallory's duplicate stays, routes nothing, and blocks no one.
    let mallory_accounts = store
        .list_accounts(TenantId::from_uuid(mallory), "boss@", None, 10)
        .await
        .unwrap();
    assert_eq!(mallory_accounts.len(), 1);
    database.close().await;
}

fn keys() -> (ApiKey, ApiKey) {
    (ApiKey::generate(), ApiKey::generate())
}

#[tokio::test]
async fn postgres_expands_a_database_of_the_release_before() {
    let test_database = TestDatabase::create().await.expect("test database");
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../services/binding/migrations/postgres"
    );
    let pool = sqlx::PgPool::connect(&test_database.url).await.unwrap();
    Migrator::new(Path::new(dir))
        .await
        .unwrap()
        .run_to(BEFORE, &pool)
        .await
        .unwrap();
    let (alice, mallory, first, second) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    let keys = keys();
    let hashes = (
        keys.0.hash().as_str().to_owned(),
        keys.1.hash().as_str().to_owned(),
    );
    seed!(&pool, alice, mallory, hashes, first, second);
    pool.close().await;
    expanded(&test_database.url, alice, mallory, keys, first).await;
    test_database.drop_database().await.unwrap();
}

#[tokio::test]
async fn sqlite_expands_a_database_of_the_release_before() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/binding.db?mode=rwc", dir.path().display());
    let migrations = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../services/binding/migrations/sqlite"
    );
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    Migrator::new(Path::new(migrations))
        .await
        .unwrap()
        .run_to(BEFORE, &pool)
        .await
        .unwrap();
    let (alice, mallory, first, second) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    let keys = keys();
    let hashes = (
        keys.0.hash().as_str().to_owned(),
        keys.1.hash().as_str().to_owned(),
    );
    seed!(&pool, alice, mallory, hashes, first, second);
    pool.close().await;
    expanded(&url, alice, mallory, keys, first).await;
}
