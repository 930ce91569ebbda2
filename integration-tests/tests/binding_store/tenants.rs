//! Tenants and their API keys.

use super::*;

pub(crate) async fn behave(store: Arc<dyn BindingStore>) {
    let key = ApiKey::generate();
    let created = store
        .create_tenant(&acme(), &first_key(&key))
        .await
        .unwrap();
    assert_eq!(created.name, "Acme Mail");
    assert_eq!((created.max_accounts, created.sms_per_day), (100, 1_000));
    assert_eq!(created.codes_per_day, None);

    let by_key = store
        .tenant_by_api_key(&ApiKey::presented(key.expose()).hash(), 1)
        .await
        .unwrap();
    assert_eq!(by_key.as_ref(), Some(&created));
    assert_eq!(
        store.tenant(created.id).await.unwrap().as_ref(),
        Some(&created)
    );

    let stranger = ApiKey::generate();
    assert_eq!(
        store.tenant_by_api_key(&stranger.hash(), 1).await.unwrap(),
        None
    );
    assert_eq!(store.tenant(TenantId::generate()).await.unwrap(), None);

    // A tenant's days are counted in its zone: UTC unless set, kept as set.
    assert_eq!(created.time_zone.name(), "UTC");
    let shanghai = pushmail_binding::domain::TenantZone::parse("Asia/Shanghai").unwrap();
    let zoned = store
        .set_tenant_time_zone(created.id, &shanghai)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(zoned.time_zone, shanghai);
    assert_eq!(
        store.tenant(created.id).await.unwrap().unwrap().time_zone,
        shanghai
    );
    assert_eq!(
        store
            .set_tenant_time_zone(TenantId::generate(), &shanghai)
            .await
            .unwrap(),
        None
    );
    let _ = zoned;

    let again = store
        .create_tenant(&acme(), &first_key(&key))
        .await
        .unwrap_err();
    assert!(
        matches!(again, StoreError::Conflict(_)),
        "same key twice: {again:?}"
    );

    let nameless = NewTenant {
        name: String::new(),
        ..acme()
    };
    let refused = store
        .create_tenant(&nameless, &first_key(&stranger))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::Invalid(_)),
        "empty name: {refused:?}"
    );
    assert_eq!(
        store.tenant_by_api_key(&stranger.hash(), 1).await.unwrap(),
        None,
        "nothing half-written"
    );

    // Domains come with the tenant; one another tenant owns refuses the
    // whole creation.
    let corp = MailDomain::parse("tenants-corp.example").unwrap();
    let owner = store
        .create_tenant(
            &NewTenant {
                domains: vec![corp.clone()],
                codes_per_day: Some(7),
                ..acme()
            },
            &first_key(&ApiKey::generate()),
        )
        .await
        .unwrap();
    assert_eq!(owner.codes_per_day, Some(7));
    assert_eq!(
        store.tenant_domains(owner.id).await.unwrap(),
        std::slice::from_ref(&corp)
    );
    let late = ApiKey::generate();
    let taken = store
        .create_tenant(
            &NewTenant {
                domains: vec![corp],
                ..acme()
            },
            &first_key(&late),
        )
        .await
        .unwrap_err();
    assert!(matches!(taken, StoreError::Conflict(_)), "{taken:?}");
    assert_eq!(
        store.tenant_by_api_key(&late.hash(), 1).await.unwrap(),
        None,
        "the refused tenant was not written"
    );
}
