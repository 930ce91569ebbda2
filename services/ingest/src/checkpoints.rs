//! Where each watched mailbox stands, kept by binding in its database.
//!
//! The marks (Redis, or SQLite standalone) are the working copy, written
//! per message. A checkpoint is written once per catch-up that moved and
//! read only when the marks are missing, so losing the mark store neither
//! announces a mailbox again from the start nor skips what arrived while
//! it was gone: an IMAP watcher resumes from its checkpoint, and a POP3
//! account with a checkpoint knows it was polled before (its devices are
//! told to sync instead of being told nothing).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use pushmail_common::grpc::TracedChannel;
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::binding::v1::binding_service_client::BindingServiceClient;

/// How far a mailbox was announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// The mailbox's UIDVALIDITY (0 for POP3).
    pub uid_validity: u32,
    /// Every UID up to this one was announced (0 for POP3).
    pub last_uid: u32,
    /// When it was taken, ms since the epoch.
    pub at_ms: i64,
}

/// Binding could not keep or tell a checkpoint.
#[derive(Debug, thiserror::Error)]
#[error("mailbox checkpoint (binding)")]
pub struct CheckpointError(#[source] pub tonic::Status);

/// The checkpoints of watched mailboxes.
#[async_trait]
pub trait Checkpoints: Send + Sync + 'static {
    /// The mailbox's checkpoint; `None` when none was ever saved.
    async fn get(
        &self,
        tenant: &str,
        account: &str,
        mailbox: &str,
    ) -> Result<Option<Checkpoint>, CheckpointError>;
    /// Keeps `checkpoint` (an older one than kept is ignored).
    async fn save(
        &self,
        tenant: &str,
        account: &str,
        mailbox: &str,
        checkpoint: Checkpoint,
    ) -> Result<(), CheckpointError>;
}

/// Saves a checkpoint; a failure is logged, not returned: the marks are
/// still the working copy and the next catch-up saves again, and binding
/// being down (or older than ingest, mid-upgrade) must not stop mail.
pub(crate) async fn save_or_warn(
    checkpoints: &dyn Checkpoints,
    tenant: &str,
    account: &str,
    mailbox: &str,
    checkpoint: Checkpoint,
) {
    if let Err(err) = checkpoints.save(tenant, account, mailbox, checkpoint).await {
        tracing::warn!(%account, %mailbox, status = %err.0, "mailbox checkpoint not saved");
    }
}

/// Checkpoints in binding's database (`SaveMailboxCheckpoint`,
/// `GetMailboxCheckpoint`).
#[derive(Debug, Clone)]
pub(crate) struct BindingCheckpoints {
    binding: TracedChannel,
}

impl BindingCheckpoints {
    /// Over ingest's channel to binding (which carries its credential).
    pub(crate) fn new(binding: TracedChannel) -> Self {
        Self { binding }
    }
}

#[async_trait]
impl Checkpoints for BindingCheckpoints {
    async fn get(
        &self,
        tenant: &str,
        account: &str,
        mailbox: &str,
    ) -> Result<Option<Checkpoint>, CheckpointError> {
        let answer = BindingServiceClient::new(self.binding.clone())
            .get_mailbox_checkpoint(pb::GetMailboxCheckpointRequest {
                tenant_id: tenant.to_owned(),
                account_id: account.to_owned(),
                mailbox: mailbox.to_owned(),
            })
            .await
            .map_err(CheckpointError)?
            .into_inner();
        Ok(answer.checkpoint.map(|c| Checkpoint {
            uid_validity: c.uid_validity,
            last_uid: c.last_uid,
            at_ms: c.at_ms,
        }))
    }

    async fn save(
        &self,
        tenant: &str,
        account: &str,
        mailbox: &str,
        checkpoint: Checkpoint,
    ) -> Result<(), CheckpointError> {
        BindingServiceClient::new(self.binding.clone())
            .save_mailbox_checkpoint(pb::SaveMailboxCheckpointRequest {
                tenant_id: tenant.to_owned(),
                account_id: account.to_owned(),
                mailbox: mailbox.to_owned(),
                checkpoint: Some(pb::MailboxCheckpoint {
                    uid_validity: checkpoint.uid_validity,
                    last_uid: checkpoint.last_uid,
                    at_ms: checkpoint.at_ms,
                }),
            })
            .await
            .map_err(CheckpointError)?;
        Ok(())
    }
}

/// In-process checkpoints, for tests of the watch loop that run without
/// binding (as [`crate::marks::MemoryMarks`] stands for the mark store).
#[derive(Debug, Default)]
pub struct MemoryCheckpoints {
    kept: Mutex<HashMap<(String, String), Checkpoint>>,
}

#[async_trait]
impl Checkpoints for MemoryCheckpoints {
    async fn get(
        &self,
        _tenant: &str,
        account: &str,
        mailbox: &str,
    ) -> Result<Option<Checkpoint>, CheckpointError> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        Ok(kept.get(&(account.to_owned(), mailbox.to_owned())).copied())
    }

    async fn save(
        &self,
        _tenant: &str,
        account: &str,
        mailbox: &str,
        checkpoint: Checkpoint,
    ) -> Result<(), CheckpointError> {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let slot = kept
            .entry((account.to_owned(), mailbox.to_owned()))
            .or_insert(checkpoint);
        if checkpoint.at_ms >= slot.at_ms {
            *slot = checkpoint;
        }
        Ok(())
    }
}
