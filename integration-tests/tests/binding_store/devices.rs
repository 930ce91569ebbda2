//! Devices and their revocation cut-off.

use super::*;

pub(crate) async fn behave(store: Arc<dyn BindingStore>) {
    let tenant = new_tenant(&store, &acme()).await;
    let other = new_tenant(&store, &acme()).await;
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
