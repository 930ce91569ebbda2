//! One behaviour suite for the binding store, run against SQLite and a
//! fresh PostgreSQL database: both backends must answer alike.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::sync::Arc;

use pushmail_binding::config::DatabaseConfig;
use pushmail_binding::crypto::CredentialCipher;
use pushmail_binding::domain::{
    AccountId, AccountKind, AddressList, ApiKey, BindingId, BindingState, ContentLevel, DeviceId,
    Msisdn, NewAccount, NewDevice, NewTenant, OtpCheck, OtpIssuer, OtpPolicy, PendingCode,
    Preferences, QuietHours, ServerSettings, TenantId, TlsMode, Traffic,
};
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

fn imap(address: &str) -> NewAccount {
    NewAccount {
        address: address.to_owned(),
        kind: AccountKind::ExternalImap,
        server: Some(ServerSettings {
            host: "imap.example.net".to_owned(),
            port: 993,
            tls: TlsMode::Implicit,
            username: address.to_owned(),
        }),
    }
}

async fn accounts_behave(store: Arc<dyn BindingStore>) {
    let small = NewTenant {
        max_accounts: 3,
        ..acme()
    };
    let tenant = store
        .create_tenant(&small, &ApiKey::generate().hash())
        .await
        .unwrap()
        .id;
    let other = store
        .create_tenant(&acme(), &ApiKey::generate().hash())
        .await
        .unwrap()
        .id;
    let cipher = CredentialCipher::from_hex(&"42".repeat(32)).unwrap();

    // Created with credentials sealed to the row; read back only by its tenant.
    let id = AccountId::generate();
    let row = format!("{tenant}/{id}");
    let sealed = cipher.seal(b"imap-password", row.as_bytes()).unwrap();
    let created = store
        .create_account(tenant, id, &imap("a@example.net"), Some(&sealed))
        .await
        .unwrap();
    assert!(created.has_credentials);
    assert_eq!(
        store.account(tenant, id).await.unwrap().as_ref(),
        Some(&created)
    );
    let stored = store.sealed_credentials(tenant, id).await.unwrap().unwrap();
    assert_eq!(
        cipher.open(&stored, row.as_bytes()).unwrap(),
        b"imap-password"
    );
    assert_eq!(
        store.account(other, id).await.unwrap(),
        None,
        "another tenant sees nothing"
    );
    assert_eq!(store.sealed_credentials(other, id).await.unwrap(), None);
    assert!(
        store
            .list_accounts(other, None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // The same address twice for one tenant is a conflict; for another tenant it is fine.
    let dup = store
        .create_account(tenant, AccountId::generate(), &imap("a@example.net"), None)
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    store
        .create_account(other, AccountId::generate(), &imap("a@example.net"), None)
        .await
        .unwrap();

    // Quota: three accounts, the fourth refused and not written.
    let webhook = NewAccount {
        kind: AccountKind::Webhook,
        server: None,
        ..imap("b@example.net")
    };
    let b = store
        .create_account(tenant, AccountId::generate(), &webhook, None)
        .await
        .unwrap();
    assert!(!b.has_credentials && b.server.is_none());
    store
        .create_account(tenant, AccountId::generate(), &imap("c@example.net"), None)
        .await
        .unwrap();
    let over = store
        .create_account(tenant, AccountId::generate(), &imap("d@example.net"), None)
        .await;
    assert_eq!(over.unwrap_err(), StoreError::QuotaExceeded("max_accounts"));

    // Paging in creation order.
    let first = store.list_accounts(tenant, None, 2).await.unwrap();
    let rest = store
        .list_accounts(tenant, Some(first[1].id), 2)
        .await
        .unwrap();
    let addresses: Vec<&str> = first
        .iter()
        .chain(&rest)
        .map(|a| a.address.as_str())
        .collect();
    assert_eq!(
        addresses,
        ["a@example.net", "b@example.net", "c@example.net"]
    );

    let orphan = store
        .create_account(
            TenantId::generate(),
            AccountId::generate(),
            &imap("x@y.z"),
            None,
        )
        .await;
    assert_eq!(orphan.unwrap_err(), StoreError::NotFound("tenant"));
}

async fn bindings_behave(store: Arc<dyn BindingStore>) {
    let issuer = OtpIssuer::new(
        b"otp key",
        OtpPolicy {
            ttl_ms: 300_000,
            max_attempts: 3,
        },
    );
    let tenant = store
        .create_tenant(&acme(), &ApiKey::generate().hash())
        .await
        .unwrap()
        .id;
    let other = store
        .create_tenant(&acme(), &ApiKey::generate().hash())
        .await
        .unwrap()
        .id;
    let account = AccountId::generate();
    store
        .create_account(tenant, account, &imap("bind@example.net"), None)
        .await
        .unwrap();
    let second = AccountId::generate();
    store
        .create_account(tenant, second, &imap("bind2@example.net"), None)
        .await
        .unwrap();
    let number = Msisdn::parse("+8613800138000").unwrap();
    let now = 1_000;

    let (code, pending) = issuer.issue(now).unwrap();
    let binding = store
        .start_binding(tenant, account, &number, &pending)
        .await
        .unwrap();
    assert_eq!(binding.state, BindingState::Pending);
    let (_, again) = issuer.issue(now).unwrap();
    let dup = store.start_binding(tenant, account, &number, &again).await;
    assert!(
        matches!(dup, Err(StoreError::Conflict(_))),
        "live pair twice: {dup:?}"
    );
    // One number, several accounts; one account, several numbers.
    store
        .start_binding(tenant, second, &number, &again)
        .await
        .unwrap();
    let intl = Msisdn::parse("+442079460958").unwrap();
    store
        .start_binding(tenant, account, &intl, &again)
        .await
        .unwrap();
    // Another tenant can neither bind this account nor answer this binding.
    let foreign = store.start_binding(other, account, &number, &again).await;
    assert_eq!(foreign.unwrap_err(), StoreError::NotFound("account"));
    let issuer = &issuer;
    let check = |answer: &str| {
        let answer = answer.to_owned();
        move |c: &mut PendingCode| issuer.check(c, &answer, now + 1)
    };
    let foreign = store
        .answer_binding(other, binding.id, &check("000000"))
        .await;
    assert_eq!(foreign.unwrap_err(), StoreError::NotFound("binding"));

    let wrong = if code.expose() == "999999" {
        "000000"
    } else {
        "999999"
    };
    let (outcome, still) = store
        .answer_binding(tenant, binding.id, &check(wrong))
        .await
        .unwrap();
    assert_eq!(
        (outcome, still.state),
        (OtpCheck::Wrong { remaining: 2 }, BindingState::Pending)
    );
    let right = code.expose();
    let (outcome, done) = store
        .answer_binding(tenant, binding.id, &check(right))
        .await
        .unwrap();
    assert_eq!(
        (outcome, done.state),
        (OtpCheck::Accepted, BindingState::Verified)
    );
    let (outcome, _) = store
        .answer_binding(tenant, binding.id, &check(right))
        .await
        .unwrap();
    assert_eq!(outcome, OtpCheck::AlreadyUsed, "single use");

    let revoked = store.revoke_binding(tenant, binding.id).await.unwrap();
    assert_eq!(revoked.state, BindingState::Revoked);
    let late = store
        .answer_binding(tenant, binding.id, &check(right))
        .await;
    assert_eq!(late.unwrap_err(), StoreError::NotFound("pending binding"));
    assert_eq!(
        store.revoke_binding(other, binding.id).await.unwrap_err(),
        StoreError::NotFound("binding")
    );
    // After a revoke the pair may bind again.
    let (code2, pending2) = issuer.issue(now).unwrap();
    let rebind = store
        .start_binding(tenant, account, &number, &pending2)
        .await
        .unwrap();

    // Three wrong answers spend the code, even against the right one after.
    let wrong2 = if code2.expose() == "999999" {
        "000000"
    } else {
        "999999"
    };
    for _ in 0..3 {
        store
            .answer_binding(tenant, rebind.id, &check(wrong2))
            .await
            .unwrap();
    }
    let right2 = code2.expose();
    let (outcome, state) = store
        .answer_binding(tenant, rebind.id, &check(right2))
        .await
        .unwrap();
    assert_eq!(
        (outcome, state.state),
        (OtpCheck::Exhausted, BindingState::Pending)
    );

    let listed = store.list_bindings(tenant, account).await.unwrap();
    let states: Vec<_> = listed
        .iter()
        .map(|b| (b.msisdn.as_str().to_owned(), b.state))
        .collect();
    assert_eq!(states.len(), 3, "{states:?}");
    assert!(
        store
            .list_bindings(other, account)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.binding(other, rebind.id).await.unwrap(), None);
    assert_eq!(
        store.binding(tenant, BindingId::generate()).await.unwrap(),
        None
    );
}

async fn devices_behave(store: Arc<dyn BindingStore>) {
    let tenant = store
        .create_tenant(&acme(), &ApiKey::generate().hash())
        .await
        .unwrap()
        .id;
    let other = store
        .create_tenant(&acme(), &ApiKey::generate().hash())
        .await
        .unwrap()
        .id;
    let number = Msisdn::parse("+8613900139000").unwrap();
    let phone = |label: &str, push: bool| NewDevice {
        msisdn: number.clone(),
        label: label.to_owned(),
        has_push_client: push,
    };
    let first = store
        .register_device(tenant, &phone("work phone", true))
        .await
        .unwrap();
    let second = store
        .register_device(tenant, &phone("feature phone", false))
        .await
        .unwrap();
    assert_eq!(
        store.devices_of(tenant, &number).await.unwrap(),
        [first.clone(), second.clone()]
    );
    assert!(store.devices_of(other, &number).await.unwrap().is_empty());
    assert_eq!(store.device(other, first.id).await.unwrap(), None);

    let revoked = store.revoke_device(tenant, first.id, 5_000).await.unwrap();
    assert_eq!(revoked.revoked_at_ms, Some(5_000));
    let again = store.revoke_device(tenant, first.id, 9_000).await.unwrap();
    assert_eq!(
        again.revoked_at_ms,
        Some(5_000),
        "the first revocation stands"
    );
    assert_eq!(
        store.revoke_device(other, second.id, 1).await.unwrap_err(),
        StoreError::NotFound("device")
    );
    assert_eq!(
        store
            .device(tenant, second.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at_ms,
        None
    );
    assert_eq!(
        store
            .revoke_device(tenant, DeviceId::generate(), 1)
            .await
            .unwrap_err(),
        StoreError::NotFound("device")
    );
    let long = store
        .register_device(tenant, &phone(&"x".repeat(101), true))
        .await;
    assert!(matches!(long, Err(StoreError::Invalid(_))), "{long:?}");
}

async fn preferences_behave(store: Arc<dyn BindingStore>) {
    let tenant = store
        .create_tenant(&acme(), &ApiKey::generate().hash())
        .await
        .unwrap()
        .id;
    let other = store
        .create_tenant(&acme(), &ApiKey::generate().hash())
        .await
        .unwrap()
        .id;
    let account = AccountId::generate();
    store
        .create_account(tenant, account, &imap("prefs@example.net"), None)
        .await
        .unwrap();
    let number = Msisdn::parse("+8613700137000").unwrap();
    let issuer = OtpIssuer::new(
        b"k",
        OtpPolicy {
            ttl_ms: 1_000,
            max_attempts: 3,
        },
    );
    let binding = store
        .start_binding(tenant, account, &number, &issuer.issue(0).unwrap().1)
        .await
        .unwrap()
        .id;

    assert_eq!(
        store.preferences(tenant, binding).await.unwrap(),
        Preferences::default()
    );
    let chosen = Preferences {
        content_level: ContentLevel::SubjectSenderSnippet,
        max_push_bytes: 2_048,
        attachments: false,
        quiet_hours: Some(QuietHours::new(22 * 60, 7 * 60, "Asia/Shanghai").unwrap()),
        black_list: AddressList::parse(&["@spam.example", "noise@example.com"]).unwrap(),
        white_list: AddressList::parse(&["boss@spam.example"]).unwrap(),
        signature: "发自我的手机".to_owned(),
    };
    store
        .set_preferences(tenant, binding, &chosen)
        .await
        .unwrap();
    assert_eq!(store.preferences(tenant, binding).await.unwrap(), chosen);

    let invalid = Preferences {
        max_push_bytes: 10,
        ..Preferences::default()
    };
    let refused = store
        .set_preferences(tenant, binding, &invalid)
        .await
        .unwrap_err();
    assert!(matches!(refused, StoreError::Invalid(_)), "{refused:?}");
    assert_eq!(
        store.preferences(tenant, binding).await.unwrap(),
        chosen,
        "nothing half-written"
    );

    assert_eq!(
        store.preferences(other, binding).await.unwrap_err(),
        StoreError::NotFound("binding")
    );
    let foreign = store
        .set_preferences(other, binding, &Preferences::default())
        .await;
    assert_eq!(foreign.unwrap_err(), StoreError::NotFound("binding"));
    assert_eq!(
        store.preferences(tenant, binding).await.unwrap(),
        chosen,
        "untouched by the other tenant"
    );
}

async fn traffic_behaves(store: Arc<dyn BindingStore>) {
    let tenant = store
        .create_tenant(&acme(), &ApiKey::generate().hash())
        .await
        .unwrap()
        .id;
    let other = store
        .create_tenant(&acme(), &ApiKey::generate().hash())
        .await
        .unwrap()
        .id;
    let account = AccountId::generate();
    store
        .create_account(tenant, account, &imap("stats@example.net"), None)
        .await
        .unwrap();
    let day = |d: &str| d.parse::<jiff::civil::Date>().unwrap();
    let push = Traffic {
        pushed_count: 1,
        pushed_bytes: 700,
        ..Traffic::default()
    };
    let fetch = Traffic {
        fetched_count: 1,
        fetched_bytes: 50_000,
        sms_count: 1,
        ..Traffic::default()
    };
    store
        .record_traffic(tenant, account, day("2026-11-25"), &push)
        .await
        .unwrap();
    store
        .record_traffic(tenant, account, day("2026-11-26"), &push)
        .await
        .unwrap();
    store
        .record_traffic(tenant, account, day("2026-11-26"), &fetch)
        .await
        .unwrap();
    store
        .record_traffic(tenant, account, day("2026-11-27"), &push)
        .await
        .unwrap();

    let days = store
        .traffic(tenant, account, day("2026-11-25"), day("2026-11-26"))
        .await
        .unwrap();
    assert_eq!(days.len(), 2, "range is inclusive and bounded");
    assert_eq!(days[0].traffic, push);
    let both = Traffic {
        pushed_count: 1,
        pushed_bytes: 700,
        fetched_count: 1,
        fetched_bytes: 50_000,
        sms_count: 1,
    };
    assert_eq!(
        (days[1].day, days[1].traffic),
        (day("2026-11-26"), both),
        "same day adds up"
    );

    let foreign = store
        .record_traffic(other, account, day("2026-11-26"), &push)
        .await;
    assert_eq!(foreign.unwrap_err(), StoreError::NotFound("account"));
    assert!(
        store
            .traffic(other, account, day("2026-01-01"), day("2026-12-31"))
            .await
            .unwrap()
            .is_empty()
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
    accounts_behave(database.store()).await;
    bindings_behave(database.store()).await;
    devices_behave(database.store()).await;
    preferences_behave(database.store()).await;
    traffic_behaves(database.store()).await;
    database.close().await;
}

#[tokio::test]
async fn postgres_store_behaves() {
    let test_database = TestDatabase::create().await.expect("test database");
    let database = open(&test_database.url).await;
    tenants_behave(database.store()).await;
    accounts_behave(database.store()).await;
    bindings_behave(database.store()).await;
    devices_behave(database.store()).await;
    preferences_behave(database.store()).await;
    traffic_behaves(database.store()).await;
    database.close().await;
    test_database.drop_database().await.unwrap();
}
