//! The binding service's secrets, built from `[security]` once at start so a
//! missing or malformed key stops the service before it serves anything.

use std::time::Duration;

use pushmail_common::auth::BearerToken;
use pushmail_common::config::ConfigError;
use pushmail_common::redact::Secret;
use pushmail_common::service_identity::{Service, ServiceKeys, ServiceVerifier};
use pushmail_device_token::TokenSigner;
use serde::{Deserialize, Serialize};

use crate::crypto::CredentialCipher;
use crate::domain::{OtpIssuer, OtpPolicy};

/// Secrets and their lifetimes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// AES-256-GCM key sealing mail credentials at rest: 64 hex digits.
    pub credentials_key: Secret,
    /// HMAC key under which one-time codes are stored: 64 hex digits.
    pub otp_key: Secret,
    /// Ed25519 seed signing device tokens: 64 hex digits (session gets the public key).
    pub device_token_seed: Secret,
    /// Public key(s) of the service credential issuer: other pushmail
    /// services call with credentials it signed (`pushmail keys`), each
    /// allowed only its own methods. Several keys during a rotation.
    pub service_keys: ServiceKeys,
    /// Bearer token of the carrier's operators (creates tenants, acts for
    /// any tenant): 64 hex digits.
    pub operator_token: Secret,
    /// Lifetime of a one-time code.
    pub otp_ttl_seconds: u64,
    /// Wrong answers allowed per number per tenant per UTC day, across
    /// resends and new bindings (the guess budget).
    pub otp_max_attempts: u32,
    /// Lifetime of a device token.
    pub device_token_ttl_hours: u64,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            credentials_key: Secret::default(),
            otp_key: Secret::default(),
            device_token_seed: Secret::default(),
            service_keys: ServiceKeys::default(),
            operator_token: Secret::default(),
            otp_ttl_seconds: 300,
            otp_max_attempts: 5,
            device_token_ttl_hours: 24 * 30,
        }
    }
}

