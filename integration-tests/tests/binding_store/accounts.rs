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
    // The account and its sealed credentials in one read, for its tenant only.
    assert_eq!(
        store.account_with_credentials(tenant, id).await.unwrap(),
        Some((created.clone(), Some(stored.clone())))
    );
    assert_eq!(
        store.account_with_credentials(other, id).await.unwrap(),
        None
    );
    assert!(
        store
            .list_accounts(other, "", None, 10)
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
    assert_eq!(
        store.account_with_credentials(tenant, b.id).await.unwrap(),
        Some((b.clone(), None))
    );
    store
        .create_account(tenant, AccountId::generate(), &imap("c@example.net"), None)
        .await
        .unwrap();
    let over = store
        .create_account(tenant, AccountId::generate(), &imap("d@example.net"), None)
        .await;
    assert_eq!(over.unwrap_err(), StoreError::QuotaExceeded("max_accounts"));

    // Paging in creation order.
    let first = store.list_accounts(tenant, "", None, 2).await.unwrap();
    let rest = store
        .list_accounts(tenant, "", Some(first[1].id), 2)
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
    // Search: a substring of the address; LIKE's wildcards are literal.
    let found = store.list_accounts(tenant, "b@ex", None, 10).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].address, "b@example.net");
    assert!(
        store
            .list_accounts(tenant, "%", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_accounts(tenant, "_@", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .list_accounts(tenant, "example.net", None, 10)
            .await
            .unwrap()
            .len(),
        3
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

    lookups(&store, tenant, other, id, b.id, &sealed).await;
}

/// Recipient lookup, ingest's watch list, and deletion.
async fn lookups(
    store: &Arc<dyn BindingStore>,
    tenant: TenantId,
    other: TenantId,
    imap_id: AccountId,
    webhook_id: AccountId,
    sealed: &[u8],
) {
    let found = store
        .recipient("b@example.net", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.tenant, found.account, found.kind),
        (tenant, webhook_id, AccountKind::Webhook)
    );
    // Two tenants watch a@example.net: the answer is one of them, never an error.
    let shared = store
        .recipient("a@example.net", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (shared.tenant, shared.account),
        (tenant, imap_id),
        "the oldest"
    );
    let scoped = store
        .recipient("a@example.net", Some(other))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(scoped.tenant, other, "a tenant's own, when it names itself");
    assert_eq!(
        store.recipient("nobody@example.net", None).await.unwrap(),
        None
    );
    assert_eq!(
        store.recipient("b@example.net", Some(other)).await.unwrap(),
        None
    );
    forwarded_routes(store).await;

    // Every tenant's IMAP/POP3 accounts, paged, with sealed credentials.
    let mut watched = Vec::new();
    let mut after = None;
    loop {
        let page = store.watched_accounts(after, 2).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.0.id);
        watched.extend(page);
    }
    let mine = watched
        .iter()
        .find(|(a, _)| a.id == imap_id)
        .expect("imap watched");
    assert_eq!(mine.1.as_deref(), Some(sealed));
    assert!(watched.iter().all(|(a, _)| a.kind.is_watched()));
    assert!(
        !watched.iter().any(|(a, _)| a.id == webhook_id),
        "webhooks are pushed to us"
    );

    // Deletion: tenant-scoped, takes the bindings with it, frees the quota.
    let number = Msisdn::parse("+8613600136000").unwrap();
    verified(store, tenant, imap_id, &number).await;
    assert_eq!(
        store.delete_account(other, imap_id).await.unwrap_err(),
        StoreError::NotFound("account")
    );
    assert_eq!(
        store.delete_account(tenant, imap_id).await.unwrap(),
        vec![number.clone()]
    );
    assert_eq!(store.account(tenant, imap_id).await.unwrap(), None);
    assert!(
        store
            .list_bindings(tenant, imap_id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .accounts_bound_to(tenant, &number)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .create_account(tenant, AccountId::generate(), &imap("d@example.net"), None)
        .await
        .expect("a deleted account frees its quota slot");
}

/// A forwarded address routes to one account on the platform: another
/// tenant's create is a conflict and changes nothing; other kinds at the
/// same address never take the route.
async fn forwarded_routes(store: &Arc<dyn BindingStore>) {
    let tenant = new_tenant(store, &acme()).await;
    let other = new_tenant(store, &acme()).await;
    let third = new_tenant(store, &acme()).await;
    let forwarded = |address: &str| NewAccount {
        address: address.to_owned(),
        kind: AccountKind::EnterpriseForwarded,
        server: None,
        submission: None,
    };
    let first = AccountId::generate();
    store
        .create_account(other, first, &forwarded("boss@routes.example"), None)
        .await
        .unwrap();
    let taken = store
        .create_account(
            tenant,
            AccountId::generate(),
            &forwarded("boss@routes.example"),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(taken, StoreError::Conflict(_)), "{taken:?}");
    assert!(
        store
            .list_accounts(tenant, "routes.example", None, 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing written"
    );
    // An IMAP account at the same address does not disturb the route.
    store
        .create_account(
            tenant,
            AccountId::generate(),
            &imap("boss@routes.example"),
            None,
        )
        .await
        .unwrap();
    let routed = store
        .recipient("boss@routes.example", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (routed.tenant, routed.account, routed.kind),
        (other, first, AccountKind::EnterpriseForwarded)
    );
    // Deleting the account frees the route.
    store.delete_account(other, first).await.unwrap();
    store
        .create_account(
            third,
            AccountId::generate(),
            &forwarded("boss@routes.example"),
            None,
        )
        .await
        .expect("the route is free again");
}
