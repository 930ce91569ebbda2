//! Plain-text SMS: GSM 03.38 default alphabet (with its extension table)
//! when every character fits, UCS-2 otherwise; 160 septets or 70 UCS-2
//! units in one SMS, 153 or 67 per part of a concatenated message (3GPP TS
//! 23.038 and 23.040). An escaped character is never split across parts,
//! nor is a UTF-16 surrogate pair.

use super::{Coding, Segment, concat_ie};

/// The GSM 03.38 default alphabet, by code.
const DEFAULT: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1b}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// The extension table: escape (0x1B) then the code.
const EXTENSION: [(char, u8); 10] = [
    ('\u{c}', 0x0A),
    ('^', 0x14),
    ('{', 0x28),
    ('}', 0x29),
    ('\\', 0x2F),
    ('[', 0x3C),
    ('~', 0x3D),
    (']', 0x3E),
    ('|', 0x40),
    ('€', 0x65),
];

const SINGLE_GSM: usize = 160;
const PART_GSM: usize = 153;
const SINGLE_UCS2: usize = 70;
const PART_UCS2: usize = 67;

/// The septets of `c` in the default alphabet, if it has them.
fn gsm(c: char) -> Option<Vec<u8>> {
    if c == '\u{1b}' {
        return None;
    }
    if let Some(code) = DEFAULT.iter().position(|&d| d == c) {
        return Some(vec![u8::try_from(code).unwrap_or(0x3F)]);
    }
    EXTENSION
        .iter()
        .find(|(e, _)| *e == c)
        .map(|(_, code)| vec![0x1B, *code])
}

/// Splits `text` into SMS segments; `reference` ties the parts together.
pub fn segments(text: &str, reference: u8) -> Vec<Segment> {
    let encoded: Option<Vec<Vec<u8>>> = text.chars().map(gsm).collect();
    let (coding, units, single, part) = match encoded {
        Some(septets) => (Coding::Gsm7, septets, SINGLE_GSM, PART_GSM),
        None => (
            Coding::Ucs2,
            text.chars()
                .map(|c| {
                    let mut buf = [0u16; 2];
                    c.encode_utf16(&mut buf)
                        .iter()
                        .flat_map(|u| u.to_be_bytes())
                        .collect()
                })
                .collect(),
            SINGLE_UCS2 * 2,
            PART_UCS2 * 2,
        ),
    };
    let total: usize = units.iter().map(Vec::len).sum();
    if total <= single {
        return vec![Segment {
            coding,
            udh: Vec::new(),
            user_data: units.concat(),
        }];
    }
    // Whole characters per part: an escape pair or a surrogate pair stays together.
    let mut parts: Vec<Vec<u8>> = vec![Vec::new()];
    for unit in units {
        if parts.last().is_some_and(|p| p.len() + unit.len() > part) {
            parts.push(Vec::new());
        }
        if let Some(last) = parts.last_mut() {
            last.extend_from_slice(&unit);
        }
    }
    let count = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(i, user_data)| {
            let mut udh = vec![0x05];
            udh.extend_from_slice(&concat_ie(reference, count, i + 1));
            Segment {
                coding,
                udh,
                user_data,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_latin_text_is_one_gsm_sms() {
        let s = segments("New mail from Boss: Q3 report", 1);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].coding, Coding::Gsm7);
        assert!(s[0].udh.is_empty());
        assert_eq!(s[0].user_data.len(), 29);
        assert_eq!(s[0].user_data[0], b'N');
        assert_eq!(segments("@", 1)[0].user_data, [0x00]);
    }

    #[test]
    fn the_extension_table_costs_two_septets_and_stays_whole() {
        assert_eq!(segments("€", 1)[0].user_data, [0x1B, 0x65]);
        // 159 plain + one escaped = 161 septets: two parts.
        let text = format!("{}€", "a".repeat(159));
        let s = segments(&text, 7);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].user_data.len(), 153);
        assert_eq!(
            s[1].user_data,
            [b'a'; 6]
                .iter()
                .copied()
                .chain([0x1B, 0x65])
                .collect::<Vec<_>>()
        );
        // An escape pair at the boundary moves whole to the next part.
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(10));
        let s = segments(&text, 7);
        assert_eq!(s[0].user_data.len(), 152);
        assert_eq!(s[1].user_data[..3], [0x1B, 0x65, b'b']);
    }

    #[test]
    fn exactly_160_septets_is_one_sms_and_161_two() {
        assert_eq!(segments(&"x".repeat(160), 1).len(), 1);
        let s = segments(&"x".repeat(161), 9);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].udh, [0x05, 0x00, 0x03, 9, 2, 1]);
        assert_eq!(s[1].udh, [0x05, 0x00, 0x03, 9, 2, 2]);
        assert_eq!(s[0].user_data.len() + s[1].user_data.len(), 161);
        assert_eq!(segments(&"x".repeat(306), 1).len(), 2);
        assert_eq!(segments(&"x".repeat(307), 1).len(), 3);
    }

    #[test]
    fn chinese_goes_ucs2_with_70_and_67_unit_limits() {
        let s = segments("新邮件：季度报告", 1);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].coding, Coding::Ucs2);
        assert_eq!(s[0].user_data[..2], [0x65, 0xB0]); // 新 U+65B0
        assert_eq!(segments(&"邮".repeat(70), 1).len(), 1);
        let s = segments(&"邮".repeat(71), 1);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].user_data.len(), 134);
        // One character outside GSM makes the whole message UCS-2.
        assert_eq!(segments("Hello 世", 1)[0].coding, Coding::Ucs2);
    }

    #[test]
    fn surrogate_pairs_are_not_split() {
        // 66 BMP characters then an emoji (two UTF-16 units): 68 units, two parts.
        let text = format!("{}😀{}", "邮".repeat(66), "邮".repeat(4));
        let s = segments(&text, 1);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].user_data.len(), 132, "the pair moved whole");
        assert_eq!(
            &s[1].user_data[..4],
            "😀"
                .encode_utf16()
                .flat_map(u16::to_be_bytes)
                .collect::<Vec<_>>()
                .as_slice()
        );
    }
}