impl SecurityConfig {
    /// Shape checks (a key, when given, is 64 hex digits; bounds are sane).
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        for (name, key) in self.keys() {
            if !key.is_empty() && !is_hex_key(key.expose()) {
                return Err(ConfigError::invalid(
                    format!("{prefix}{name}"),
                    "must be 64 hex digits",
                ));
            }
        }
        if !self.service_keys.is_empty() {
            self.service_keys
                .validate(&format!("{prefix}service_keys"))?;
        }
        if !(1..=3_600).contains(&self.otp_ttl_seconds) {
            return Err(ConfigError::invalid(
                format!("{prefix}otp_ttl_seconds"),
                "must be 1 to 3600",
            ));
        }
        if !(1..=10).contains(&self.otp_max_attempts) {
            return Err(ConfigError::invalid(
                format!("{prefix}otp_max_attempts"),
                "must be 1 to 10",
            ));
        }
        if !(1..=24 * 365).contains(&self.device_token_ttl_hours) {
            return Err(ConfigError::invalid(
                format!("{prefix}device_token_ttl_hours"),
                "must be 1 to 8760",
            ));
        }
        Ok(())
    }

    /// Every secret with its name; all are required and 64 hex digits.
    pub fn keys(&self) -> [(&'static str, &Secret); 4] {
        [
            ("credentials_key", &self.credentials_key),
            ("otp_key", &self.otp_key),
            ("device_token_seed", &self.device_token_seed),
            ("operator_token", &self.operator_token),
        ]
    }

    /// The same, to fill in (standalone generates missing ones).
    pub fn keys_mut(&mut self) -> [(&'static str, &mut Secret); 4] {
        [
            ("credentials_key", &mut self.credentials_key),
            ("otp_key", &mut self.otp_key),
            ("device_token_seed", &mut self.device_token_seed),
            ("operator_token", &mut self.operator_token),
        ]
    }
}

fn is_hex_key(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The secrets, ready to use.
#[derive(Debug)]
pub(crate) struct Keys {
    /// Seals and opens mail credentials.
    pub credentials: CredentialCipher,
    /// Issues and checks one-time codes.
    pub otp: OtpIssuer,
    /// Signs device tokens.
    pub tokens: TokenSigner,
    /// Lifetime of a device token.
    pub token_ttl: Duration,
    /// Who may call what.
    pub callers: CallerKeys,
}

/// How privileged callers are recognised.
#[derive(Debug)]
pub(crate) struct CallerKeys {
    services: ServiceVerifier,
    operator: BearerToken,
}

/// A privileged caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Privileged {
    /// Another pushmail service, by its credential.
    Service(Service),
    /// A carrier operator.
    Operator,
}

/// A bearer token that claims to be a privileged credential and is not.
#[derive(Debug, thiserror::Error)]
#[error("invalid service credential")]
pub(crate) struct InvalidCredential(
    #[source] pub pushmail_common::service_identity::CredentialError,
);

impl CallerKeys {
    /// Which privileged caller `token` belongs to: `Ok(None)` for a token
    /// that is neither (a tenant's key, perhaps), an error for a service
    /// credential that does not verify.
    pub(crate) fn privileged(&self, token: &str) -> Result<Option<Privileged>, InvalidCredential> {
        if pushmail_common::service_identity::is_service_credential(token) {
            return self
                .services
                .verify(token)
                .map(|s| Some(Privileged::Service(s)))
                .map_err(InvalidCredential);
        }
        Ok(self.operator.matches(token).then_some(Privileged::Operator))
    }
}

impl Keys {
    /// Builds the secrets; every key is required.
    pub(crate) fn from_config(config: &SecurityConfig) -> Result<Self, ConfigError> {
        for (name, key) in config.keys() {
            if key.is_empty() {
                return Err(ConfigError::invalid(
                    format!("security.{name}"),
                    "is required (64 hex digits, e.g. from `openssl rand -hex 32`)",
                ));
            }
        }
        config.service_keys.validate("security.service_keys")?;
        let invalid =
            |name: &str| ConfigError::invalid(format!("security.{name}"), "must be 64 hex digits");
        let otp_key = hex::decode(config.otp_key.expose()).map_err(|_| invalid("otp_key"))?;
        Ok(Self {
            credentials: CredentialCipher::from_hex(config.credentials_key.expose())
                .map_err(|_| invalid("credentials_key"))?,
            otp: OtpIssuer::new(
                &otp_key,
                OtpPolicy {
                    ttl_ms: i64::try_from(config.otp_ttl_seconds * 1_000).unwrap_or(i64::MAX),
                    max_attempts: config.otp_max_attempts,
                },
            ),
            tokens: TokenSigner::from_seed_hex(config.device_token_seed.expose())
                .map_err(|_| invalid("device_token_seed"))?,
            token_ttl: Duration::from_secs(config.device_token_ttl_hours * 3_600),
            callers: CallerKeys {
                services: config
                    .service_keys
                    .verifier()
                    .map_err(|_| invalid("service_keys"))?,
                operator: BearerToken::new(config.operator_token.expose()),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use pushmail_common::service_identity::CredentialIssuer;

    fn issuer() -> CredentialIssuer {
        CredentialIssuer::from_seed_hex(&"44".repeat(32)).unwrap()
    }

    fn filled() -> SecurityConfig {
        SecurityConfig {
            credentials_key: Secret::new("11".repeat(32)),
            otp_key: Secret::new("22".repeat(32)),
            device_token_seed: Secret::new("33".repeat(32)),
            service_keys: ServiceKeys::new([issuer().public_key_hex()]),
            operator_token: Secret::new("55".repeat(32)),
            ..SecurityConfig::default()
        }
    }

    #[test]
    fn complete_keys_build() {
        assert!(filled().validate("security.").is_ok());
        let keys = Keys::from_config(&filled()).unwrap();
        assert_eq!(keys.token_ttl, Duration::from_secs(30 * 24 * 3_600));
        let callers = &keys.callers;
        let ingest = issuer().mint(Service::Ingest, 1);
        assert_eq!(
            callers.privileged(ingest.expose()).unwrap(),
            Some(Privileged::Service(Service::Ingest))
        );
        assert_eq!(
            callers.privileged(&"55".repeat(32)).unwrap(),
            Some(Privileged::Operator)
        );
        assert_eq!(callers.privileged(&"66".repeat(32)).unwrap(), None);
        assert_eq!(callers.privileged("").unwrap(), None);
        let foreign = CredentialIssuer::from_seed_hex(&"77".repeat(32))
            .unwrap()
            .mint(Service::Ingest, 1);
        assert!(callers.privileged(foreign.expose()).is_err());
    }

    #[test]
    fn service_keys_are_required() {
        let config = SecurityConfig {
            service_keys: ServiceKeys::default(),
            ..filled()
        };
        let err = Keys::from_config(&config).unwrap_err();
        assert!(err.to_string().contains("security.service_keys"), "{err}");
    }

    #[test]
    fn missing_key_is_named() {
        let config = SecurityConfig {
            otp_key: Secret::default(),
            ..filled()
        };
        let err = Keys::from_config(&config).unwrap_err();
        assert!(err.to_string().contains("security.otp_key"), "{err}");
        assert!(err.to_string().contains("required"), "{err}");
    }

    #[test]
    fn malformed_key_and_bounds_are_named() {
        let config = SecurityConfig {
            credentials_key: Secret::new("xyz"),
            ..filled()
        };
        let err = config.validate("security.").unwrap_err();
        assert!(
            err.to_string().contains("security.credentials_key"),
            "{err}"
        );
        assert!(
            !err.to_string().contains("xyz"),
            "the value itself is never echoed: {err}"
        );
        let config = SecurityConfig {
            otp_max_attempts: 0,
            ..filled()
        };
        assert!(
            config
                .validate("security.")
                .unwrap_err()
                .to_string()
                .contains("otp_max_attempts")
        );
    }
}
