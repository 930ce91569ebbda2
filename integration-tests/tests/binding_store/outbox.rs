//! The SMS outbox (kept once per SMS, a tenant's own or every tenant's,
//! newest first, pruned by age and count) and changes to an account's
//! mailbox settings, submission settings and sealed credentials.

use pushmail_binding::domain::{DeliveryCursor, OutboxSms, SubmissionChange};

use super::*;

fn sms(tenant: TenantId, id: &str, at_ms: i64) -> OutboxSms {
    OutboxSms {
        id: id.to_owned(),
        tenant,
        msisdn: "+8613800138000".to_owned(),
        purpose: "otp".to_owned(),
        kind: "text".to_owned(),
        text: format!("code for {id}"),
        url: String::new(),
        account_id: String::new(),
        device_id: String::new(),
        at_ms,
    }
}

fn ids(list: &[OutboxSms]) -> Vec<&str> {
    list.iter().map(|m| m.id.as_str()).collect()
}

async fn outbox_behaves(store: &Arc<dyn BindingStore>) {
    let tenant = new_tenant(store, &acme()).await;
    let other = new_tenant(store, &acme()).await;
    for (t, id, at) in [
        (tenant, "a1", 1_000),
        (tenant, "a2", 2_000),
        (other, "b1", 1_500),
        (tenant, "a3", 3_000),
    ] {
        store.record_sms(&sms(t, id, at)).await.unwrap();
    }
    // Once per id; an SMS of a tenant this database does not know is dropped.
    store.record_sms(&sms(tenant, "a1", 9_000)).await.unwrap();
    store
        .record_sms(&sms(TenantId::generate(), "stranger", 4_000))
        .await
        .unwrap();

    let mine = store.sms_outbox(Some(tenant), None, 10).await.unwrap();
    assert_eq!(ids(&mine), ["a3", "a2", "a1"]);
    assert_eq!(mine[2], sms(tenant, "a1", 1_000), "kept as first written");
    assert_eq!(
        ids(&store.sms_outbox(Some(other), None, 10).await.unwrap()),
        ["b1"]
    );
    assert_eq!(
        ids(&store.sms_outbox(None, None, 10).await.unwrap()),
        ["a3", "a2", "b1", "a1"]
    );
    // Pages continue after the cursor of the last one.
    let first = store.sms_outbox(Some(tenant), None, 2).await.unwrap();
    let cursor = DeliveryCursor {
        at_ms: first[1].at_ms,
        event_id: first[1].id.clone(),
    };
    assert_eq!(
        ids(&store
            .sms_outbox(Some(tenant), Some(&cursor), 2)
            .await
            .unwrap()),
        ["a1"]
    );

    // Pruned by age, then down to the newest `keep`.
    assert_eq!(store.prune_sms(1_200, 100).await.unwrap(), 1);
    assert_eq!(store.prune_sms(0, 2).await.unwrap(), 1);
    assert_eq!(
        ids(&store.sms_outbox(None, None, 10).await.unwrap()),
        ["a3", "a2"]
    );
    assert_eq!(store.prune_sms(0, 2).await.unwrap(), 0, "nothing past it");
}

async fn updates_behave(store: &Arc<dyn BindingStore>) {
    let tenant = new_tenant(store, &acme()).await;
    let other = new_tenant(store, &acme()).await;
    let id = new_account(store, tenant, "update@example.net").await;
    let moved = ServerSettings {
        host: "mail.example.org".to_owned(),
        port: 143,
        tls: TlsMode::StartTls,
        username: "u2".to_owned(),
    };
    let keep = SubmissionChange::Keep;
    let updated = store
        .update_account(tenant, id, Some(&moved), &keep, None, None)
        .await
        .unwrap();
    assert_eq!(updated.server.as_ref(), Some(&moved));
    assert!(!updated.has_credentials, "credentials left alone");
    let updated = store
        .update_account(tenant, id, None, &keep, Some(b"sealed"), None)
        .await
        .unwrap();
    assert_eq!(updated.server.as_ref(), Some(&moved), "settings kept");
    assert!(updated.has_credentials);
    assert!(updated.watched_folders.is_empty(), "INBOX only at first");
    let folders = vec!["Work".to_owned(), "&UXZO1mWHTvZZOQ-".to_owned()];
    let updated = store
        .update_account(tenant, id, None, &keep, None, Some(&folders))
        .await
        .unwrap();
    assert_eq!(updated.watched_folders, folders);
    let updated = store
        .update_account(tenant, id, Some(&moved), &keep, None, None)
        .await
        .unwrap();
    assert_eq!(updated.watched_folders, folders, "kept by other changes");
    assert_eq!(
        store
            .account(tenant, id)
            .await
            .unwrap()
            .unwrap()
            .watched_folders,
        folders
    );
    let updated = store
        .update_account(tenant, id, None, &keep, None, Some(&[]))
        .await
        .unwrap();
    assert!(updated.watched_folders.is_empty(), "cleared");
    assert_eq!(
        store.sealed_credentials(tenant, id).await.unwrap(),
        Some(b"sealed".to_vec())
    );
    // Another tenant's account is not there for it; nothing changes.
    assert_eq!(
        store
            .update_account(other, id, None, &keep, Some(b"stolen"), None)
            .await
            .unwrap_err(),
        StoreError::NotFound("account")
    );
    assert_eq!(
        store.sealed_credentials(tenant, id).await.unwrap(),
        Some(b"sealed".to_vec())
    );
}

