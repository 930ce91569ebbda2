//! SMTP relay credentials and a tenant's relay policy: what ingest needs to
//! tell a tenant's own mail server from anyone else.

use pushmail_common::egress::Cidr;

use super::{RelayCredentialId, TenantId};

/// Most networks, and most fingerprints, one policy lists.
pub(crate) const MAX_POLICY_ENTRIES: usize = 100;

/// A relay credential as stored (the password never is, only its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayCredential {
    /// Owner.
    pub tenant_id: TenantId,
    /// Id.
    pub id: RelayCredentialId,
    /// The SMTP AUTH username, unique across the platform.
    pub username: String,
    /// What it is for.
    pub description: String,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
    /// When it was revoked; `None`: it works.
    pub revoked_at_ms: Option<i64>,
}

/// Where a tenant's inbound mail may come from besides an authenticated
/// relay: networks and client-certificate fingerprints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayPolicy {
    /// Networks whose clients may deliver the tenant's mail.
    pub allowed_sources: Vec<Cidr>,
    /// SHA-256 fingerprints (lowercase hex) of accepted client certificates.
    pub client_cert_sha256: Vec<String>,
}

/// Why a policy was refused; the field is named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct RelayPolicyError {
    /// The request field.
    pub field: &'static str,
    /// What is wrong.
    pub reason: String,
}

impl RelayPolicy {
    /// Parses a policy from its text entries (duplicates dropped).
    pub fn parse(sources: &[String], fingerprints: &[String]) -> Result<Self, RelayPolicyError> {
        let too_many = |field| RelayPolicyError {
            field,
            reason: format!("at most {MAX_POLICY_ENTRIES} entries"),
        };
        if sources.len() > MAX_POLICY_ENTRIES {
            return Err(too_many("allowed_sources"));
        }
        if fingerprints.len() > MAX_POLICY_ENTRIES {
            return Err(too_many("client_cert_sha256"));
        }
        let mut policy = Self::default();
        for source in sources {
            let cidr = Cidr::parse(source).map_err(|e| RelayPolicyError {
                field: "allowed_sources",
                reason: e.to_string(),
            })?;
            if !policy.allowed_sources.contains(&cidr) {
                policy.allowed_sources.push(cidr);
            }
        }
        for fingerprint in fingerprints {
            let hex: String = fingerprint
                .trim()
                .chars()
                .filter(|c| *c != ':')
                .collect::<String>()
                .to_ascii_lowercase();
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(RelayPolicyError {
                    field: "client_cert_sha256",
                    reason: format!(
                        "{:?} is not a SHA-256 fingerprint (64 hex digits)",
                        fingerprint.chars().take(100).collect::<String>()
                    ),
                });
            }
            if !policy.client_cert_sha256.contains(&hex) {
                policy.client_cert_sha256.push(hex);
            }
        }
        Ok(policy)
    }

    /// The networks as text, for storage and the API.
    pub(crate) fn sources_text(&self) -> Vec<String> {
        self.allowed_sources.iter().map(Cidr::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_normalise_and_name_the_bad_field() {
        let policy = RelayPolicy::parse(
            &[
                "203.0.113.0/24".into(),
                "2001:db8::1".into(),
                "203.0.113.0/24".into(),
            ],
            &[format!("AB:{}", "cd".repeat(31))],
        )
        .unwrap();
        assert_eq!(policy.sources_text(), ["203.0.113.0/24", "2001:db8::1/128"]);
        assert_eq!(
            policy.client_cert_sha256,
            [format!("ab{}", "cd".repeat(31))]
        );
        let err = RelayPolicy::parse(&["mail.corp.example".into()], &[]).unwrap_err();
        assert_eq!(err.field, "allowed_sources");
        let err = RelayPolicy::parse(&[], &["beef".into()]).unwrap_err();
        assert_eq!(err.field, "client_cert_sha256");
        let many: Vec<String> = (0..=MAX_POLICY_ENTRIES)
            .map(|i| format!("10.0.0.{}", i % 250))
            .collect();
        assert!(RelayPolicy::parse(&many, &[]).is_err());
    }
}
