//! One SMS of the SMS outbox: what the platform sent where no SMS centre
//! is (standalone), as a person reads it.

use super::TenantId;

/// An SMS as the outbox keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxSms {
    /// The SMS event's id: the outbox holds each once.
    pub id: String,
    /// Whose SMS it is.
    pub tenant: TenantId,
    /// The number it went to (E.164).
    pub msisdn: String,
    /// `otp`, `wake_up`, `notice` or `unspecified`.
    pub purpose: String,
    /// `text` or `wap_push`.
    pub kind: String,
    /// The text, or the WAP Push's indication text.
    pub text: String,
    /// The WAP Push's URL; empty for a text.
    pub url: String,
    /// The account it concerns, when one does (empty otherwise).
    pub account_id: String,
    /// The device it concerns, when one does (empty otherwise).
    pub device_id: String,
    /// When it was sent, ms since the epoch.
    pub at_ms: i64,
}
