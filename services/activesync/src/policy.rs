//! The device policy a phone is given at Provision (MS-ASPROV
//! `EASProvisionDoc`), from config: what a carrier asks of the phones that
//! read its subscribers' mail. Everything not configurable here is sent
//! permissive, so a phone never refuses the account over a rule nobody
//! asked for.

use pushmail_common::config::ConfigError;
use pushmail_wbxml::{Element, Tag, tag};
use serde::{Deserialize, Serialize};

/// The policy (`policy.*`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Whether the phone must have a screen lock.
    pub require_device_password: bool,
    /// Shortest screen-lock password, when one is required (1–16).
    pub min_password_length: u32,
    /// Letters and digits required, not a PIN.
    pub require_alphanumeric_password: bool,
    /// Seconds idle before the phone locks itself (0: the phone decides).
    pub max_inactivity_lock_seconds: u32,
    /// Wrong screen-lock attempts before the phone wipes itself (0: none).
    pub max_failed_attempts: u32,
    /// Whether the phone must encrypt its storage.
    pub require_encryption: bool,
    /// Whether the phone may download attachments at all.
    pub attachments_enabled: bool,
    /// Largest attachment the phone downloads, bytes (0: no limit).
    pub max_attachment_bytes: u64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            require_device_password: false,
            min_password_length: 4,
            require_alphanumeric_password: false,
            max_inactivity_lock_seconds: 0,
            max_failed_attempts: 0,
            require_encryption: false,
            attachments_enabled: true,
            max_attachment_bytes: 0,
        }
    }
}

impl PolicyConfig {
    /// Bounds.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=16).contains(&self.min_password_length) {
            return Err(ConfigError::invalid(
                "policy.min_password_length",
                "must be 1 to 16",
            ));
        }
        if self.max_inactivity_lock_seconds > 9_999 {
            return Err(ConfigError::invalid(
                "policy.max_inactivity_lock_seconds",
                "must be at most 9999",
            ));
        }
        if self.max_failed_attempts != 0 && !(4..=16).contains(&self.max_failed_attempts) {
            return Err(ConfigError::invalid(
                "policy.max_failed_attempts",
                "must be 0 (none) or 4 to 16",
            ));
        }
        Ok(())
    }

    /// Whether the policy asks anything of the phone (else every phone
    /// complies, whatever it says).
    pub fn requires_anything(&self) -> bool {
        self.require_device_password || self.require_encryption
    }

    /// A digest of the document: a phone whose key was given with another
    /// policy provisions again.
    pub fn digest(&self) -> String {
        use sha2::Digest as _;
        let encoded = pushmail_wbxml::encode(&self.document()).unwrap_or_default();
        hex::encode(&sha2::Sha256::digest(&encoded)[..16])
    }

    /// The `EASProvisionDoc` element.
    pub fn document(&self) -> Element {
        let flag = |on: bool| if on { "1" } else { "0" };
        let setting = |name: &'static str, value: String| Element::text_of(provision(name), value);
        let optional = |name: &'static str, value: u64| {
            if value == 0 {
                Element::of(provision(name))
            } else {
                setting(name, value.to_string())
            }
        };
        let password = self.require_device_password;
        let mut doc = Element::of(provision("EASProvisionDoc"));
        for element in [
            setting("DevicePasswordEnabled", flag(password).into()),
            setting(
                "AlphanumericDevicePasswordRequired",
                flag(password && self.require_alphanumeric_password).into(),
            ),
            setting("PasswordRecoveryEnabled", "0".into()),
            setting(
                "RequireStorageCardEncryption",
                flag(self.require_encryption).into(),
            ),
            setting("AttachmentsEnabled", flag(self.attachments_enabled).into()),
            setting(
                "MinDevicePasswordLength",
                self.min_password_length.to_string(),
            ),
            optional(
                "MaxInactivityTimeDeviceLock",
                self.max_inactivity_lock_seconds.into(),
            ),
            optional(
                "MaxDevicePasswordFailedAttempts",
                self.max_failed_attempts.into(),
            ),
            optional("MaxAttachmentSize", self.max_attachment_bytes),
            setting(
                "AllowSimpleDevicePassword",
                flag(!self.require_alphanumeric_password).into(),
            ),
            optional("DevicePasswordExpiration", 0),
            setting("DevicePasswordHistory", "0".into()),
            setting("AllowStorageCard", "1".into()),
            setting("AllowCamera", "1".into()),
            setting(
                "RequireDeviceEncryption",
                flag(self.require_encryption).into(),
            ),
            setting("AllowUnsignedApplications", "1".into()),
            setting("AllowUnsignedInstallationPackages", "1".into()),
            setting("MinDevicePasswordComplexCharacters", "1".into()),
            setting("AllowWiFi", "1".into()),
            setting("AllowTextMessaging", "1".into()),
            setting("AllowPOPIMAPEmail", "1".into()),
            setting("AllowBluetooth", "2".into()),
            setting("AllowIrDA", "1".into()),
            setting("RequireManualSyncWhenRoaming", "0".into()),
            setting("AllowDesktopSync", "1".into()),
            setting("MaxCalendarAgeFilter", "0".into()),
            setting("AllowHTMLEmail", "1".into()),
            setting("MaxEmailAgeFilter", "0".into()),
            setting("MaxEmailBodyTruncationSize", "-1".into()),
            setting("MaxEmailHTMLBodyTruncationSize", "-1".into()),
            setting("RequireSignedSMIMEMessages", "0".into()),
            setting("RequireEncryptedSMIMEMessages", "0".into()),
            setting("RequireSignedSMIMEAlgorithm", "0".into()),
            setting("RequireEncryptionSMIMEAlgorithm", "0".into()),
            setting("AllowSMIMEEncryptionAlgorithmNegotiation", "2".into()),
            setting("AllowSMIMESoftCerts", "1".into()),
            setting("AllowBrowser", "1".into()),
            setting("AllowConsumerEmail", "1".into()),
            setting("AllowRemoteDesktop", "1".into()),
            setting("AllowInternetSharing", "1".into()),
        ] {
            doc = doc.with(element);
        }
        doc
    }
}

