//! App passwords: stored with their device in one step while the binding
//! is verified; found for a login only while the password, its device and
//! its binding all hold; the first phone to log in stays pinned; a remote
//! wipe waits for the phone and its acknowledgement revokes the password.

use pushmail_binding::domain::{
    AppPassword, AppPasswordId, ClientDevice, DeviceInformation, Wipe, WipeKind,
};

use super::*;

fn password(tenant: TenantId, account: AccountId, number: &Msisdn, label: &str) -> AppPassword {
    AppPassword {
        tenant_id: tenant,
        id: AppPasswordId::generate(),
        account_id: account,
        device_id: DeviceId::generate(),
        msisdn: number.clone(),
        label: label.to_owned(),
        created_at_ms: 1_000,
        client: None,
        last_used_at_ms: None,
        policy_key: None,
        policy_digest: String::new(),
        device_information: DeviceInformation::default(),
        revoked_at_ms: None,
        wipe: None,
    }
}

fn phone(id: &str) -> ClientDevice {
    ClientDevice {
        id: id.to_owned(),
        kind: "iPhone".to_owned(),
    }
}

pub(crate) async fn behave(store: Arc<dyn BindingStore>) {
    let tenant = new_tenant(&store, &acme()).await;
    let other = new_tenant(&store, &acme()).await;
    let number = Msisdn::parse("+8613900139077").unwrap();
    let address = "app-passwords@example.net";
    let account = new_account(&store, tenant, address).await;
    let made = password(tenant, account, &number, "iPhone");
    assert_eq!(
        store
            .create_app_password(&made, "abcd", "$argon2id$stand-in")
            .await
            .unwrap_err(),
        StoreError::NotFound("verified binding"),
        "no binding yet"
    );
    assert!(
        store
            .device(tenant, made.device_id)
            .await
            .unwrap()
            .is_none(),
        "nothing half-made"
    );
    verified(&store, tenant, account, &number).await;
    store
        .create_app_password(&made, "abcd", "$argon2id$stand-in")
        .await
        .unwrap();
    let device = store.device(tenant, made.device_id).await.unwrap().unwrap();
    assert_eq!(
        (device.label.as_str(), device.has_push_client),
        ("iPhone", true)
    );
    let clash = password(tenant, account, &number, "iPad");
    assert!(
        matches!(
            store
                .create_app_password(&clash, "abcd", "x")
                .await
                .unwrap_err(),
            StoreError::Conflict(_)
        ),
        "one lookup key per account"
    );
    // The same address in another tenant may have the same key.
    let twin_account = new_account(&store, other, address).await;
    let twin_number = Msisdn::parse("+8613900139078").unwrap();
    let twin_binding = verified(&store, other, twin_account, &twin_number).await;
    let twin = password(other, twin_account, &twin_number, "twin");
    store
        .create_app_password(&twin, "abcd", "$twin")
        .await
        .unwrap();

    assert_eq!(
        store.app_passwords(tenant, account).await.unwrap(),
        std::slice::from_ref(&made)
    );
    assert!(
        store
            .app_passwords(other, account)
            .await
            .unwrap()
            .is_empty()
    );
    let logins = store.app_password_logins(address, "abcd").await.unwrap();
    assert_eq!(logins.len(), 2, "both tenants' candidates");
    assert!(logins.contains(&(made.clone(), "$argon2id$stand-in".to_owned())));
    assert!(
        store
            .app_password_logins(address, "zzzz")
            .await
            .unwrap()
            .is_empty()
    );

    // The first phone is pinned; a later one does not move it.
    assert_eq!(
        store
            .app_password_used(made.id, &phone("first"), 5_000)
            .await
            .unwrap(),
        phone("first")
    );
    assert_eq!(
        store
            .app_password_used(made.id, &phone("second"), 6_000)
            .await
            .unwrap(),
        phone("first")
    );
    // Provision: an offered key is acknowledged once; another is refused.
    store.offer_policy_key(tenant, made.id, 7).await.unwrap();
    assert_eq!(
        store.offer_policy_key(other, made.id, 7).await.unwrap_err(),
        StoreError::NotFound("app password")
    );
    assert!(
        !store
            .acknowledge_policy_key(tenant, made.id, 8, 9, "d1")
            .await
            .unwrap()
    );
    assert!(
        !store
            .acknowledge_policy_key(other, made.id, 7, 9, "d1")
            .await
            .unwrap()
    );
    assert!(
        store
            .acknowledge_policy_key(tenant, made.id, 7, 9, "d1")
            .await
            .unwrap()
    );
    assert!(
        !store
            .acknowledge_policy_key(tenant, made.id, 7, 10, "d1")
            .await
            .unwrap(),
        "an offer is spent once acknowledged"
    );
    // What the phone says it is, replaced whole; empty fields stay empty.
    let said = DeviceInformation {
        model: "iPhone15,2".to_owned(),
        os: "iOS 17.1".to_owned(),
        ..DeviceInformation::default()
    };
    store
        .set_device_information(tenant, made.id, &said)
        .await
        .unwrap();
    assert_eq!(
        store
            .set_device_information(other, made.id, &said)
            .await
            .unwrap_err(),
        StoreError::NotFound("app password")
    );
    let used = store.app_password(tenant, made.id).await.unwrap().unwrap();
    assert_eq!(used.device_information, said);
    assert_eq!(used.policy_key, Some(9));
    assert_eq!(used.policy_digest, "d1", "the policy applied with it");
    assert_eq!(
        (used.client, used.last_used_at_ms),
        (Some(phone("first")), Some(6_000))
    );

    // A revoked binding hides it from logins; a revoked password too, and
    // the first revocation stands (tenant-scoped).
    store.revoke_binding(other, twin_binding).await.unwrap();
    assert_eq!(
        store
            .app_password_logins(address, "abcd")
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .revoke_app_password(other, made.id, 8_000)
            .await
            .unwrap_err(),
        StoreError::NotFound("app password")
    );
    let revoked = store
        .revoke_app_password(tenant, made.id, 8_000)
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at_ms, Some(8_000));
    let again = store
        .revoke_app_password(tenant, made.id, 9_000)
        .await
        .unwrap();
    assert_eq!(again.revoked_at_ms, Some(8_000));
    assert!(
        store
            .app_password_logins(address, "abcd")
            .await
            .unwrap()
            .is_empty()
    );

    // So does a revoked device.
    let tablet = password(tenant, account, &number, "iPad");
    store
        .create_app_password(&tablet, "efgh", "$tablet")
        .await
        .unwrap();
    assert_eq!(
        store
            .app_password_logins(address, "efgh")
            .await
            .unwrap()
            .len(),
        1
    );
    store
        .revoke_device(tenant, tablet.device_id, 10_000)
        .await
        .unwrap();
    assert!(
        store
            .app_password_logins(address, "efgh")
            .await
            .unwrap()
            .is_empty()
    );
    // Deleting the account takes its passwords with it.
    store.delete_account(tenant, account).await.unwrap();
    assert!(
        store
            .app_password(tenant, tablet.id)
            .await
            .unwrap()
            .is_none()
    );
}

