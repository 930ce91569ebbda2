//! Phone numbers (MSISDN) in E.164.
//!
//! Input from portals and phones comes in many shapes ("138 0013 8000",
//! "+86-138-0013-8000", "008613800138000"); it is normalised to
//! `+<country code><number>`. Mainland China (+86) numbers must be mobile
//! numbers — eleven digits starting 13–19 — since only those receive SMS
//! wake-ups; other countries are checked against E.164's shape (country code
//! not starting with 0, 8–15 digits in all).

use std::fmt;

/// A validated E.164 phone number, e.g. `+8613800138000`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Msisdn(String);

/// Why a phone number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsisdnError {
    /// Empty after removing separators.
    #[error("phone number is empty")]
    Empty,
    /// A character other than digits, a leading '+' and separators.
    #[error(
        "phone number contains {0:?}; only digits, '+', spaces, '-', '.', '(' and ')' are allowed"
    )]
    BadCharacter(char),
    /// No country code: E.164 needs '+' or an international prefix.
    #[error("phone number needs a country code (start with '+', e.g. +86)")]
    NoCountryCode,
    /// Too short or too long for E.164.
    #[error("phone number has {0} digits; E.164 allows 8 to 15")]
    Length(usize),
    /// Country codes never start with 0.
    #[error("country code cannot start with 0")]
    BadCountryCode,
    /// A +86 number that is not a mainland mobile number.
    #[error("+86 numbers must be mainland mobile numbers: 11 digits starting 13-19")]
    NotChinaMobile,
}

impl Msisdn {
    /// Parses and normalises a number. A bare 11-digit number starting 1[3-9]
    /// is taken as a mainland mobile number (the carrier's home market);
    /// anything else needs a country code.
    pub fn parse(input: &str) -> Result<Self, MsisdnError> {
        let mut digits = String::with_capacity(input.len());
        let mut plus = false;
        for c in input.trim().chars() {
            match c {
                '0'..='9' => digits.push(c),
                '+' if digits.is_empty() && !plus => plus = true,
                ' ' | '-' | '.' | '(' | ')' => {}
                other => return Err(MsisdnError::BadCharacter(other)),
            }
        }
        if digits.is_empty() {
            return Err(MsisdnError::Empty);
        }
        let international = if plus {
            digits
        } else if let Some(rest) = digits.strip_prefix("00") {
            rest.to_owned()
        } else if is_china_mobile(&digits) {
            format!("86{digits}")
        } else {
            return Err(MsisdnError::NoCountryCode);
        };
        if international.starts_with('0') {
            return Err(MsisdnError::BadCountryCode);
        }
        if !(8..=15).contains(&international.len()) {
            return Err(MsisdnError::Length(international.len()));
        }
        if let Some(national) = international.strip_prefix("86")
            && !is_china_mobile(national)
        {
            return Err(MsisdnError::NotChinaMobile);
        }
        Ok(Self(format!("+{international}")))
    }

    /// The number as `+<digits>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the number is a mainland China mobile number.
    #[cfg(test)]
    pub(crate) fn is_china_mobile(&self) -> bool {
        self.0.starts_with("+86")
    }
}

fn is_china_mobile(national: &str) -> bool {
    let bytes = national.as_bytes();
    bytes.len() == 11 && bytes[0] == b'1' && (b'3'..=b'9').contains(&bytes[1])
}

impl fmt::Display for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_shapes_normalise_to_e164() {
        for (input, expected) in [
            ("+8613800138000", "+8613800138000"),
            ("+86 138-0013-8000", "+8613800138000"),
            ("008613800138000", "+8613800138000"),
            ("13800138000", "+8613800138000"),
            ("(+86) 199 1234 5678", "+8619912345678"),
            ("+44 20 7946 0958", "+442079460958"),
            ("+1 (415) 555-2671", "+14155552671"),
            ("+852 9123 4567", "+85291234567"),
        ] {
            assert_eq!(Msisdn::parse(input).unwrap().as_str(), expected, "{input}");
        }
    }

    #[test]
    fn refusals_say_why() {
        for (input, expected) in [
            ("", MsisdnError::Empty),
            ("  - ", MsisdnError::Empty),
            ("+86 138x", MsisdnError::BadCharacter('x')),
            ("86+13800138000", MsisdnError::BadCharacter('+')),
            ("4155552671", MsisdnError::NoCountryCode),
            ("+0123456789", MsisdnError::BadCountryCode),
            ("+1234567", MsisdnError::Length(7)),
            ("+1234567890123456", MsisdnError::Length(16)),
            ("+861012345678", MsisdnError::NotChinaMobile),
            ("+8612800138000", MsisdnError::NotChinaMobile),
            ("+86138001380001", MsisdnError::NotChinaMobile),
        ] {
            assert_eq!(Msisdn::parse(input), Err(expected), "{input:?}");
        }
    }

    #[test]
    fn china_mobile_is_recognised() {
        assert!(Msisdn::parse("13800138000").unwrap().is_china_mobile());
        assert!(!Msisdn::parse("+442079460958").unwrap().is_china_mobile());
    }
}
