//! Ingest's mailbox checkpoints: kept per account and mailbox, never
//! replaced by an older one, invisible to another tenant, gone with the
//! account.

use pushmail_binding::domain::MailboxCheckpoint;

use super::*;

fn at(uid_validity: u32, last_uid: u32, at_ms: i64) -> MailboxCheckpoint {
    MailboxCheckpoint {
        uid_validity,
        last_uid,
        at_ms,
    }
}

pub(crate) async fn behave(store: Arc<dyn BindingStore>) {
    let tenant = new_tenant(&store, &acme()).await;
    let other = new_tenant(&store, &acme()).await;
    let account = new_account(&store, tenant, "watched@acme.example").await;
    assert_eq!(
        store.checkpoint(tenant, account, "INBOX").await.unwrap(),
        None,
        "never saved"
    );
    store
        .save_checkpoint(tenant, account, "INBOX", &at(7, 10, 1_000))
        .await
        .unwrap();
    store
        .save_checkpoint(tenant, account, "INBOX", &at(7, 12, 2_000))
        .await
        .unwrap();
    assert_eq!(
        store.checkpoint(tenant, account, "INBOX").await.unwrap(),
        Some(at(7, 12, 2_000))
    );
    // A replica that lost its lease writes late: it does not win.
    store
        .save_checkpoint(tenant, account, "INBOX", &at(7, 11, 1_500))
        .await
        .unwrap();
    assert_eq!(
        store.checkpoint(tenant, account, "INBOX").await.unwrap(),
        Some(at(7, 12, 2_000))
    );
    // A renumbered mailbox: a newer checkpoint of another UIDVALIDITY
    // replaces it whole, even with a lower UID. UIDs up to u32::MAX fit.
    store
        .save_checkpoint(tenant, account, "INBOX", &at(u32::MAX, 3, 3_000))
        .await
        .unwrap();
    assert_eq!(
        store.checkpoint(tenant, account, "INBOX").await.unwrap(),
        Some(at(u32::MAX, 3, 3_000))
    );
    // Per mailbox.
    assert_eq!(
        store.checkpoint(tenant, account, "Sent").await.unwrap(),
        None
    );
    // Another tenant neither reads nor writes it.
    assert_eq!(
        store.checkpoint(other, account, "INBOX").await.unwrap(),
        None
    );
    assert!(matches!(
        store
            .save_checkpoint(other, account, "INBOX", &at(1, 1, 9_000))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.checkpoint(tenant, account, "INBOX").await.unwrap(),
        Some(at(u32::MAX, 3, 3_000))
    );
    // An account that does not exist.
    assert!(matches!(
        store
            .save_checkpoint(tenant, AccountId::generate(), "INBOX", &at(1, 1, 1))
            .await,
        Err(StoreError::NotFound(_))
    ));
    // Gone with the account (the row cascades; a save is refused).
    store.delete_account(tenant, account).await.unwrap();
    assert_eq!(
        store.checkpoint(tenant, account, "INBOX").await.unwrap(),
        None
    );
    assert!(matches!(
        store
            .save_checkpoint(tenant, account, "INBOX", &at(1, 1, 9_999))
            .await,
        Err(StoreError::NotFound(_))
    ));
}
