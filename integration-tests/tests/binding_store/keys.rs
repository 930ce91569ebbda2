//! API keys (several per tenant, revoked with a grace) and owned domains.

use pushmail_binding::domain::{ApiKeyId, MAX_LIVE_KEYS};

use super::*;

pub(crate) async fn behave(store: Arc<dyn BindingStore>) {
    let first = ApiKey::generate();
    let tenant = store
        .create_tenant(&acme(), &first_key(&first))
        .await
        .unwrap()
        .id;
    let other = new_tenant(&store, &acme()).await;
    let listed = store.api_keys(tenant).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].prefix, first.prefix());
    assert!(listed[0].is_active(0));

    // A second key works beside the first.
    let second = ApiKey::generate();
    let made = store
        .create_api_key(tenant, &NewApiKey::of(&second, "ci", None), 1_000)
        .await
        .unwrap();
    assert_eq!(
        (made.description.as_str(), made.created_at_ms),
        ("ci", 1_000)
    );
    let works = |key: &ApiKey, at: i64| {
        let store = store.clone();
        let hash = key.hash();
        async move {
            store
                .tenant_by_api_key(&hash, at)
                .await
                .unwrap()
                .map(|t| t.id)
        }
    };
    assert_eq!(works(&second, 2_000).await, Some(tenant));

    // Rotation: the first revoked with a grace works until the grace ends.
    let revoked = store
        .revoke_api_key(tenant, listed[0].id, 3_000, 10_000, false)
        .await
        .unwrap();
    assert_eq!(
        (revoked.revoked_at_ms, revoked.expires_at_ms),
        (Some(3_000), Some(10_000))
    );
    assert_eq!(works(&first, 9_999).await, Some(tenant), "within the grace");
    assert_eq!(works(&first, 10_000).await, None, "after the grace");
    // Repeating a revocation never lengthens the grace.
    let again = store
        .revoke_api_key(tenant, listed[0].id, 4_000, 50_000, false)
        .await
        .unwrap();
    assert_eq!(
        (again.revoked_at_ms, again.expires_at_ms),
        (Some(3_000), Some(10_000))
    );

    // The last working key is not revoked by accident.
    let last = store
        .revoke_api_key(tenant, made.id, 11_000, 11_000, false)
        .await
        .unwrap_err();
    assert!(matches!(last, StoreError::Precondition(_)), "{last:?}");
    assert_eq!(works(&second, 11_000).await, Some(tenant), "unchanged");
    // A key still in its grace does not count as "another working key"
    // past that grace.
    let third = ApiKey::generate();
    let expiring = store
        .create_api_key(tenant, &NewApiKey::of(&third, "", Some(20_000)), 11_000)
        .await
        .unwrap();
    let still_last = store
        .revoke_api_key(tenant, made.id, 11_000, 30_000, false)
        .await
        .unwrap_err();
    assert!(matches!(still_last, StoreError::Precondition(_)));
    store
        .revoke_api_key(tenant, made.id, 11_000, 11_000, true)
        .await
        .expect("said so");
    assert_eq!(works(&second, 11_000).await, None, "revoked at once");
    assert_eq!(works(&third, 11_000).await, Some(tenant));
    assert_eq!(works(&third, 20_000).await, None, "created with a lifetime");

    // Another tenant neither sees nor revokes these keys.
    assert!(
        store
            .api_keys(other)
            .await
            .unwrap()
            .iter()
            .all(|k| k.tenant_id == other)
    );
    assert_eq!(
        store
            .revoke_api_key(other, expiring.id, 12_000, 12_000, true)
            .await
            .unwrap_err(),
        StoreError::NotFound("api key")
    );
    assert_eq!(
        store
            .revoke_api_key(tenant, ApiKeyId::generate(), 1, 1, true)
            .await
            .unwrap_err(),
        StoreError::NotFound("api key")
    );

    // At most MAX_LIVE_KEYS working keys.
    let crowded = new_tenant(&store, &acme()).await;
    for _ in 1..MAX_LIVE_KEYS {
        store
            .create_api_key(crowded, &NewApiKey::of(&ApiKey::generate(), "", None), 1)
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .create_api_key(crowded, &NewApiKey::of(&ApiKey::generate(), "", None), 1)
            .await
            .unwrap_err(),
        StoreError::QuotaExceeded("api keys")
    );
    domains(&store).await;
}

