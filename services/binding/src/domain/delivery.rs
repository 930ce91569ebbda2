//! One line of the delivery log: what happened to a mail's notification
//! on one device (acked, queued, SMS submitted/delivered, failed, …).

use super::{AccountId, TenantId};

/// A receipt as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The receipt event's id: the log holds each once.
    pub event_id: String,
    pub tenant: TenantId,
    pub account: AccountId,
    pub device_id: String,
    pub idempotency_key: String,
    /// `held_connection`, `replay`, `sms_wake_up`, `sms_notice`.
    pub channel: String,
    /// `acked`, `queued`, `sms_submitted`, `sms_delivered`, `failed`, `suppressed`, `deferred`.
    pub status: String,
    pub detail: String,
    pub sequence: u64,
    /// When it happened, ms since the epoch.
    pub at_ms: i64,
}

/// Where a page of the log ends: the last entry's time and event id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryCursor {
    pub at_ms: i64,
    pub event_id: String,
}

impl DeliveryCursor {
    /// `<at_ms>.<event id>`, as handed to callers.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.at_ms, self.event_id)
    }

    /// A cursor from a caller, or `None` when it is not one of ours.
    pub fn parse(text: &str) -> Option<Self> {
        let (at, id) = text.split_once('.')?;
        let at_ms = at.parse().ok()?;
        (!id.is_empty() && id.len() <= 64).then(|| Self {
            at_ms,
            event_id: id.to_owned(),
        })
    }
}
