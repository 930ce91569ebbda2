//! Devices: phones behind a bound number.

use super::{DeviceId, Msisdn, TenantId};

/// A device to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDevice {
    /// The phone's number.
    pub msisdn: Msisdn,
    /// A name the user recognises, at most 100 characters.
    pub label: String,
    /// Whether a pushmail client runs on it (else: SMS notices only).
    pub has_push_client: bool,
}

/// A device as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Owner.
    pub tenant_id: TenantId,
    /// Id.
    pub id: DeviceId,
    /// The phone's number.
    pub msisdn: Msisdn,
    /// Display name.
    pub label: String,
    /// Whether a pushmail client runs on it.
    pub has_push_client: bool,
    /// When it was revoked; its tokens issued before this are void.
    pub revoked_at_ms: Option<i64>,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
}
