//! Bearer tokens (`authorization: Bearer <token>` metadata on gRPC), such
//! as the operators' token. Presented tokens are hashed and the digests
//! compared, so the comparison's timing says nothing about the token.
//! Services identify themselves with credentials instead
//! (`service_identity`).

use sha2::Digest as _;

/// A configured token, kept only as its digest.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken([u8; 32]);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<digest>)")
    }
}

impl BearerToken {
    /// The token `secret`.
    pub fn new(secret: &str) -> Self {
        Self(sha2::Sha256::digest(secret.as_bytes()).into())
    }

    /// Whether `presented` is this token.
    pub fn matches(&self, presented: &str) -> bool {
        Self::new(presented.trim()).0 == self.0
    }
}

/// The token of `authorization: Bearer <token>` metadata, if well formed.
pub fn bearer(metadata: &tonic::metadata::MetadataMap) -> Option<&str> {
    metadata
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_themselves() {
        let token = BearerToken::new("s3cret");
        assert!(token.matches("s3cret") && token.matches(" s3cret "));
        assert!(!token.matches("s3cre") && !token.matches(""));
        let mut metadata = tonic::metadata::MetadataMap::new();
        assert_eq!(bearer(&metadata), None);
        metadata.insert("authorization", "Basic x".parse().unwrap());
        assert_eq!(bearer(&metadata), None);
        metadata.insert("authorization", "Bearer ".parse().unwrap());
        assert_eq!(bearer(&metadata), None);
        metadata.insert("authorization", "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&metadata), Some("abc"));
    }
}
