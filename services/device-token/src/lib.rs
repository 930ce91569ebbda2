//! Device tokens: issued by binding, checked by the session service on every
//! connect without a database round trip.
//!
//! Format: `pmd1.<payload>.<signature>`, both base64url without padding; the
//! payload is compact JSON (tenant, device, MSISDN, issued-at, expiry) and
//! the signature is Ed25519 over `pmd1.<payload>`. Binding holds the private
//! key; session holds only the public key, so a compromised session node
//! cannot mint tokens. Revocation: binding announces "tokens of device D
//! issued before T are void" (`BindingChanged`), session keeps those cut-offs
//! in a [`Revocations`] list.

use std::collections::HashMap;
use std::sync::RwLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

const PREFIX: &str = "pmd1.";

/// What a token says about its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceClaims {
    /// Tenant id.
    #[serde(rename = "t")]
    pub tenant_id: String,
    /// Device id.
    #[serde(rename = "d")]
    pub device_id: String,
    /// The device's number, E.164.
    #[serde(rename = "m")]
    pub msisdn: String,
    /// Issued at, ms since the epoch.
    #[serde(rename = "iat")]
    pub issued_at_ms: i64,
    /// Expires at, ms since the epoch.
    #[serde(rename = "exp")]
    pub expires_at_ms: i64,
}

/// Why a token was refused. The device sees only "unauthenticated"; the
/// variant is for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a pushmail device token at all.
    #[error("malformed device token")]
    Malformed,
    /// Signed by another key, or altered.
    #[error("device token signature invalid")]
    Signature,
    /// Past its expiry.
    #[error("device token expired")]
    Expired,
    /// Revoked by binding.
    #[error("device token revoked")]
    Revoked,
    /// A configured key is unusable.
    #[error("device token key invalid: {0}")]
    Key(&'static str),
}

/// Mints tokens (binding service).
pub struct TokenSigner {
    key: Ed25519KeyPair,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(<private key>)")
    }
}

impl TokenSigner {
    /// A signer from a 32-byte seed in hex (64 digits).
    pub fn from_seed_hex(seed: &str) -> Result<Self, TokenError> {
        let seed = hex::decode(seed.trim()).map_err(|_| TokenError::Key("seed is not hex"))?;
        let key = Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|_| TokenError::Key("seed must be 32 bytes"))?;
        Ok(Self { key })
    }

    /// The public key, hex, for the session service's config.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.public_key().as_ref())
    }

    /// A signed token carrying `claims`.
    pub fn sign(&self, claims: &DeviceClaims) -> String {
        // Serialising a struct of strings and integers cannot fail.
        let payload = serde_json::to_vec(claims).unwrap_or_default();
        let signed = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(payload));
        let signature = self.key.sign(signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }
}

/// Per-device cut-offs: tokens issued before them are void.
#[derive(Debug, Default)]
pub struct Revocations {
    cutoffs: RwLock<HashMap<String, i64>>,
}

impl Revocations {
    /// Voids the device's tokens issued before `before_ms`.
    pub fn revoke(&self, device_id: &str, before_ms: i64) {
        let mut cutoffs = self
            .cutoffs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let cutoff = cutoffs.entry(device_id.to_owned()).or_insert(before_ms);
        *cutoff = (*cutoff).max(before_ms);
    }

    fn is_revoked(&self, claims: &DeviceClaims) -> bool {
        let cutoffs = self
            .cutoffs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cutoffs
            .get(&claims.device_id)
            .is_some_and(|cutoff| claims.issued_at_ms < *cutoff)
    }
}

/// Checks tokens (session service) with the public key only.
#[derive(Debug)]
pub struct TokenVerifier {
    public_key: Vec<u8>,
}

impl TokenVerifier {
    /// A verifier from the signer's public key in hex.
    pub fn from_public_key_hex(key: &str) -> Result<Self, TokenError> {
        let public_key =
            hex::decode(key.trim()).map_err(|_| TokenError::Key("public key is not hex"))?;
        if public_key.len() != 32 {
            return Err(TokenError::Key("public key must be 32 bytes"));
        }
        Ok(Self { public_key })
    }

