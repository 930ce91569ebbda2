//! Portal sessions: after sign-in with an API key the browser holds a
//! short-lived cookie instead of the key. The cookie is the key and an
//! expiry sealed with ChaCha20-Poly1305 under the gateway's session key,
//! so any gateway replica with the same key can read it and no state is
//! kept; script cannot read it (HttpOnly), other sites cannot send it
//! (SameSite=Strict), and state-changing requests made with it must also
//! carry the `X-Pushmail-Portal` header, which a cross-site form cannot set.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom as _, SystemRandom};
use serde::{Deserialize, Serialize};

/// The cookie's name.
pub const COOKIE: &str = "pm_session";

/// Seals and opens session cookies.
pub struct Sessions {
    key: LessSafeKey,
    ttl_ms: i64,
    secure: bool,
    random: SystemRandom,
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    /// The API key or operator token signed in with.
    k: String,
    /// Expiry, ms since the epoch.
    e: i64,
}

impl Sessions {
    /// From a 32-byte key in hex; empty: a random key (sessions then end
    /// with the process and are not shared between replicas).
    pub fn new(key_hex: &str, ttl_minutes: u64, secure: bool) -> Result<Self, &'static str> {
        let random = SystemRandom::new();
        let key = if key_hex.is_empty() {
            let mut key = [0u8; 32];
            random.fill(&mut key).map_err(|_| "no randomness")?;
            key.to_vec()
        } else {
            hex::decode(key_hex.trim()).map_err(|_| "must be 64 hex digits")?
        };
        let key = UnboundKey::new(&CHACHA20_POLY1305, &key).map_err(|_| "must be 64 hex digits")?;
        Ok(Self {
            key: LessSafeKey::new(key),
            ttl_ms: i64::try_from(ttl_minutes.saturating_mul(60_000)).unwrap_or(i64::MAX),
            secure,
            random,
        })
    }

    /// The `Set-Cookie` value of a new session for `credential`.
    pub fn open_session(&self, credential: &str, now_ms: i64) -> Result<String, &'static str> {
        let sealed = serde_json::to_vec(&Sealed {
            k: credential.to_owned(),
            e: now_ms.saturating_add(self.ttl_ms),
        })
        .map_err(|_| "cannot encode the session")?;
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).map_err(|_| "no randomness")?;
        let mut buffer = sealed;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::from(COOKIE),
                &mut buffer,
            )
            .map_err(|_| "cannot seal the session")?;
        let mut value = nonce.to_vec();
        value.extend_from_slice(&buffer);
        Ok(format!(
            "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
            URL_SAFE_NO_PAD.encode(value),
            self.ttl_ms / 1_000,
            if self.secure { "; Secure" } else { "" }
        ))
    }

    /// The `Set-Cookie` value that ends the session.
    pub fn close_session(&self) -> String {
        format!(
            "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
            if self.secure { "; Secure" } else { "" }
        )
    }

    /// The credential in a cookie value, if it is ours and unexpired.
    pub fn credential(&self, value: &str, now_ms: i64) -> Option<String> {
        let bytes = URL_SAFE_NO_PAD.decode(value.trim()).ok()?;
        if bytes.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buffer = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, ring::aead::Aad::from(COOKIE), &mut buffer)
            .ok()?;
        let session: Sealed = serde_json::from_slice(plain).ok()?;
        (session.e > now_ms).then_some(session.k)
    }
}

/// The session cookie's value among `Cookie` headers.
pub fn cookie_value(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(name, value)| (name == COOKIE).then_some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(set_cookie: &str) -> &str {
        set_cookie
            .strip_prefix("pm_session=")
            .and_then(|v| v.split(';').next())
            .unwrap()
    }

    #[test]
    fn a_session_opens_until_it_expires_and_only_under_its_key() {
        let sessions = Sessions::new(&"ab".repeat(32), 60, true).unwrap();
        let cookie = sessions.open_session("pmk_secret", 1_000).unwrap();
        assert!(
            cookie.contains("HttpOnly; SameSite=Strict; Max-Age=3600; Secure"),
            "{cookie}"
        );
        assert!(!cookie.contains("pmk_secret"));
        let v = value(&cookie);
        assert_eq!(sessions.credential(v, 2_000).as_deref(), Some("pmk_secret"));
        assert_eq!(sessions.credential(v, 1_000 + 3_600_000), None, "expired");
        let other = Sessions::new(&"cd".repeat(32), 60, true).unwrap();
        assert_eq!(other.credential(v, 2_000), None, "another key");
        let mut tampered = URL_SAFE_NO_PAD.decode(v).unwrap();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            sessions.credential(&URL_SAFE_NO_PAD.encode(tampered), 2_000),
            None
        );
        assert_eq!(sessions.credential("garbage!", 2_000), None);
        assert!(Sessions::new("xyz", 60, true).is_err());
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            "a=1; pm_session=xyz; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_value(&headers), Some("xyz"));
    }
}
