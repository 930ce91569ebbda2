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
    // Only a number verified in the tenant takes devices.
    assert_eq!(
        store
            .register_device(tenant, &phone("early", true))
            .await
            .unwrap_err(),
        StoreError::NotFound("verified binding")
    );
    let account = new_account(&store, tenant, "devices@example.net").await;
    let pending = OtpIssuer::new(
        b"k",
        OtpPolicy {
            ttl_ms: 1,
            max_attempts: 1,
        },
    )
    .issue(0)
    .unwrap()
    .1;
    store
        .start_binding(tenant, account, &number, &pending, &limits())
        .await
        .unwrap();
    assert_eq!(
        store
            .register_device(tenant, &phone("pending", true))
            .await
            .unwrap_err(),
        StoreError::NotFound("verified binding"),
        "a pending binding is not enough"
    );
    let other_account = new_account(&store, other, "devices@example.net").await;
    verified(&store, other, other_account, &number).await;
    assert_eq!(
        store
            .register_device(tenant, &phone("other's", true))
            .await
            .unwrap_err(),
        StoreError::NotFound("verified binding"),
        "another tenant's verified binding is not this tenant's"
    );
    let second_account = new_account(&store, tenant, "devices2@example.net").await;
    verified(&store, tenant, second_account, &number).await;
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
    targets(&store).await;
    let long = store
        .register_device(tenant, &phone(&"x".repeat(101), true))
        .await;
    assert!(matches!(long, Err(StoreError::Invalid(_))), "{long:?}");
}

/// Dispatch's read: each verified number with its live devices and
/// preferences; a number without devices still is a target (SMS only).
async fn targets(store: &Arc<dyn BindingStore>) {
    let tenant = new_tenant(store, &acme()).await;
    let account = new_account(store, tenant, "targets@example.net").await;
    let with_phones = Msisdn::parse("+8613700137000").unwrap();
    let bare = Msisdn::parse("+447700900123").unwrap();
    let pending = Msisdn::parse("+8613700137001").unwrap();
    let first = verified(store, tenant, account, &with_phones).await;
    let second = verified(store, tenant, account, &bare).await;
    store
        .start_binding(
            tenant,
            account,
            &pending,
            &OtpIssuer::new(
                b"k",
                OtpPolicy {
                    ttl_ms: 1,
                    max_attempts: 1,
                },
            )
            .issue(0)
            .unwrap()
            .1,
            &limits(),
        )
        .await
        .unwrap();
    let phone = |label: &str, push: bool| NewDevice {
        msisdn: with_phones.clone(),
        label: label.to_owned(),
        has_push_client: push,
    };
    let smart = store
        .register_device(tenant, &phone("smart", true))
        .await
        .unwrap();
    let old = store
        .register_device(tenant, &phone("old", false))
        .await
        .unwrap();
    let gone = store
        .register_device(tenant, &phone("gone", true))
        .await
        .unwrap();
    store.revoke_device(tenant, gone.id, 1).await.unwrap();
    let quiet = Preferences {
        content_level: ContentLevel::Notice,
        ..Preferences::default()
    };
    store.set_preferences(tenant, first, &quiet).await.unwrap();

    let targets = store.delivery_targets(tenant, account).await.unwrap();
    let seen: Vec<_> = targets
        .iter()
        .map(|t| {
            (
                t.binding_id,
                t.device.map(|d| (d.id, d.has_push_client)),
                t.preferences.content_level,
            )
        })
        .collect();
    let default_level = Preferences::default().content_level;
    assert_eq!(
        seen,
        vec![
            (first, Some((smart.id, true)), ContentLevel::Notice),
            (first, Some((old.id, false)), ContentLevel::Notice),
            (second, None, default_level),
        ],
        "live devices only, pending numbers left out"
    );
}
