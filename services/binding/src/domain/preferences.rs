//! Push preferences per binding.

use super::QuietHours;

/// Most entries one address list may hold.
pub(crate) const MAX_LIST_ENTRIES: usize = 500;
/// Longest signature, in characters.
pub(crate) const MAX_SIGNATURE_CHARS: usize = 2_000;

/// How much a push reveals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentLevel {
    /// "New mail" only.
    Notice,
    /// Subject and sender.
    SubjectSender,
    /// Subject, sender and a text snippet.
    SubjectSenderSnippet,
}

impl ContentLevel {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notice => "notice",
            Self::SubjectSender => "subject_sender",
            Self::SubjectSenderSnippet => "subject_sender_snippet",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::Notice,
            Self::SubjectSender,
            Self::SubjectSenderSnippet,
        ]
        .into_iter()
        .find(|level| level.as_str() == value)
    }
}

/// Why preferences were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreferencesError {
    /// A list entry is neither `user@domain` nor `@domain`.
    #[error("list entry {0:?} is not an address or @domain")]
    Entry(String),
    /// A list is longer than [`MAX_LIST_ENTRIES`].
    #[error("a list may hold at most {MAX_LIST_ENTRIES} entries, got {0}")]
    ListTooLong(usize),
    /// The signature is longer than [`MAX_SIGNATURE_CHARS`].
    #[error("signature may be at most {MAX_SIGNATURE_CHARS} characters")]
    SignatureTooLong,
    /// The size cap is outside 64 B – 1 MiB.
    #[error("max_push_bytes must be between 64 and 1048576")]
    MaxPushBytes,
}

/// A black or white list: exact addresses and whole domains, lowercased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressList(Vec<String>);

impl AddressList {
    /// Validates and normalises entries (duplicates dropped, order kept).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, PreferencesError> {
        if entries.len() > MAX_LIST_ENTRIES {
            return Err(PreferencesError::ListTooLong(entries.len()));
        }
        let mut out: Vec<String> = Vec::with_capacity(entries.len());
        for entry in entries {
            let entry = entry.as_ref().trim().to_lowercase();
            let (local, domain) = entry
                .rsplit_once('@')
                .ok_or_else(|| PreferencesError::Entry(entry.clone()))?;
            let domain_ok = domain.contains('.')
                && domain.len() <= 253
                && domain
                    .split('.')
                    .all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-'));
            if !domain_ok
                || local.len() > 64
                || local.contains(char::is_whitespace)
                || local.contains('@')
            {
                return Err(PreferencesError::Entry(entry));
            }
            if !out.contains(&entry) {
                out.push(entry);
            }
        }
        Ok(Self(out))
    }

    /// Whether `address` is listed, exactly or by its domain.
    pub fn matches(&self, address: &str) -> bool {
        let address = address.trim().to_lowercase();
        let domain = address.rsplit_once('@').map(|(_, d)| format!("@{d}"));
        self.0
            .iter()
            .any(|e| *e == address || Some(e) == domain.as_ref())
    }

    /// The entries.
    pub fn entries(&self) -> &[String] {
        &self.0
    }
}

/// Preferences of one binding.
#[derive(Debug, Clone, PartialEq)]
pub struct Preferences {
    /// How much a push reveals.
    pub content_level: ContentLevel,
    /// Cap on a push's size; snippets are cut to fit.
    pub max_push_bytes: u32,
    /// Whether pushes list attachments.
    pub attachments: bool,
    /// When pushes wait for a digest.
    pub quiet_hours: Option<QuietHours>,
    /// Senders never pushed.
    pub black_list: AddressList,
    /// Senders always pushed (wins over the black list).
    pub white_list: AddressList,
    /// Appended to replies.
    pub signature: String,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            content_level: ContentLevel::SubjectSender,
            max_push_bytes: 4_096,
            attachments: true,
            quiet_hours: None,
            black_list: AddressList::default(),
            white_list: AddressList::default(),
            signature: String::new(),
        }
    }
}

impl Preferences {
    /// Checks what the lists and quiet hours did not check on construction.
    pub fn validate(&self) -> Result<(), PreferencesError> {
        if !(64..=1_048_576).contains(&self.max_push_bytes) {
            return Err(PreferencesError::MaxPushBytes);
        }
        if self.signature.chars().count() > MAX_SIGNATURE_CHARS {
            return Err(PreferencesError::SignatureTooLong);
        }
        Ok(())
    }

    /// Whether mail from `sender` may be pushed: the white list wins, then
    /// the black list blocks.
    #[cfg(test)]
    pub(crate) fn allows_sender(&self, sender: &str) -> bool {
        self.white_list.matches(sender) || !self.black_list.matches(sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_normalise_and_match_by_address_or_domain() {
        let list =
            AddressList::parse(&["Boss@Example.COM", "@spam.example", "boss@example.com"]).unwrap();
        assert_eq!(list.entries(), ["boss@example.com", "@spam.example"]);
        assert!(list.matches("BOSS@example.com"));
        assert!(list.matches("anyone@spam.example"));
        assert!(!list.matches("other@example.com"));
        assert!(!list.matches("x@notspam.example"));
    }

    #[test]
    fn bad_entries_and_oversized_lists_are_refused() {
        for bad in [
            "",
            "nobody",
            "a@b",
            "a b@example.com",
            "@",
            "a@exa mple.com",
            "a@.com",
        ] {
            assert!(AddressList::parse(&[bad]).is_err(), "{bad:?}");
        }
        let many: Vec<String> = (0..=MAX_LIST_ENTRIES)
            .map(|i| format!("u{i}@example.com"))
            .collect();
        assert_eq!(
            AddressList::parse(&many),
            Err(PreferencesError::ListTooLong(MAX_LIST_ENTRIES + 1))
        );
    }

    #[test]
    fn white_list_wins_over_black_list() {
        let preferences = Preferences {
            black_list: AddressList::parse(&["@example.com"]).unwrap(),
            white_list: AddressList::parse(&["boss@example.com"]).unwrap(),
            ..Preferences::default()
        };
        assert!(preferences.allows_sender("boss@example.com"));
        assert!(!preferences.allows_sender("spam@example.com"));
        assert!(preferences.allows_sender("friend@elsewhere.org"));
    }

    #[test]
    fn limits_are_checked() {
        let long = Preferences {
            signature: "签".repeat(MAX_SIGNATURE_CHARS + 1),
            ..Preferences::default()
        };
        assert_eq!(long.validate(), Err(PreferencesError::SignatureTooLong));
        let tiny = Preferences {
            max_push_bytes: 10,
            ..Preferences::default()
        };
        assert_eq!(tiny.validate(), Err(PreferencesError::MaxPushBytes));
        assert_eq!(Preferences::default().validate(), Ok(()));
    }
}
