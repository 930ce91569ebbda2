//! Generated passwords, stored as argon2id hashes (PHC string, default
//! parameters: 19 MiB, 2 passes, 1 lane): relay credentials (a
//! platform-unique username and a long random password) and app passwords
//! (short enough to type on a phone, with a lookup key).

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

/// App passwords are typed on a phone: lowercase letters and digits, no
/// 0/o, 1/l/i look-alikes, in four groups of four.
const APP_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
const APP_GROUPS: usize = 4;
const APP_GROUP_LEN: usize = 4;

/// A new app password, `xxxx-xxxx-xxxx-xxxx` (16 of 31 symbols: 79 bits).
/// The first group is its lookup key, kept in clear beside the hash; the
/// rest (59 bits, argon2id, a lockout budget) is what a guesser faces.
pub(crate) fn app_password() -> String {
    let mut groups = Vec::with_capacity(APP_GROUPS);
    for _ in 0..APP_GROUPS {
        let group: String = (0..APP_GROUP_LEN)
            .map(|_| {
                let index = rand::random_range(0..APP_ALPHABET.len());
                char::from(APP_ALPHABET[index])
            })
            .collect();
        groups.push(group);
    }
    groups.join("-")
}

/// An app password as typed, normalised (case, spaces and dashes
/// dropped), split into its lookup key and the whole normalised text;
/// `None` when it cannot be one.
pub(crate) fn split_app_password(typed: &str) -> Option<(String, String)> {
    let normal: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let well_formed = normal.len() == APP_GROUPS * APP_GROUP_LEN
        && normal.bytes().all(|b| APP_ALPHABET.contains(&b));
    well_formed.then(|| (normal[..APP_GROUP_LEN].to_owned(), normal))
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

    #[test]
    fn app_passwords_are_typeable_and_normalise() {
        let typed = app_password();
        assert_eq!(typed.len(), 19, "{typed}");
        assert_eq!(typed.matches('-').count(), 3);
        assert!(!typed.contains(['0', 'o', '1', 'l', 'i']));
        let (lookup, normal) = split_app_password(&typed).unwrap();
        assert_eq!(normal, typed.replace('-', ""));
        assert_eq!(lookup, typed[..4]);
        let shouted = format!(" {} ", typed.to_ascii_uppercase().replace('-', " "));
        assert_eq!(split_app_password(&shouted).unwrap().1, normal);
        assert!(split_app_password("abcd-efgh-jkmn").is_none(), "too short");
        assert!(
            split_app_password("abcd-efgh-jkmn-pqr0").is_none(),
            "0 is not used"
        );
        assert!(split_app_password("").is_none());
        assert_ne!(app_password(), typed);
    }
}
