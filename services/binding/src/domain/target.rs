//! Who hears about a mail on an account, and how: dispatch's hot-path read.

use super::{BindingId, DeviceId, Msisdn, Preferences};

/// One verified number of an account, with one of its live devices (or
/// none: the number then gets SMS notices only).
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryTarget {
    /// The verified binding.
    pub binding_id: BindingId,
    /// The bound number.
    pub msisdn: Msisdn,
    /// A live device behind the number, if one is registered.
    pub device: Option<TargetDevice>,
    /// The binding's preferences.
    pub preferences: Preferences,
}

/// A live device of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetDevice {
    /// Device id.
    pub id: DeviceId,
    /// Whether a pushmail client runs on it.
    pub has_push_client: bool,
}