/// A wipe is ordered while the password works, may change its kind until
/// the phone acknowledges it, and the acknowledgement revokes the password
/// (and so hides it from logins) in the same step.
pub(crate) async fn wipes(store: Arc<dyn BindingStore>) {
    let tenant = new_tenant(&store, &acme()).await;
    let other = new_tenant(&store, &acme()).await;
    let number = Msisdn::parse("+8613900139079").unwrap();
    let address = "wiped@example.net";
    let account = new_account(&store, tenant, address).await;
    verified(&store, tenant, account, &number).await;
    let made = password(tenant, account, &number, "lost phone");
    store
        .create_app_password(&made, "wipe", "$lost")
        .await
        .unwrap();
    assert_eq!(
        store
            .wipe_done(tenant, made.id, WipeKind::Device, 1_500)
            .await
            .unwrap_err(),
        StoreError::NotFound("wipe"),
        "nothing to acknowledge before an order"
    );
    assert_eq!(
        store
            .order_wipe(other, made.id, WipeKind::Device, 2_000)
            .await
            .unwrap_err(),
        StoreError::NotFound("app password"),
        "another tenant's"
    );
    let ordered = store
        .order_wipe(tenant, made.id, WipeKind::Account, 2_000)
        .await
        .unwrap();
    let pending = |kind| Wipe {
        kind,
        ordered_at_ms: 2_000,
        done_at_ms: None,
    };
    assert_eq!(ordered.wipe, Some(pending(WipeKind::Account)));
    let escalated = store
        .order_wipe(tenant, made.id, WipeKind::Device, 3_000)
        .await
        .unwrap();
    assert_eq!(
        escalated.wipe,
        Some(pending(WipeKind::Device)),
        "the kind changes, the first order's time stands"
    );
    let logins = store.app_password_logins(address, "wipe").await.unwrap();
    assert_eq!(
        logins.iter().map(|(p, _)| p.wipe).collect::<Vec<_>>(),
        [Some(pending(WipeKind::Device))],
        "a login carries the pending wipe"
    );

    // The phone did an account-only wipe (it was handed one before the
    // order changed): what it did is recorded.
    let done = store
        .wipe_done(tenant, made.id, WipeKind::Account, 4_000)
        .await
        .unwrap();
    assert_eq!(
        (done.wipe, done.revoked_at_ms),
        (
            Some(Wipe {
                kind: WipeKind::Account,
                ordered_at_ms: 2_000,
                done_at_ms: Some(4_000),
            }),
            Some(4_000)
        )
    );
    let again = store
        .wipe_done(tenant, made.id, WipeKind::Device, 5_000)
        .await
        .unwrap();
    assert_eq!(again, done, "the first acknowledgement stands");
    assert!(
        store
            .app_password_logins(address, "wipe")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        matches!(
            store
                .order_wipe(tenant, made.id, WipeKind::Account, 6_000)
                .await
                .unwrap_err(),
            StoreError::Conflict(_)
        ),
        "a wiped phone is not reached again"
    );
    let unknown = AppPasswordId::generate();
    assert_eq!(
        store
            .order_wipe(tenant, unknown, WipeKind::Device, 6_000)
            .await
            .unwrap_err(),
        StoreError::NotFound("app password")
    );
}
