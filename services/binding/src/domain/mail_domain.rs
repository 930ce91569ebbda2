//! Mail domains an operator assigns to a tenant: only the owner may create
//! forwarded addresses in the domain or below it.

use std::fmt;

/// A DNS name such as `corp.example`: lowercase, at least two labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailDomain(String);

/// Why a domain was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a mail domain (labels of letters, digits and '-', like corp.example)")]
pub struct MailDomainError(String);

impl MailDomain {
    /// Parses a domain (any case, a trailing dot allowed).
    pub fn parse(text: &str) -> Result<Self, MailDomainError> {
        let domain = text.trim().trim_end_matches('.').to_ascii_lowercase();
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if domain.len() > 253 || !domain.contains('.') || !domain.split('.').all(label_ok) {
            return Err(MailDomainError(text.chars().take(64).collect()));
        }
        Ok(Self(domain))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether an address in `domain` falls under this one.
    #[cfg(test)]
    pub(crate) fn covers(&self, domain: &str) -> bool {
        domain == self.0
            || domain
                .strip_suffix(self.0.as_str())
                .is_some_and(|rest| rest.ends_with('.'))
    }
}

/// The domains that could own an address: its domain and every parent
/// with two labels or more, nearest first (`a.corp.example` →
/// `a.corp.example`, `corp.example`).
pub(crate) fn owners_of(address: &str) -> Vec<String> {
    let Some((_, domain)) = address.rsplit_once('@') else {
        return Vec::new();
    };
    let mut candidates = Vec::new();
    let mut rest = domain;
    while rest.contains('.') {
        candidates.push(rest.to_owned());
        rest = rest.split_once('.').map_or("", |(_, parent)| parent);
    }
    candidates
}

impl fmt::Display for MailDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_normalise_and_refuse_garbage() {
        assert_eq!(
            MailDomain::parse(" Corp.Example. ").unwrap().as_str(),
            "corp.example"
        );
        for bad in [
            "",
            "example",
            "-a.example",
            "a..example",
            "a b.example",
            "x@y.example",
        ] {
            assert!(MailDomain::parse(bad).is_err(), "{bad:?}");
        }
        assert!(MailDomain::parse(&format!("{}.example", "a".repeat(64))).is_err());
    }

    #[test]
    fn an_owned_domain_covers_its_subdomains_only() {
        let corp = MailDomain::parse("corp.example").unwrap();
        assert!(corp.covers("corp.example"));
        assert!(corp.covers("sales.corp.example"));
        assert!(!corp.covers("evilcorp.example"));
        assert!(!corp.covers("example"));
        assert_eq!(
            owners_of("li@sales.corp.example"),
            ["sales.corp.example", "corp.example"]
        );
        assert!(owners_of("nobody").is_empty());
    }
}
