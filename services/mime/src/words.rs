//! Header values in whatever charset they came in → text: RFC 2047
//! encoded words (`=?gb2312?B?…?=`), raw 8-bit bytes (Chinese MUAs write
//! GBK headers unencoded), and RFC 2231 parameters (`filename*=gbk''%D6…`),
//! each decoded through [`crate::charset`] instead of mail-parser's own
//! table (see `crate::recode` for why).

use std::borrow::Cow;

use base64::Engine as _;
use base64::alphabet::STANDARD;
use base64::engine::general_purpose::STANDARD as ENCODER;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::charset::Context;

/// Senders drop or garble base64 padding in encoded words; decode anyway.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Longer than any real encoded word's charset (RFC 2047 caps the whole
/// word at 75 characters); a longer "charset" is not one.
const MAX_CHARSET: usize = 64;

/// A piece of a header value.
enum Piece<'a> {
    /// Raw bytes (ASCII, or 8-bit in an undeclared charset).
    Raw(&'a [u8]),
    /// Encoded words in one charset, adjacent (only whitespace between,
    /// which RFC 2047 drops), their bytes joined: senders split a
    /// multi-byte character across two words.
    Words { charset: &'a str, bytes: Vec<u8> },
}

/// Whether a raw value needs our decoding: mail-parser reads plain ASCII
/// right.
pub(crate) fn needs_decoding(raw: &[u8]) -> bool {
    !raw.is_ascii() || raw.windows(2).any(|w| w == b"=?")
}

/// An unstructured value (Subject) as text, read in the message's
/// `context`.
pub(crate) fn text(raw: &[u8], context: &Context) -> String {
    let mut out = String::new();
    for piece in pieces(raw) {
        match piece {
            Piece::Raw(bytes) => out.push_str(&unfold(&context.decode(None, bytes))),
            Piece::Words { charset, bytes } => {
                out.push_str(&context.decode(Some(charset), &bytes));
            }
        }
    }
    out
}

/// A structured value (an address list) rewritten in UTF-8, for
/// mail-parser to parse again: raw bytes decoded in place, encoded words
/// re-encoded as UTF-8 words, so decoded quotes, commas and angle brackets
/// stay inside words and cannot change the structure.
pub(crate) fn to_utf8(raw: &[u8], context: &Context) -> String {
    let mut out = String::new();
    for piece in pieces(raw) {
        match piece {
            Piece::Raw(bytes) => out.push_str(&unfold(&context.decode(None, bytes))),
            Piece::Words { charset, bytes } => {
                let text = context.decode(Some(charset), &bytes);
                if out.ends_with("?=") {
                    out.push(' ');
                }
                out.push_str("=?utf-8?b?");
                out.push_str(&ENCODER.encode(text.as_bytes()));
                out.push_str("?=");
            }
        }
    }
    out
}

/// A header line's folding taken out (its CR LF; the blank stays).
fn unfold(text: &str) -> Cow<'_, str> {
    if text.contains(['\r', '\n']) {
        Cow::Owned(text.replace(['\r', '\n'], ""))
    } else {
        Cow::Borrowed(text)
    }
}

fn pieces(raw: &[u8]) -> Vec<Piece<'_>> {
    let mut out: Vec<Piece<'_>> = Vec::new();
    let mut rest = raw;
    let mut plain = 0;
    while plain < rest.len() {
        if !rest[plain..].starts_with(b"=?") {
            plain += 1;
            continue;
        }
        let Some((charset, bytes, len)) = encoded_word(&rest[plain..]) else {
            plain += 2;
            continue;
        };
        let before = &rest[..plain];
        let joins = before.iter().all(u8::is_ascii_whitespace)
            && matches!(out.last(), Some(Piece::Words { .. }));
        if !joins && !before.is_empty() {
            out.push(Piece::Raw(before));
        }
        match out.last_mut() {
            Some(Piece::Words {
                charset: last,
                bytes: joined,
            }) if joins && last.eq_ignore_ascii_case(charset) => {
                joined.extend(bytes);
            }
            _ => out.push(Piece::Words { charset, bytes }),
        }
        rest = &rest[plain + len..];
        plain = 0;
    }
    if !rest.is_empty() {
        out.push(Piece::Raw(rest));
    }
    out
}

