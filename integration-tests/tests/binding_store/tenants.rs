//! Tenants and their API keys.

use super::*;

pub(crate) async fn behave(store: Arc<dyn BindingStore>) {
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
