//! One-time codes for binding a number: six digits from the system CSPRNG,
//! stored only as an HMAC under a server-side key (a plain hash of a
//! six-digit code is reversed by trying a million values), single-use,
//! expiring, with a bounded number of attempts.

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// How codes are issued and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtpPolicy {
    /// Lifetime of a code, milliseconds.
    pub ttl_ms: i64,
    /// Wrong answers allowed before the code is dead.
    pub max_attempts: u32,
}

/// A code as sent to the phone; never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpCode(String);

impl std::fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OtpCode(<redacted>)")
    }
}

impl OtpCode {
    /// The digits, for the SMS text only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// What is stored for a pending binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCode {
    /// HMAC-SHA256 of the code, hex.
    pub code_mac: String,
    /// Expiry, ms since the epoch.
    pub expires_at_ms: i64,
    /// Wrong answers so far.
    pub attempts: u32,
    /// Set once the code was accepted.
    pub used: bool,
}

/// What sending a new code must fit within; the store checks it in the
/// transaction that records the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendLimits {
    /// Now, ms since the epoch.
    pub now_ms: i64,
    /// The UTC day codes and wrong answers are counted on.
    pub day: jiff::civil::Date,
    /// Least time between two codes to one number from one tenant, ms.
    pub cooldown_ms: i64,
    /// Most codes per number per tenant per day.
    pub per_number: u32,
    /// Codes per tenant per day where the tenant sets none.
    pub per_tenant_default: u32,
    /// Wrong answers per number per tenant per day: once spent, no code is
    /// sent (it could not be entered).
    pub wrong_answers: u32,
}

/// Milliseconds from `now_ms` to the next UTC midnight, when daily caps reset.
pub(crate) fn until_next_day(now_ms: i64) -> i64 {
    const DAY: i64 = 86_400_000;
    DAY - now_ms.rem_euclid(DAY)
}

/// The outcome of checking an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtpCheck {
    /// Correct: the binding is verified and the code is spent.
    Accepted,
    /// Wrong; this many attempts are left.
    Wrong {
        /// Attempts left.
        remaining: u32,
    },
    /// Past its expiry.
    Expired,
    /// Too many wrong answers.
    Exhausted,
    /// Accepted before; codes are single-use.
    AlreadyUsed,
}

/// Issues and checks codes under one HMAC key.
pub struct OtpIssuer {
    key: hmac::Key,
    random: SystemRandom,
    policy: OtpPolicy,
}

impl std::fmt::Debug for OtpIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtpIssuer")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// The random source failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no randomness for a one-time code")]
pub struct OtpError;

impl OtpIssuer {
    /// An issuer with `secret` as HMAC key.
    pub fn new(secret: &[u8], policy: OtpPolicy) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            random: SystemRandom::new(),
            policy,
        }
    }

    /// Wrong answers allowed per number and UTC day.
    pub fn max_attempts(&self) -> u32 {
        self.policy.max_attempts
    }

    /// A fresh code and what to store for it.
    pub fn issue(&self, now_ms: i64) -> Result<(OtpCode, PendingCode), OtpError> {
        // Rejection sampling keeps the six digits uniform.
        let value = loop {
            let mut bytes = [0u8; 4];
            self.random.fill(&mut bytes).map_err(|_| OtpError)?;
            let n = u32::from_be_bytes(bytes);
            if n < u32::MAX - (u32::MAX % 1_000_000) {
                break n % 1_000_000;
            }
        };
        let code = OtpCode(format!("{value:06}"));
        let pending = PendingCode {
            code_mac: self.mac(code.expose()),
            expires_at_ms: now_ms + self.policy.ttl_ms,
            attempts: 0,
            used: false,
        };
        Ok((code, pending))
    }

    /// Checks `answer` and updates `pending` (attempts, used) in place; the
    /// caller stores it in the same transaction that acts on the outcome.
    pub fn check(&self, pending: &mut PendingCode, answer: &str, now_ms: i64) -> OtpCheck {
        if pending.used {
            return OtpCheck::AlreadyUsed;
        }
        if now_ms >= pending.expires_at_ms {
            return OtpCheck::Expired;
        }
        if pending.attempts >= self.policy.max_attempts {
            return OtpCheck::Exhausted;
        }
        let expected = hex::decode(&pending.code_mac).unwrap_or_default();
        if hmac::verify(&self.key, answer.trim().as_bytes(), &expected).is_ok() {
            pending.used = true;
            return OtpCheck::Accepted;
        }
        pending.attempts += 1;
        match self.policy.max_attempts - pending.attempts {
            0 => OtpCheck::Exhausted,
            remaining => OtpCheck::Wrong { remaining },
        }
    }

    fn mac(&self, code: &str) -> String {
        hex::encode(hmac::sign(&self.key, code.as_bytes()).as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: OtpPolicy = OtpPolicy {
        ttl_ms: 300_000,
        max_attempts: 3,
    };

    fn issuer() -> OtpIssuer {
        OtpIssuer::new(b"server-side otp key", POLICY)
    }

    #[test]
    fn right_code_is_accepted_once() {
        let issuer = issuer();
        let (code, mut pending) = issuer.issue(1_000).unwrap();
        assert_eq!(code.expose().len(), 6);
        assert!(!pending.code_mac.contains(code.expose()), "stored as a MAC");
        assert_eq!(
            issuer.check(&mut pending, code.expose(), 2_000),
            OtpCheck::Accepted
        );
        assert_eq!(
            issuer.check(&mut pending, code.expose(), 2_001),
            OtpCheck::AlreadyUsed
        );
    }

    #[test]
    fn wrong_answers_count_down_then_exhaust_even_the_right_code() {
        let issuer = issuer();
        let (code, mut pending) = issuer.issue(0).unwrap();
        let wrong = if code.expose() == "000000" {
            "000001"
        } else {
            "000000"
        };
        assert_eq!(
            issuer.check(&mut pending, wrong, 1),
            OtpCheck::Wrong { remaining: 2 }
        );
        assert_eq!(
            issuer.check(&mut pending, "", 2),
            OtpCheck::Wrong { remaining: 1 }
        );
        assert_eq!(issuer.check(&mut pending, wrong, 3), OtpCheck::Exhausted);
        assert_eq!(
            issuer.check(&mut pending, code.expose(), 4),
            OtpCheck::Exhausted
        );
    }

    #[test]
    fn daily_caps_reset_at_utc_midnight() {
        assert_eq!(until_next_day(0), 86_400_000);
        assert_eq!(until_next_day(86_399_999), 1);
        assert_eq!(until_next_day(1_764_115_199_000), 1_000);
    }

    #[test]
    fn expired_code_is_refused() {
        let issuer = issuer();
        let (code, mut pending) = issuer.issue(0).unwrap();
        assert_eq!(
            issuer.check(&mut pending, code.expose(), POLICY.ttl_ms),
            OtpCheck::Expired
        );
    }

    #[test]
    fn another_key_cannot_verify_and_codes_vary() {
        let (code, mut pending) = issuer().issue(0).unwrap();
        let other = OtpIssuer::new(b"another key", POLICY);
        assert!(matches!(
            other.check(&mut pending, code.expose(), 1),
            OtpCheck::Wrong { .. }
        ));
        let codes: std::collections::HashSet<String> = (0..50)
            .map(|_| issuer().issue(0).unwrap().0.expose().to_owned())
            .collect();
        assert!(codes.len() > 40, "codes look random: {}", codes.len());
        assert!(!format!("{code:?}").contains(code.expose()));
    }
}
