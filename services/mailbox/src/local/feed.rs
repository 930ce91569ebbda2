//! What fills and empties the platform's own store: every
//! `pushmail.mail.arrived.v1` of a forwarded, webhook or POP3 account is
//! filed in its INBOX (its bytes are already in the blob store, granted to
//! the account); an account deleted in binding is forgotten with its sync
//! tokens. At least once: a redelivered arrival carries the key it was
//! filed under and files nothing.

use std::sync::Arc;

use async_trait::async_trait;
use pushmail_common::blob::{BlobRef, BlobStore};
use pushmail_common::bus::{Handler, HandlerError, InboundRecord, decode};
use pushmail_common::report::Report;
use pushmail_proto::events::v1 as events;
use pushmail_proto::topics::{BINDING_CHANGED, MAIL_ARRIVED};

use super::{Arrival, Index, Owner};
use crate::domain::Flags;
use crate::sync::States;

/// The folder arrived mail is filed in.
const ARRIVALS: &str = "INBOX";

/// Arrived mail filed, by outcome.
pub const METRIC_FILED: &str = "pushmail_mailbox_local_filed_total";

/// The topics [`Feed`] reads.
pub fn topics() -> Vec<String> {
    vec![
        MAIL_ARRIVED.name().to_owned(),
        BINDING_CHANGED.name().to_owned(),
    ]
}

/// Handles both topics.
pub struct Feed {
    /// The index filed into.
    pub index: Arc<dyn Index>,
    /// Where ingest put the bytes.
    pub blobs: Arc<dyn BlobStore>,
    /// Sync tokens, forgotten with their account.
    pub states: Arc<dyn States>,
}

fn failed(error: impl std::error::Error + Send + Sync + 'static) -> HandlerError {
    HandlerError::new(error)
}

fn filed(outcome: &'static str) {
    metrics::counter!(METRIC_FILED, "outcome" => outcome).increment(1);
}

impl Feed {
    async fn arrived(&self, record: &InboundRecord) -> Result<(), HandlerError> {
        let mail = match decode(MAIL_ARRIVED, record) {
            Ok(mail) => mail,
            // Dispatch owns this topic's dead letters; here it is skipped.
            Err(error) => {
                tracing::warn!(error = %Report(&error), "unreadable arrival skipped");
                filed("unreadable");
                return Ok(());
            }
        };
        // An IMAP account's mail lives on its server, and a mailbox-sync
        // event names no mail.
        if mail.mailbox_sync
            || mail.blob_ref.is_empty()
            || matches!(
                mail.source(),
                events::IngestSource::Imap | events::IngestSource::Unspecified
            )
        {
            return Ok(());
        }
        let tenant = mail
            .meta
            .as_ref()
            .map(|m| m.tenant_id.clone())
            .unwrap_or_default();
        if tenant.is_empty() || mail.account_id.is_empty() {
            tracing::warn!(key = %mail.idempotency_key, "arrival without tenant or account skipped");
            filed("unreadable");
            return Ok(());
        }
        let Ok(blob) = BlobRef::parse(&mail.blob_ref) else {
            tracing::warn!(blob = %mail.blob_ref, "arrival with a malformed blob reference skipped");
            filed("unreadable");
            return Ok(());
        };
        let Some(raw) = self.blobs.get(&blob).await.map_err(failed)? else {
            // Swept before it was filed (a backlog past retention): there
            // is nothing to show.
            tracing::warn!(blob = %mail.blob_ref, account = %mail.account_id, "arrival whose message is gone skipped");
            filed("gone");
            return Ok(());
        };
        let key = if mail.idempotency_key.is_empty() {
            record_key(record)
        } else {
            mail.idempotency_key.clone()
        };
        let arrival = Arrival::of_message(
            key,
            blob.as_str().to_owned(),
            &raw,
            mail.received_at.as_ref().map_or_else(
                pushmail_common::clock::now_ms,
                pushmail_common::clock::from_timestamp,
            ),
            Flags::default(),
        );
        let owner = Owner {
            tenant,
            account: mail.account_id.clone(),
        };
        let result = self
            .index
            .file(&owner, ARRIVALS, &arrival)
            .await
            .map_err(failed)?;
        filed(if result.is_some() { "filed" } else { "again" });
        Ok(())
    }

    async fn changed(&self, record: &InboundRecord) -> Result<(), HandlerError> {
        let change = match decode(BINDING_CHANGED, record) {
            Ok(change) => change,
            Err(error) => {
                tracing::warn!(error = %Report(&error), "unreadable binding change skipped");
                return Ok(());
            }
        };
        if change.kind() != events::BindingChangeKind::AccountDeleted {
            return Ok(());
        }
        let tenant = change
            .meta
            .as_ref()
            .map(|m| m.tenant_id.clone())
            .unwrap_or_default();
        if tenant.is_empty() || change.account_id.is_empty() {
            return Ok(());
        }
        let owner = Owner {
            tenant,
            account: change.account_id,
        };
        self.index.forget(&owner).await.map_err(failed)?;
        self.states
            .forget_account(&owner.tenant, &owner.account)
            .await
            .map_err(failed)?;
        tracing::info!(account = %owner.account, "deleted account's mailbox forgotten");
        Ok(())
    }
}

/// A record's coordinates, for an arrival that carries no key.
fn record_key(record: &InboundRecord) -> String {
    format!(
        "record:{}:{}:{}",
        record.topic, record.partition, record.offset
    )
}

#[async_trait]
impl Handler for Feed {
    async fn handle(&self, record: &InboundRecord) -> Result<(), HandlerError> {
        if record.topic == MAIL_ARRIVED.name() {
            self.arrived(record).await
        } else if record.topic == BINDING_CHANGED.name() {
            self.changed(record).await
        } else {
            Ok(())
        }
    }
}
