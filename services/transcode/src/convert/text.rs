//! Text in whatever charset it came in → UTF-8. Chinese mail still
//! arrives in GB2312/GBK/GB18030 and Big5, often with a wrong or missing
//! label, so the label is trusted only when the bytes agree with it:
//! a byte-order mark wins; then a declared charset that decodes without
//! errors; then chardetng's guess. A declared Latin-1/Windows-1252 (which
//! decodes any bytes "without errors") is second-guessed when the
//! detector sees something else that decodes cleanly.

use encoding_rs::{Encoding, WINDOWS_1252};

/// The text, and how it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// UTF-8.
    pub text: String,
    /// The WHATWG name of the encoding used (`GBK`, `Big5`, `UTF-8`, …).
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
    if let Some((encoding, bom)) = Encoding::for_bom(bytes) {
        return Ok(decode(&bytes[bom..], encoding, false));
    }
    let declared = declared.and_then(|label| Encoding::for_label(label.trim().as_bytes()));
    if let Some(encoding) = declared {
        let clean = decode(bytes, encoding, false);
        let second_guess = encoding == WINDOWS_1252 && !bytes.is_ascii();
        if !clean.replaced && !second_guess {
            return Ok(clean);
        }
        let guess = detect(bytes);
        if guess.encoding != encoding.name() && !guess.replaced {
            return Ok(guess);
        }
        if !clean.replaced {
            return Ok(clean);
        }
        return Ok(if guess.replaced { clean } else { guess });
    }
    Ok(detect(bytes))
}

fn detect(bytes: &[u8]) -> Decoded {
    // Mail still carries ISO-2022-JP (Japanese mail's traditional charset).
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Allow);
    detector.feed(bytes, true);
    decode(
        bytes,
        detector.guess(None, chardetng::Utf8Detection::Allow),
        true,
    )
}

fn decode(bytes: &[u8], encoding: &'static Encoding, detected: bool) -> Decoded {
    let (text, replaced) = encoding.decode_without_bom_handling(bytes);
    Decoded {
        text: text.into_owned(),
        encoding: encoding.name(),
        detected,
        replaced,
    }
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
