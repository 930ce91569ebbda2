//! IMAP's modified UTF-7 for mailbox names (RFC 3501 §5.1.3): what
//! `已发送` or `Entwürfe` look like on the wire, decoded for display and
//! encoded for a folder a phone makes or renames. Small
//! enough to own: the crate that covers it pulls an old base64 and regex.

use base64::Engine as _;
use base64::alphabet::IMAP_MUTF7;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

const ENGINE: GeneralPurpose = GeneralPurpose::new(
    &IMAP_MUTF7,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// A mailbox name as shown to a person; a name that is not valid modified
/// UTF-7 (some servers send raw UTF-8) is shown as it is.
pub(crate) fn decode(raw: &str) -> String {
    try_decode(raw).unwrap_or_else(|| raw.to_owned())
}

/// A name as it goes on the wire: printable ASCII as it is (`&` as `&-`),
/// every other run as `&` + modified base64 of its UTF-16 + `-`.
pub(crate) fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut run: Vec<u16> = Vec::new();
    let flush = |run: &mut Vec<u16>, out: &mut String| {
        if !run.is_empty() {
            let bytes: Vec<u8> = run.iter().flat_map(|unit| unit.to_be_bytes()).collect();
            out.push('&');
            out.push_str(&ENGINE.encode(bytes));
            out.push('-');
            run.clear();
        }
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut run, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            run.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut run, &mut out);
    out
}

fn try_decode(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let end = after.find('-')?;
        let encoded = &after[..end];
        if encoded.is_empty() {
            out.push('&');
        } else {
            let bytes = ENGINE.decode(encoded).ok()?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
                .collect();
            let text = String::from_utf16(&units).ok()?;
            if text.chars().any(char::is_control) {
                return None;
            }
            out.push_str(&text);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_real_servers_decode() {
        assert_eq!(decode("INBOX"), "INBOX");
        assert_eq!(decode("&XfJT0ZAB-"), "已发送");
        assert_eq!(decode("&g0l6P3ux-"), "草稿箱");
        assert_eq!(decode("Entw&APw-rfe"), "Entwürfe");
        assert_eq!(decode("Tom &- Jerry"), "Tom & Jerry");
        assert_eq!(
            decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            "~peter/mail/台北/日本語"
        );
    }

    #[test]
    fn names_encode_as_servers_write_them_and_round_trip() {
        for (name, wire) in [
            ("INBOX", "INBOX"),
            ("已发送", "&XfJT0ZAB-"),
            ("Entwürfe", "Entw&APw-rfe"),
            ("Tom & Jerry", "Tom &- Jerry"),
            ("台北/日本語", "&U,BTFw-/&ZeVnLIqe-"),
        ] {
            assert_eq!(encode(name), wire);
            assert_eq!(decode(wire), name);
        }
        // Outside the BMP: a surrogate pair in one run.
        let emoji = "Reisen ✈️ 🏖";
        assert_eq!(decode(&encode(emoji)), emoji);
        assert!(encode(emoji).is_ascii());
    }

    #[test]
    fn what_is_not_modified_utf7_is_shown_as_sent() {
        assert_eq!(decode("&unterminated"), "&unterminated");
        assert_eq!(decode("已发送"), "已发送");
        assert_eq!(decode("&AAA-"), "&AAA-");
        assert_eq!(decode("&AB-"), "&AB-");
    }
}
