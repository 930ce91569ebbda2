//! SyncKeys as the phone holds them, mapped onto the mailbox service's
//! tokens so the service itself keeps nothing: `0` asks for a first key;
//! the first key (`F`) stands for "the phone holds nothing yet", so the
//! Sync after it lists the folder from the start; every later key is a
//! mailbox token, which stays valid after its successor is issued (a
//! phone that lost an answer repeats its request and is answered again,
//! never with items missing or twice).

/// A collection's first key, for every collection: a phone's Sync with it
/// lists the folder from the start, as a retried one does too.
pub const FIRST: &str = "F";

/// A SyncKey a phone sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncKey {
    /// `0`: the phone starts (again).
    Zero,
    /// The first key, or a mailbox token ("" for the first).
    Since(String),
}

impl SyncKey {
    /// `None` for a key this service never issues (the phone is told the
    /// key is invalid and starts again).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        match text {
            "0" => Some(Self::Zero),
            FIRST => Some(Self::Since(String::new())),
            token if is_token(token) => Some(Self::Since(token.to_owned())),
            _ => None,
        }
    }
}

/// Whether `text` has the shape of a mailbox service token (whether it
/// is still honoured is the service's to say).
pub fn is_token(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_onto_tokens() {
        assert_eq!(SyncKey::parse("0"), Some(SyncKey::Zero));
        assert_eq!(SyncKey::parse("F"), Some(SyncKey::Since(String::new())));
        let token = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            SyncKey::parse(token),
            Some(SyncKey::Since(token.to_owned()))
        );
        for bad in [
            "",
            "1",
            "{uuid}1",
            &"a".repeat(33),
            "0123456789abcdef0123456789abcdeg",
        ] {
            assert_eq!(SyncKey::parse(bad), None, "{bad}");
        }
    }
}
