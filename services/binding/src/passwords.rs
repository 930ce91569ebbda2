//! Generated relay credentials: a platform-unique username and a long
//! random password, stored as an argon2id hash (PHC string, default
//! parameters: 19 MiB, 2 passes, 1 lane).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

/// Hashing failed (only a broken parameter set or random source does this).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub(crate) struct HashError(argon2::password_hash::Error);

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    hex::encode(buffer)
}

/// A new username: `relay-` and 64 random bits.
pub(crate) fn username() -> String {
    format!("relay-{}", random_hex(8))
}

/// A new password: 256 random bits, prefixed so a leaked one is recognisable.
pub(crate) fn password() -> String {
    format!("pmr_{}", random_hex(32))
}

/// The argon2id PHC string of `password` under a fresh salt.
pub(crate) fn hash(password: &str) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(HashError)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(HashError)
}

/// Whether `password` matches the PHC string `stored` (a malformed one matches nothing).
pub(crate) fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// What a verified login is remembered by: never the password itself.
pub(crate) fn login_digest(username: &str, password: &str) -> [u8; 32] {
    let mut digest = Sha256::new();
    digest.update(username.as_bytes());
    digest.update([0]);
    digest.update(password.as_bytes());
    digest.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_credentials_hash_and_verify() {
        let (user, secret) = (username(), password());
        assert!(user.starts_with("relay-") && user.len() == 22, "{user}");
        assert!(secret.starts_with("pmr_") && secret.len() == 68);
        assert_ne!(password(), secret);
        let stored = hash(&secret).unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(!stored.contains(&secret));
        assert!(verify(&secret, &stored));
        assert!(!verify("pmr_wrong", &stored));
        assert!(!verify(&secret, "not a hash"));
        assert_ne!(hash(&secret).unwrap(), stored, "a fresh salt each time");
        assert_ne!(login_digest("a", "bc"), login_digest("ab", "c"));
    }
}