/// Submission settings: stored at creation and read back by every read of
/// an account, replaced whole, kept by other changes, removed.
async fn submission_behaves(store: &Arc<dyn BindingStore>) {
    let tenant = new_tenant(store, &acme()).await;
    let other = new_tenant(store, &acme()).await;
    let first = ServerSettings {
        host: "smtp.example.net".to_owned(),
        port: 587,
        tls: TlsMode::StartTls,
        // Stored as given: the same login as the mailbox server's.
        username: String::new(),
    };
    let id = AccountId::generate();
    let created = store
        .create_account(
            tenant,
            id,
            &NewAccount {
                submission: Some(first.clone()),
                ..imap("sender@example.net")
            },
            Some(b"sealed"),
        )
        .await
        .unwrap();
    assert_eq!(created.submission.as_ref(), Some(&first));
    assert_eq!(
        store.account(tenant, id).await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(
        store
            .list_accounts(tenant, "sender", None, 10)
            .await
            .unwrap(),
        std::slice::from_ref(&created)
    );
    assert_eq!(
        store.account_with_credentials(tenant, id).await.unwrap(),
        Some((created.clone(), Some(b"sealed".to_vec())))
    );
    // Ingest's list, paged through to this account.
    let watched = |store: Arc<dyn BindingStore>| async move {
        let mut after = None;
        loop {
            let page = store.watched_accounts(after, 100).await.unwrap();
            if let Some((account, _)) = page.iter().find(|(a, _)| a.id == id) {
                return account.submission.clone();
            }
            after = Some(page.last().expect("the account is watched").0.id);
        }
    };
    assert_eq!(watched(store.clone()).await, Some(first.clone()));

    // Replaced whole; the mailbox server and credentials stay.
    let second = ServerSettings {
        host: "smtp2.example.net".to_owned(),
        port: 465,
        tls: TlsMode::Implicit,
        username: "sender".to_owned(),
    };
    let updated = store
        .update_account(
            tenant,
            id,
            None,
            &SubmissionChange::Set(second.clone()),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (updated.submission.as_ref(), updated.server.as_ref()),
        (Some(&second), created.server.as_ref())
    );
    assert!(updated.has_credentials);
    // A change of the rest keeps them.
    let moved = ServerSettings {
        host: "imap2.example.net".to_owned(),
        ..second.clone()
    };
    let updated = store
        .update_account(
            tenant,
            id,
            Some(&moved),
            &SubmissionChange::Keep,
            Some(b"new"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (updated.submission.as_ref(), updated.server.as_ref()),
        (Some(&second), Some(&moved))
    );
    // Not another tenant's to remove.
    assert_eq!(
        store
            .update_account(other, id, None, &SubmissionChange::Clear, None, None)
            .await
            .unwrap_err(),
        StoreError::NotFound("account")
    );
    assert_eq!(
        store.account(tenant, id).await.unwrap().unwrap().submission,
        Some(second.clone())
    );
    // Removed: none left, the rest as it was.
    let cleared = store
        .update_account(tenant, id, None, &SubmissionChange::Clear, None, None)
        .await
        .unwrap();
    assert_eq!(cleared.submission, None);
    assert_eq!(cleared.server.as_ref(), Some(&moved));
    assert_eq!(store.account(tenant, id).await.unwrap(), Some(cleared));
    assert_eq!(watched(store.clone()).await, None);
    assert_eq!(
        store.sealed_credentials(tenant, id).await.unwrap(),
        Some(b"new".to_vec())
    );
    // And set again on an account that has none.
    let again = store
        .update_account(
            tenant,
            id,
            None,
            &SubmissionChange::Set(first.clone()),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(again.submission, Some(first));
}

pub(crate) async fn behave(store: Arc<dyn BindingStore>) {
    outbox_behaves(&store).await;
    updates_behave(&store).await;
    submission_behaves(&store).await;
}
