//! IMAP's modified UTF-7 for mailbox names (RFC 3501 §5.1.3): what
//! `已发送` or `Entwürfe` look like on the wire, decoded for display. Small
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
    fn what_is_not_modified_utf7_is_shown_as_sent() {
        assert_eq!(decode("&unterminated"), "&unterminated");
        assert_eq!(decode("已发送"), "已发送");
        assert_eq!(decode("&AAA-"), "&AAA-");
        assert_eq!(decode("&AB-"), "&AB-");
    }
}