/// The encoded word `raw` starts with: its charset (with any RFC 2231
/// language), its decoded bytes and its length in `raw`.
fn encoded_word(raw: &[u8]) -> Option<(&str, Vec<u8>, usize)> {
    let inner = raw.strip_prefix(b"=?")?;
    let charset_end = inner.iter().position(|b| *b == b'?')?;
    let charset = std::str::from_utf8(&inner[..charset_end]).ok()?;
    if charset.len() > MAX_CHARSET || charset.contains(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let after = &inner[charset_end + 1..];
    let (encoding, payload) = match after {
        [e, b'?', payload @ ..] => (e.to_ascii_uppercase(), payload),
        _ => return None,
    };
    let end = payload.windows(2).position(|w| w == b"?=")?;
    let data = &payload[..end];
    if data.contains(&b'\n') {
        return None;
    }
    let bytes = match encoding {
        b'B' => {
            let data: Vec<u8> = data.iter().copied().filter(|b| *b != b' ').collect();
            LENIENT.decode(data).ok()?
        }
        b'Q' => q_decode(data),
        _ => return None,
    };
    Some((charset, bytes, 2 + charset_end + 3 + end + 2))
}

/// RFC 2047's Q encoding: `_` is a space, `=XX` a byte.
fn q_decode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'_' => out.push(b' '),
            b'=' => match hex_byte(&data[i + 1..]) {
                Some(byte) => {
                    out.push(byte);
                    i += 2;
                }
                None => out.push(b'='),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    out
}

/// The byte two hex digits at the start of `digits` spell.
pub(crate) fn hex_byte(digits: &[u8]) -> Option<u8> {
    let digit = |b: u8| char::from(b).to_digit(16);
    match digits {
        [high, low, ..] => u8::try_from(digit(*high)? * 16 + digit(*low)?).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words_decode_through_the_charset_rules() {
        let table: &[(&[u8], &str)] = &[
            (b"=?gb2312?B?vL62yLGouOY=?=", "季度报告"),
            // GBK bytes under an alias mail-parser does not know.
            (b"=?x-euc-cn?B?vL62yLGouOY=?=", "季度报告"),
            (b"=?cp936?Q?=BC=BE=B6=C8?= report", "季度 report"),
            // One character split across two words; the blank between goes.
            (
                b"=?gbk?B?vL62yA==?=  =?gbk?B?sag=?=\r\n =?gbk?B?uOY=?=",
                "季度报告",
            ),
            // Different charsets side by side.
            (b"=?utf-8?B?5Lya?= =?big5?B?xLM=?=", "会議"),
            (b"=?utf-8*zh?Q?=E4=BC=9A?=", "会"),
            // No padding.
            (b"=?utf-8?B?5Lya6K6u?=", "会议"),
            (b"=?utf-8?B?5Lya6K6u5rK?=", "会议\u{fffd}"),
            // Raw 8-bit GBK with no encoded word; UTF-8 raw stays UTF-8.
            (b"\xbc\xbe\xb6\xc8\xb1\xa8\xb8\xe6", "季度报告"),
            ("会议 notes".as_bytes(), "会议 notes"),
            // Not encoded words: left as they are.
            (b"=?gbk?X?abc?= and =? alone", "=?gbk?X?abc?= and =? alone"),
            (b"=?gb 2312?B?vL62yA==?=", "=?gb 2312?B?vL62yA==?="),
            (b"50% off =?", "50% off =?"),
            (b"line\r\n folded", "line folded"),
        ];
        for (raw, expected) in table {
            assert_eq!(
                text(raw, &Context::default()),
                *expected,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn raw_bytes_take_the_hint_as_their_label() {
        // Two GBK hanzi are valid Big5 too; the body's label decides.
        let gb = Context::with_raw_label("gb2312");
        let big5 = Context::with_raw_label("big5");
        assert_eq!(text(b"\xd6\xd0\xce\xc4", &gb), "中文");
        assert_eq!(text(b"\xa4\xa4\xa4\xe5", &big5), "中文");
    }

    #[test]
    fn structured_values_keep_their_structure() {
        // A Big5 name whose second byte is a backslash, and a decoded name
        // with a comma: both stay one display name.
        let raw = b"\xca\x5c <a@example.hk>, =?utf-8?B?TGksIFdlaQ==?= <b@example.cn>";
        assert_eq!(
            to_utf8(raw, &Context::with_raw_label("big5-hkscs")),
            "佢 <a@example.hk>, =?utf-8?b?TGksIFdlaQ==?= <b@example.cn>"
        );
    }

    #[test]
    fn needs_decoding_only_for_8_bit_or_encoded_words() {
        assert!(!needs_decoding(b"plain subject"));
        assert!(needs_decoding(b"=?utf-8?B?5Lya?="));
        assert!(needs_decoding(b"\xbc\xbe"));
    }
}