/// A Provision page tag by name (a typo is a panic at first use, caught
/// by the tests).
fn provision(name: &'static str) -> Tag {
    tag("Provision", name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_says_what_is_configured_and_bounds_hold() {
        let strict = PolicyConfig {
            require_device_password: true,
            min_password_length: 6,
            max_failed_attempts: 8,
            ..PolicyConfig::default()
        };
        strict.validate().unwrap();
        let doc = strict.document();
        let value = |name| doc.get(tag("Provision", name)).unwrap().text();
        assert_eq!(value("DevicePasswordEnabled"), "1");
        assert_eq!(value("MinDevicePasswordLength"), "6");
        assert_eq!(value("MaxDevicePasswordFailedAttempts"), "8");
        assert_eq!(
            value("MaxInactivityTimeDeviceLock"),
            "",
            "empty: the phone decides"
        );
        assert_eq!(doc.elements().count(), 40);
        assert_ne!(strict.digest(), PolicyConfig::default().digest());
        assert_eq!(strict.digest(), strict.clone().digest());
        assert!(strict.requires_anything() && !PolicyConfig::default().requires_anything());
        assert!(PolicyConfig::default().validate().is_ok());
        for bad in [
            PolicyConfig {
                min_password_length: 0,
                ..PolicyConfig::default()
            },
            PolicyConfig {
                max_failed_attempts: 2,
                ..PolicyConfig::default()
            },
            PolicyConfig {
                max_inactivity_lock_seconds: 10_000,
                ..PolicyConfig::default()
            },
        ] {
            assert!(bad.validate().is_err());
        }
    }
}
