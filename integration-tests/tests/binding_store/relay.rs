//! SMTP relay credentials and relay policies; the policy rides along with
//! the recipient lookup.

use pushmail_binding::domain::{RelayCredential, RelayCredentialId, RelayPolicy};

use super::*;

fn credential(tenant: TenantId, username: &str) -> RelayCredential {
    RelayCredential {
        tenant_id: tenant,
        id: RelayCredentialId::generate(),
        username: username.to_owned(),
        description: "mx1".to_owned(),
        created_at_ms: 1_000,
        revoked_at_ms: None,
    }
}

pub(crate) async fn behave(store: Arc<dyn BindingStore>) {
    let tenant = new_tenant(&store, &acme()).await;
    let other = new_tenant(&store, &acme()).await;
    let made = credential(tenant, "relay-store-1");
    store
        .create_relay_credential(&made, "$argon2id$stand-in")
        .await
        .unwrap();
    let dup = store
        .create_relay_credential(&credential(other, "relay-store-1"), "x")
        .await
        .unwrap_err();
    assert!(
        matches!(dup, StoreError::Conflict(_)),
        "usernames are unique: {dup:?}"
    );
    assert_eq!(
        store
            .create_relay_credential(&credential(TenantId::generate(), "relay-orphan"), "x")
            .await
            .unwrap_err(),
        StoreError::NotFound("tenant")
    );
    assert_eq!(
        store.relay_credentials(tenant).await.unwrap(),
        std::slice::from_ref(&made)
    );
    assert!(store.relay_credentials(other).await.unwrap().is_empty());
    assert_eq!(
        store.relay_login("relay-store-1").await.unwrap(),
        Some((made.clone(), "$argon2id$stand-in".to_owned()))
    );
    assert_eq!(store.relay_login("relay-nobody").await.unwrap(), None);

    // Revocation: tenant-scoped; the first one stands; no login after it.
    assert_eq!(
        store
            .revoke_relay_credential(other, made.id, 2_000)
            .await
            .unwrap_err(),
        StoreError::NotFound("relay credential")
    );
    let revoked = store
        .revoke_relay_credential(tenant, made.id, 2_000)
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at_ms, Some(2_000));
    let again = store
        .revoke_relay_credential(tenant, made.id, 3_000)
        .await
        .unwrap();
    assert_eq!(again.revoked_at_ms, Some(2_000));
    assert_eq!(store.relay_login("relay-store-1").await.unwrap(), None);

    // Policies: empty until set, replaced whole, carried by the recipient.
    assert_eq!(
        store.relay_policy(tenant).await.unwrap(),
        RelayPolicy::default()
    );
    let policy = RelayPolicy::parse(
        &["203.0.113.0/24".to_owned(), "2001:db8::/32".to_owned()],
        &["ab".repeat(32)],
    )
    .unwrap();
    store.set_relay_policy(tenant, &policy).await.unwrap();
    assert_eq!(store.relay_policy(tenant).await.unwrap(), policy);
    assert_eq!(
        store.relay_policy(other).await.unwrap(),
        RelayPolicy::default()
    );
    let account = AccountId::generate();
    store
        .create_account(
            tenant,
            account,
            &NewAccount {
                address: "in@relay-store.example".to_owned(),
                kind: AccountKind::EnterpriseForwarded,
                server: None,
                submission: None,
            },
            None,
        )
        .await
        .unwrap();
    let found = store
        .recipient("in@relay-store.example", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.account, found.policy), (account, policy));
    let narrower = RelayPolicy::parse(&["198.51.100.7".to_owned()], &[]).unwrap();
    store.set_relay_policy(tenant, &narrower).await.unwrap();
    assert_eq!(store.relay_policy(tenant).await.unwrap(), narrower);
    assert_eq!(
        store
            .set_relay_policy(TenantId::generate(), &narrower)
            .await
            .unwrap_err(),
        StoreError::NotFound("tenant")
    );
}
