//! What the store keeps besides the core rows: the SMS outbox, changes to
//! an account's mailbox settings, and ingest's mailbox checkpoints.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::{
    Account, AccountId, DeliveryCursor, MailboxCheckpoint, OutboxSms, ServerSettings,
    SubmissionChange, TenantId,
};

/// The SMS outbox (binding's `sms_outbox`).
#[async_trait]
pub trait SmsOutboxStore: Send + Sync {
    /// Keeps an SMS, once per id; one for a tenant this database does not
    /// know is dropped (the topic may carry other platforms' tenants).
    async fn record_sms(&self, sms: &OutboxSms) -> Result<(), StoreError>;

    /// The outbox newest first after `after`, at most `limit`: the
    /// tenant's, or every tenant's with `None`.
    async fn sms_outbox(
        &self,
        tenant: Option<TenantId>,
        after: Option<&DeliveryCursor>,
        limit: u32,
    ) -> Result<Vec<OutboxSms>, StoreError>;

    /// Drops SMS sent before `before_ms`, and all but about the newest
    /// `keep` (those sent at the same ms as the last kept one stay);
    /// returns how many went.
    async fn prune_sms(&self, before_ms: i64, keep: u32) -> Result<u64, StoreError>;
}

/// Changes to an account once made.
#[async_trait]
pub trait AccountUpdateStore: Send + Sync {
    /// Replaces one of the tenant's accounts' server settings, sealed
    /// credentials and/or watched folders (`None`: kept) and changes its
    /// submission settings as `submission` says, in one statement.
    async fn update_account(
        &self,
        tenant: TenantId,
        id: AccountId,
        server: Option<&ServerSettings>,
        submission: &SubmissionChange,
        sealed_credentials: Option<&[u8]>,
        watched_folders: Option<&[String]>,
    ) -> Result<Account, StoreError>;
}

/// Ingest's checkpoints per watched mailbox.
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    /// Keeps `checkpoint` unless a newer one (by `at_ms`) is kept already;
    /// `NotFound` when the tenant has no such account.
    async fn save_checkpoint(
        &self,
        tenant: TenantId,
        account: AccountId,
        mailbox: &str,
        checkpoint: &MailboxCheckpoint,
    ) -> Result<(), StoreError>;

    /// The checkpoint kept for the mailbox; `None` when ingest never saved
    /// one (or the tenant has no such account).
    async fn checkpoint(
        &self,
        tenant: TenantId,
        account: AccountId,
        mailbox: &str,
    ) -> Result<Option<MailboxCheckpoint>, StoreError>;
}
