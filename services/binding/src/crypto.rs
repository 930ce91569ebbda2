//! Credentials at rest: AES-256-GCM with a key from config.
//!
//! Sealed form: `version (1 byte) || nonce (12) || ciphertext || tag (16)`.
//! The version byte leaves room for key rotation. The associated data binds
//! a ciphertext to its row (tenant and account), so copying one account's
//! sealed password onto another fails to open instead of leaking across.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

const VERSION: u8 = 1;
const KEY_LEN: usize = 32;

/// Seals and opens credentials.
pub struct CredentialCipher {
    key: LessSafeKey,
    random: SystemRandom,
}

/// Why sealing or opening failed. Deliberately vague about the cause of a
/// failed open: wrong key, wrong row and tampering look the same.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The configured key is not 64 hex digits.
    #[error("credentials key must be 64 hex digits (32 bytes)")]
    BadKey,
    /// The sealed value cannot be opened with this key for this row.
    #[error("sealed credentials cannot be opened")]
    Open,
    /// The system random source failed.
    #[error("no randomness for a nonce")]
    Random,
}

impl std::fmt::Debug for CredentialCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialCipher(<key>)")
    }
}

impl CredentialCipher {
    /// A cipher from a 64-hex-digit key.
    pub fn from_hex(key: &str) -> Result<Self, CryptoError> {
        let bytes = hex::decode(key.trim()).map_err(|_| CryptoError::BadKey)?;
        if bytes.len() != KEY_LEN {
            return Err(CryptoError::BadKey);
        }
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| CryptoError::BadKey)?;
        Ok(Self {
            key: LessSafeKey::new(key),
            random: SystemRandom::new(),
        })
    }

    /// Encrypts `plaintext` for the row described by `row`.
    pub fn seal(&self, plaintext: &[u8], row: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| CryptoError::Random)?;
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(row),
                &mut body,
            )
            .map_err(|_| CryptoError::Random)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + body.len());
        sealed.push(VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&body);
        Ok(sealed)
    }

    /// Decrypts what [`CredentialCipher::seal`] produced for the same row.
    pub fn open(&self, sealed: &[u8], row: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (&version, rest) = sealed.split_first().ok_or(CryptoError::Open)?;
        if version != VERSION || rest.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(CryptoError::Open);
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Open)?;
        let mut body = body.to_vec();
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::from(row), &mut body)
            .map_err(|_| CryptoError::Open)?;
        Ok(plaintext.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const OTHER_KEY: &str = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn round_trip_with_fresh_nonces() {
        let cipher = CredentialCipher::from_hex(KEY).unwrap();
        let a = cipher.seal(b"imap-password", b"tenant/account-1").unwrap();
        let b = cipher.seal(b"imap-password", b"tenant/account-1").unwrap();
        assert_ne!(a, b, "a fresh nonce each time");
        assert!(
            !a.windows(13).any(|w| w == b"imap-password"),
            "no plaintext in the sealed form"
        );
        assert_eq!(
            cipher.open(&a, b"tenant/account-1").unwrap(),
            b"imap-password"
        );
    }

    #[test]
    fn another_row_key_or_a_flipped_bit_fails_to_open() {
        let cipher = CredentialCipher::from_hex(KEY).unwrap();
        let sealed = cipher.seal(b"secret", b"tenant/account-1").unwrap();
        assert_eq!(
            cipher.open(&sealed, b"tenant/account-2"),
            Err(CryptoError::Open)
        );
        let other = CredentialCipher::from_hex(OTHER_KEY).unwrap();
        assert_eq!(
            other.open(&sealed, b"tenant/account-1"),
            Err(CryptoError::Open)
        );
        for i in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 0x01;
            assert_eq!(
                cipher.open(&tampered, b"tenant/account-1"),
                Err(CryptoError::Open),
                "byte {i}"
            );
        }
        assert_eq!(
            cipher.open(&sealed[..10], b"tenant/account-1"),
            Err(CryptoError::Open)
        );
        assert_eq!(
            cipher.open(&[], b"tenant/account-1"),
            Err(CryptoError::Open)
        );
    }

    #[test]
    fn keys_are_validated_and_never_shown() {
        assert_eq!(
            CredentialCipher::from_hex("abc").unwrap_err(),
            CryptoError::BadKey
        );
        assert_eq!(
            CredentialCipher::from_hex(&"zz".repeat(32)).unwrap_err(),
            CryptoError::BadKey
        );
        assert_eq!(
            CredentialCipher::from_hex(&"00".repeat(16)).unwrap_err(),
            CryptoError::BadKey
        );
        let debug = format!("{:?}", CredentialCipher::from_hex(KEY).unwrap());
        assert!(!debug.contains("0001"), "{debug}");
    }
}
