//! Text in whatever charset it came in → UTF-8. The rules are the mail
//! summaries' (`pushmail_mime::charset`: a byte-order mark, the label
//! through an alias table when the bytes agree with it, then detection),
//! so a mail reads the same in the push and on the phone.

use pushmail_mime::charset::{self, ChosenBy};

/// The text, and how it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// UTF-8.
    pub text: String,
    /// The WHATWG name of the encoding used (`gb18030`, `Big5`, `UTF-8`, …).
    pub encoding: &'static str,
    /// The encoding was guessed, not declared or marked.
    pub detected: bool,
    /// Some bytes were invalid and replaced with U+FFFD.
    pub replaced: bool,
}

/// Why text was not converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// More input than the limit allows.
    #[error("text of {size} bytes is over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
}

/// Decodes `bytes`, declared as `declared` (a MIME charset label) if known,
/// refusing input over `limit` bytes.
pub fn to_utf8(bytes: &[u8], declared: Option<&str>, limit: usize) -> Result<Decoded, TextError> {
    if bytes.len() > limit {
        return Err(TextError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    let decoded = charset::decode_detailed(declared, bytes);
    Ok(Decoded {
        text: decoded.text.into_owned(),
        encoding: decoded.encoding.name(),
        detected: decoded.chosen_by == ChosenBy::Detection,
        replaced: decoded.replaced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_passes_and_a_bom_decides() {
        let plain = to_utf8("会议纪要".as_bytes(), None, 1_000).unwrap();
        assert_eq!((plain.text.as_str(), plain.encoding), ("会议纪要", "UTF-8"));
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend("hé".encode_utf16().flat_map(u16::to_le_bytes));
        let decoded = to_utf8(&utf16, Some("gbk"), 1_000).unwrap();
        assert_eq!(
            (decoded.text.as_str(), decoded.encoding),
            ("hé", "UTF-16LE")
        );
    }

    #[test]
    fn too_much_input_is_refused_and_garbage_is_replaced_not_fatal() {
        assert_eq!(
            to_utf8(&[b'a'; 11], None, 10),
            Err(TextError::TooLarge {
                size: 11,
                limit: 10
            })
        );
        let garbage = to_utf8(&[0xFF, 0xFE, 0xFD, 0x00, 0x81], Some("utf-8"), 100).unwrap();
        assert!(!garbage.text.is_empty());
    }
}
