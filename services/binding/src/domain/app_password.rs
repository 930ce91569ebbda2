//! App passwords: how a phone's own mail app (Exchange ActiveSync) logs
//! in. One per phone, for an account and a number bound to it; the phone
//! is a device of that number.

use super::{AccountId, AppPasswordId, DeviceId, Msisdn, TenantId};

/// Longest client DeviceId or DeviceType kept (MS-ASHTTP allows 32 and
/// 16 characters; some clients send more).
pub(crate) const MAX_CLIENT_FIELD: usize = 64;

/// The phone an app password is pinned to: its ActiveSync DeviceId and
/// DeviceType as it sent them at its first login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientDevice {
    /// `DeviceId`.
    pub id: String,
    /// `DeviceType`.
    pub kind: String,
}

impl ClientDevice {
    /// A client device from the request fields; `None` when the id is
    /// empty, too long or not the printable ASCII the protocol allows.
    pub fn parse(id: &str, kind: &str) -> Option<Self> {
        let fits = |s: &str| s.len() <= MAX_CLIENT_FIELD && s.bytes().all(|b| b.is_ascii_graphic());
        (!id.is_empty() && fits(id) && fits(kind)).then(|| Self {
            id: id.to_owned(),
            kind: kind.to_owned(),
        })
    }
}

/// Longest device-information field kept.
pub(crate) const MAX_DEVICE_FIELD: usize = 256;

/// What a phone says it is (ActiveSync `DeviceInformation`), for the
/// portal. Empty fields were not said; its IMEI and number are not kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceInformation {
    /// `Model`.
    pub model: String,
    /// `OS`.
    pub os: String,
    /// `FriendlyName`: the name its user gave it.
    pub friendly_name: String,
    /// `UserAgent`.
    pub user_agent: String,
    /// `MobileOperator`.
    pub mobile_operator: String,
}

impl DeviceInformation {
    /// Each field trimmed, control characters dropped, cut to
    /// [`MAX_DEVICE_FIELD`] characters: a phone's say is shown, never
    /// trusted.
    pub fn cleaned(self) -> Self {
        let clean = |s: String| -> String {
            s.trim()
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_DEVICE_FIELD)
                .collect()
        };
        Self {
            model: clean(self.model),
            os: clean(self.os),
            friendly_name: clean(self.friendly_name),
            user_agent: clean(self.user_agent),
            mobile_operator: clean(self.mobile_operator),
        }
    }
}

/// What a remote wipe erases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WipeKind {
    /// The whole phone, back to its factory state (ActiveSync
    /// `RemoteWipe`): for a lost company phone.
    Device,
    /// Only what the account put on the phone (`AccountOnlyRemoteWipe`,
    /// protocol 16.1): for a personal phone that leaves the company.
    Account,
}

impl WipeKind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Device => "device",
            Self::Account => "account",
        }
    }

    /// From its stored form.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "device" => Some(Self::Device),
            "account" => Some(Self::Account),
            _ => None,
        }
    }
}

/// A remote wipe ordered for the phone of an app password: it waits for
/// the phone's next request, and the phone's acknowledgement revokes the
/// password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wipe {
    /// What it erases.
    pub kind: WipeKind,
    /// When it was ordered (the first order's time stands).
    pub ordered_at_ms: i64,
    /// When the phone acknowledged it; `None`: still pending.
    pub done_at_ms: Option<i64>,
}

impl Wipe {
    /// Ordered and not yet acknowledged.
    pub fn pending(&self) -> bool {
        self.done_at_ms.is_none()
    }
}

/// An app password as stored (the password itself never is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPassword {
    /// Owner.
    pub tenant_id: TenantId,
    /// Id.
    pub id: AppPasswordId,
    /// The account it logs in to.
    pub account_id: AccountId,
    /// The device it registered.
    pub device_id: DeviceId,
    /// The device's number.
    pub msisdn: Msisdn,
    /// The phone as the user knows it.
    pub label: String,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
    /// The phone it is pinned to, once it has logged in.
    pub client: Option<ClientDevice>,
    /// The last login that ran the password check.
    pub last_used_at_ms: Option<i64>,
    /// The ActiveSync policy key the phone acknowledged last.
    pub policy_key: Option<u32>,
    /// The digest of the policy it applied with that key ("": none).
    pub policy_digest: String,
    /// What the phone says it is.
    pub device_information: DeviceInformation,
    /// When it was revoked; `None`: it works.
    pub revoked_at_ms: Option<i64>,
    /// The remote wipe ordered for its phone, if any.
    pub wipe: Option<Wipe>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_devices_are_printable_ascii_and_bounded() {
        let phone = ClientDevice::parse("ApplF17XK0XXHG7F", "iPhone").unwrap();
        assert_eq!(phone.id, "ApplF17XK0XXHG7F");
        assert!(ClientDevice::parse("", "iPhone").is_none());
        assert!(ClientDevice::parse("a b", "iPhone").is_none());
        assert!(ClientDevice::parse("abc", "ph\u{e9}").is_none());
        assert!(ClientDevice::parse(&"x".repeat(65), "").is_none());
        assert!(ClientDevice::parse(&"x".repeat(64), "").is_some());
    }

    #[test]
    fn wipe_kinds_round_trip_their_stored_form() {
        for kind in [WipeKind::Device, WipeKind::Account] {
            assert_eq!(WipeKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(WipeKind::parse("Device"), None);
    }

    #[test]
    fn device_information_is_cleaned_and_bounded() {
        let said = DeviceInformation {
            model: " iPhone15,2 ".to_owned(),
            os: "iOS\u{0}17.1".to_owned(),
            friendly_name: "x".repeat(300),
            ..DeviceInformation::default()
        }
        .cleaned();
        assert_eq!(said.model, "iPhone15,2");
        assert_eq!(said.os, "iOS17.1");
        assert_eq!(said.friendly_name.chars().count(), MAX_DEVICE_FIELD);
        assert!(said.user_agent.is_empty());
    }
}