    /// The claims of a valid, unexpired, unrevoked token.
    pub fn verify(
        &self,
        token: &str,
        now_ms: i64,
        revocations: &Revocations,
    ) -> Result<DeviceClaims, TokenError> {
        let rest = token.strip_prefix(PREFIX).ok_or(TokenError::Malformed)?;
        let (payload_b64, signature_b64) = rest.split_once('.').ok_or(TokenError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| TokenError::Malformed)?;
        let signed = &token[..PREFIX.len() + payload_b64.len()];
        UnparsedPublicKey::new(&ED25519, &self.public_key)
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| TokenError::Signature)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| TokenError::Malformed)?;
        let claims: DeviceClaims =
            serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        if now_ms >= claims.expires_at_ms {
            return Err(TokenError::Expired);
        }
        if revocations.is_revoked(&claims) {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const OTHER: &str = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";

    fn claims() -> DeviceClaims {
        DeviceClaims {
            tenant_id: "t1".into(),
            device_id: "d1".into(),
            msisdn: "+8613800138000".into(),
            issued_at_ms: 1_000,
            expires_at_ms: 10_000,
        }
    }

    fn pair(seed: &str) -> (TokenSigner, TokenVerifier) {
        let signer = TokenSigner::from_seed_hex(seed).unwrap();
        let verifier = TokenVerifier::from_public_key_hex(&signer.public_key_hex()).unwrap();
        (signer, verifier)
    }

    #[test]
    fn valid_token_yields_its_claims() {
        let (signer, verifier) = pair(SEED);
        let token = signer.sign(&claims());
        assert!(token.starts_with(PREFIX));
        assert_eq!(
            verifier.verify(&token, 5_000, &Revocations::default()),
            Ok(claims())
        );
    }

    #[test]
    fn expired_foreign_altered_and_garbage_tokens_are_refused() {
        let (signer, verifier) = pair(SEED);
        let none = Revocations::default();
        let token = signer.sign(&claims());
        assert_eq!(
            verifier.verify(&token, 10_000, &none),
            Err(TokenError::Expired)
        );
        let (foreign, _) = pair(OTHER);
        assert_eq!(
            verifier.verify(&foreign.sign(&claims()), 5_000, &none),
            Err(TokenError::Signature)
        );
        // Swap in a payload claiming another tenant, keeping the signature.
        let forged_claims = DeviceClaims {
            tenant_id: "t2".into(),
            ..claims()
        };
        let forged_payload = signer.sign(&forged_claims);
        let (forged_head, _) = forged_payload.rsplit_once('.').unwrap();
        let (_, signature) = token.rsplit_once('.').unwrap();
        assert_eq!(
            verifier.verify(&format!("{forged_head}.{signature}"), 5_000, &none),
            Err(TokenError::Signature)
        );
        for garbage in [
            "",
            "pmd1.",
            "pmd1.x",
            "pmd1.x.y",
            "Bearer abc",
            "pmd1.!!!.!!!",
        ] {
            assert!(
                matches!(
                    verifier.verify(garbage, 5_000, &none),
                    Err(TokenError::Malformed | TokenError::Signature)
                ),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn revocation_voids_older_tokens_only() {
        let (signer, verifier) = pair(SEED);
        let revocations = Revocations::default();
        revocations.revoke("d1", 2_000);
        assert_eq!(
            verifier.verify(&signer.sign(&claims()), 5_000, &revocations),
            Err(TokenError::Revoked)
        );
        let fresh = DeviceClaims {
            issued_at_ms: 3_000,
            ..claims()
        };
        assert!(
            verifier
                .verify(&signer.sign(&fresh), 5_000, &revocations)
                .is_ok()
        );
        let other_device = DeviceClaims {
            device_id: "d2".into(),
            ..claims()
        };
        assert!(
            verifier
                .verify(&signer.sign(&other_device), 5_000, &revocations)
                .is_ok()
        );
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(TokenSigner::from_seed_hex("zz").is_err());
        assert!(TokenSigner::from_seed_hex("00").is_err());
        assert!(TokenVerifier::from_public_key_hex("00").is_err());
        assert!(!format!("{:?}", TokenSigner::from_seed_hex(SEED).unwrap()).contains(SEED));
    }
}
