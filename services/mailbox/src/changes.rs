//! What one phone did to the mailbox, told to the account's other phones:
//! once a flag change, move, delete or send is done where the mail lives,
//! `pushmail.mailbox.changed.v1` names the folders that changed and the
//! phone that changed them, and dispatch sends the other phones a sync
//! notification. Published in the background: the phone's answer never
//! waits for the broker, and a change that cannot be told is logged and
//! counted, never answered as a failure (it was made).

use std::sync::Arc;

use pushmail_common::bus::{self, EventBus, EventContext};
use pushmail_common::report::Report;
use pushmail_proto::common::v1::MailboxChange;
use pushmail_proto::events::v1 as events;
use pushmail_proto::topics::MAILBOX_CHANGED;

use crate::domain::FolderId;

/// Changes that could not be published, by kind.
pub const METRIC_UNTOLD: &str = "pushmail_mailbox_changes_untold_total";

/// What a phone did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Flags set or cleared.
    Flags,
    /// Messages moved.
    Moved,
    /// Messages deleted (to the trash, or for good).
    Deleted,
    /// A message sent (its Sent copy, the original marked).
    Sent,
}

impl Change {
    fn wire(self) -> MailboxChange {
        match self {
            Self::Flags => MailboxChange::Flags,
            Self::Moved => MailboxChange::Moved,
            Self::Deleted => MailboxChange::Deleted,
            Self::Sent => MailboxChange::Sent,
        }
    }
}

/// Who changed what, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// Tenant.
    pub tenant: String,
    /// Account.
    pub account: String,
    /// The device that asked ("" when the caller did not say).
    pub origin: String,
    /// What it did.
    pub change: Change,
    /// The folders it touched.
    pub folders: Vec<FolderId>,
}

/// Publishes changes.
#[derive(Clone)]
pub struct Changes {
    bus: Arc<dyn EventBus>,
}

impl std::fmt::Debug for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes").finish_non_exhaustive()
    }
}

impl Changes {
    /// On `bus`.
    pub fn new(bus: Arc<dyn EventBus>) -> Self {
        Self { bus }
    }

    /// Tells `changed` in the background.
    pub fn tell(&self, changed: Changed) {
        let bus = self.bus.clone();
        tokio::spawn(async move {
            if let Err(error) = publish(bus.as_ref(), &changed).await {
                metrics::counter!(METRIC_UNTOLD).increment(1);
                tracing::warn!(
                    error = %Report(&error),
                    account = %changed.account,
                    "the account's other phones could not be told of a change"
                );
            }
        });
    }
}

/// The event for `changed`, published; nothing when no folder changed.
pub async fn publish(bus: &dyn EventBus, changed: &Changed) -> Result<(), bus::BusError> {
    let mut folders: Vec<String> = changed.folders.iter().map(|f| f.raw().to_owned()).collect();
    folders.sort();
    folders.dedup();
    if folders.is_empty() {
        return Ok(());
    }
    let context = EventContext::new(&changed.tenant);
    let event = events::MailboxChanged {
        meta: Some(context.meta(pushmail_common::clock::now_ms())),
        account_id: changed.account.clone(),
        change: changed.change.wire().into(),
        folders,
        origin_device_id: changed.origin.clone(),
    };
    let record = bus::encode(MAILBOX_CHANGED, &changed.account, &context, &event);
    bus.publish(MAILBOX_CHANGED.name(), record).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a panic is the test failure report

    use pushmail_common::bus::{MemoryBus, MemoryBusConfig, SubscribeOptions};
    use pushmail_proto::common::v1::MailboxChange;

    use super::*;

    #[tokio::test]
    async fn a_change_names_each_folder_once_and_its_phone() {
        let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::new(&MemoryBusConfig::default()));
        bus.ensure_topic(MAILBOX_CHANGED.name(), 1).await.unwrap();
        let changed = |folders: &[&str]| Changed {
            tenant: "t1".into(),
            account: "a1".into(),
            origin: "d1".into(),
            change: Change::Deleted,
            folders: folders.iter().map(|f| FolderId::new(*f)).collect(),
        };
        // Nothing touched, nothing told.
        publish(bus.as_ref(), &changed(&[])).await.unwrap();
        publish(bus.as_ref(), &changed(&["INBOX", "Trash", "INBOX"]))
            .await
            .unwrap();
        let mut subscription = bus
            .subscribe(SubscribeOptions {
                group: "g".into(),
                topics: vec![MAILBOX_CHANGED.name().into()],
            })
            .await
            .unwrap();
        let record = subscription.next().await.unwrap();
        assert_eq!(record.key, b"a1");
        assert_eq!(record.headers[bus::header::TENANT_ID], "t1");
        let event = bus::decode(MAILBOX_CHANGED, &record).unwrap();
        assert_eq!(event.change(), MailboxChange::Deleted);
        assert_eq!(event.folders, ["INBOX", "Trash"]);
        assert_eq!(
            (event.account_id.as_str(), event.origin_device_id.as_str()),
            ("a1", "d1")
        );
        assert!(!event.meta.unwrap().event_id.is_empty());
    }
}
