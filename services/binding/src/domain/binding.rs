//! Bindings of a mail account to a phone number.

use super::{AccountId, BindingId, Msisdn, TenantId};

/// Where a binding stands: pending → verified → revoked (or pending → revoked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingState {
    /// Code sent, not yet entered.
    Pending,
    /// Code entered: pushes may go to the number.
    Verified,
    /// Ended; a new binding of the same pair starts over.
    Revoked,
}

impl BindingState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Verified => "verified",
            Self::Revoked => "revoked",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        [Self::Pending, Self::Verified, Self::Revoked]
            .into_iter()
            .find(|s| s.as_str() == value)
    }
}

/// A binding as stored (the code's MAC stays in the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Owner.
    pub tenant_id: TenantId,
    /// Id.
    pub id: BindingId,
    /// The bound account.
    pub account_id: AccountId,
    /// The bound number.
    pub msisdn: Msisdn,
    /// Where it stands.
    pub state: BindingState,
    /// Last change, ms since the epoch.
    pub updated_at_ms: i64,
}