/// Owned domains: one owner each; forwarded addresses in them are the
/// owner's only; assigning needs the domain free of other tenants'.
async fn domains(store: &Arc<dyn BindingStore>) {
    let owner = new_tenant(store, &acme()).await;
    let rival = new_tenant(store, &acme()).await;
    let forwarded = |address: &str| NewAccount {
        address: address.to_owned(),
        kind: AccountKind::EnterpriseForwarded,
        server: None,
        submission: None,
    };
    let bank = MailDomain::parse("bank.example").unwrap();
    store
        .create_account(
            rival,
            AccountId::generate(),
            &forwarded("early@bank.example"),
            None,
        )
        .await
        .unwrap();
    let strays = store
        .set_tenant_domains(owner, std::slice::from_ref(&bank))
        .await
        .unwrap_err();
    assert!(matches!(strays, StoreError::Precondition(_)), "{strays:?}");
    assert!(
        store.tenant_domains(owner).await.unwrap().is_empty(),
        "nothing written"
    );

    let corp = MailDomain::parse("owned-corp.example").unwrap();
    assert_eq!(
        store
            .set_tenant_domains(owner, std::slice::from_ref(&corp))
            .await
            .unwrap(),
        std::slice::from_ref(&corp)
    );
    let taken = store
        .set_tenant_domains(rival, std::slice::from_ref(&corp))
        .await
        .unwrap_err();
    assert!(matches!(taken, StoreError::Conflict(_)), "{taken:?}");

    // The owner forwards in its domain and below it; the rival cannot.
    for address in ["ceo@owned-corp.example", "ops@mx.owned-corp.example"] {
        store
            .create_account(owner, AccountId::generate(), &forwarded(address), None)
            .await
            .unwrap();
        let refused = store
            .create_account(
                rival,
                AccountId::generate(),
                &forwarded(&address.replace("ceo", "cfo").replace("ops", "dev")),
                None,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(refused, StoreError::Forbidden(_)),
            "{address}: {refused:?}"
        );
    }
    // Another kind is not routed by address: the rival may watch such a mailbox.
    store
        .create_account(
            rival,
            AccountId::generate(),
            &imap("cto@owned-corp.example"),
            None,
        )
        .await
        .unwrap();
    directory(store, owner, rival).await;
    // Releasing the domain lets others in again.
    assert!(
        store
            .set_tenant_domains(owner, &[])
            .await
            .unwrap()
            .is_empty()
    );
    store
        .create_account(
            rival,
            AccountId::generate(),
            &forwarded("cfo@owned-corp.example"),
            None,
        )
        .await
        .unwrap();
}

/// The directory: the owner's accounts in its domains (and below), by a
/// literal, case-blind substring, sorted and bounded; never another
/// tenant's accounts, never the owner's mailboxes elsewhere.
async fn directory(store: &Arc<dyn BindingStore>, owner: TenantId, rival: TenantId) {
    for address in [
        "Me@Public-Mail.example",
        "eve@notowned-corp.example",
        "owned-corp.example@public-mail.example",
    ] {
        store
            .create_account(owner, AccountId::generate(), &imap(address), None)
            .await
            .unwrap();
    }
    store
        .create_account(
            owner,
            AccountId::generate(),
            &imap("Ann_Lee@Owned-Corp.example"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        store.directory(owner, "example", 100).await.unwrap(),
        [
            "Ann_Lee@Owned-Corp.example",
            "ceo@owned-corp.example",
            "ops@mx.owned-corp.example"
        ]
    );
    assert_eq!(store.directory(owner, "example", 2).await.unwrap().len(), 2);
    assert_eq!(
        store.directory(owner, "ann_", 100).await.unwrap(),
        ["Ann_Lee@Owned-Corp.example"]
    );
    // LIKE's wildcards are literal.
    assert!(store.directory(owner, "c_o", 100).await.unwrap().is_empty());
    assert!(store.directory(owner, "%", 100).await.unwrap().is_empty());
    assert!(
        store
            .directory(owner, "public", 100)
            .await
            .unwrap()
            .is_empty()
    );
    // The rival owns no domain: its directory is empty, though it has an
    // account at the owner's domain.
    assert!(
        store
            .directory(rival, "owned", 100)
            .await
            .unwrap()
            .is_empty()
    );
}
