//! Accounts: sealed credentials, tenant scoping, uniqueness, quota, paging.

use super::*;

pub(crate) async fn behave(store: Arc<dyn BindingStore>) {
    let small = NewTenant {
        max_accounts: 3,
        ..acme()
    };
    let tenant = new_tenant(&store, &small).await;
    let other = new_tenant(&store, &acme()).await;
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
