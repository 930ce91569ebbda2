//! Limits the registry enforces: verification codes (`[verification]`) and
//! SMTP relay logins (`[relay]`).

use pushmail_common::config::ConfigError;
use serde::{Deserialize, Serialize};

/// How often a number may be sent a verification code.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct VerificationConfig {
    /// Least time between two codes to one number from one tenant
    /// (resends and other accounts' bindings alike).
    pub resend_cooldown_seconds: u64,
    /// Most codes one number gets from one tenant per UTC day.
    pub codes_per_number_per_day: u32,
    /// Codes a tenant may send per UTC day when its own `codes_per_day` is
    /// 0. Counted apart from `sms_per_day` (notification SMS), so neither
    /// starves the other.
    pub tenant_codes_per_day: u32,
}

impl Default for VerificationConfig {
    fn default() -> Self {
        Self {
            resend_cooldown_seconds: 60,
            codes_per_number_per_day: 5,
            tenant_codes_per_day: 1_000,
        }
    }
}

impl VerificationConfig {
    /// Bounds.
    pub(crate) fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.resend_cooldown_seconds > 3_600 {
            return Err(ConfigError::invalid(
                format!("{prefix}resend_cooldown_seconds"),
                "must be at most 3600",
            ));
        }
        if !(1..=100).contains(&self.codes_per_number_per_day) {
            return Err(ConfigError::invalid(
                format!("{prefix}codes_per_number_per_day"),
                "must be 1 to 100",
            ));
        }
        if self.tenant_codes_per_day == 0 {
            return Err(ConfigError::invalid(
                format!("{prefix}tenant_codes_per_day"),
                "must be positive",
            ));
        }
        Ok(())
    }
}

/// A password login's guard: SMTP relay AUTH (`relay`) and app
/// passwords (`app_passwords`) each have one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct LoginConfig {
    /// Failed logins a username, and a peer address, may have within
    /// `lockout_seconds` before further attempts are refused until the
    /// window ends. Counted per binding replica.
    pub max_failures: u32,
    /// The failure window and lockout, seconds.
    pub lockout_seconds: u64,
    /// How long a verified login is remembered, so a busy relay's repeat
    /// logins skip argon2 (revocation still takes effect at once).
    pub cache_ttl_seconds: u64,
    /// Most remembered logins and failure counters.
    pub cache_capacity: usize,
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            max_failures: 10,
            lockout_seconds: 900,
            cache_ttl_seconds: 300,
            cache_capacity: 10_000,
        }
    }
}

impl LoginConfig {
    /// App password logins: an ActiveSync phone logs in with every
    /// request, and its held Ping comes back once per heartbeat (up to
    /// 3,540 s; iOS and Android use 15 to 30 minutes), so a login is
    /// remembered for an hour and for 100,000 phones (about 20 MB).
    /// Remembering skips only argon2: the row is read at every login, so
    /// a revocation still holds at once. With relay's five minutes every
    /// Ping re-ran argon2 (about 28 ms of a core and 19 MiB each).
    pub(crate) fn app_passwords() -> Self {
        Self {
            cache_ttl_seconds: 3_600,
            cache_capacity: 100_000,
            ..Self::default()
        }
    }

    /// Bounds.
    pub(crate) fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if !(1..=1_000).contains(&self.max_failures) {
            return Err(ConfigError::invalid(
                format!("{prefix}max_failures"),
                "must be 1 to 1000",
            ));
        }
        if !(1..=86_400).contains(&self.lockout_seconds) {
            return Err(ConfigError::invalid(
                format!("{prefix}lockout_seconds"),
                "must be 1 to 86400",
            ));
        }
        if self.cache_ttl_seconds > 86_400 {
            return Err(ConfigError::invalid(
                format!("{prefix}cache_ttl_seconds"),
                "must be at most 86400",
            ));
        }
        if self.cache_capacity == 0 {
            return Err(ConfigError::invalid(
                format!("{prefix}cache_capacity"),
                "must be positive",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bounds_are_named() {
        assert!(VerificationConfig::default().validate("v.").is_ok());
        assert!(LoginConfig::default().validate("r.").is_ok());
        assert!(LoginConfig::app_passwords().validate("a.").is_ok());
        let cap = VerificationConfig {
            codes_per_number_per_day: 0,
            ..VerificationConfig::default()
        };
        let err = cap.validate("verification.").unwrap_err().to_string();
        assert!(
            err.contains("verification.codes_per_number_per_day"),
            "{err}"
        );
        let relay = LoginConfig {
            lockout_seconds: 0,
            ..LoginConfig::default()
        };
        let err = relay.validate("relay.").unwrap_err().to_string();
        assert!(err.contains("relay.lockout_seconds"), "{err}");
    }
}
