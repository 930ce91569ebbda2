//! Bytes in a declared (or undeclared, or wrongly declared) charset →
//! text: an alias table for the labels mail carries, then detection.
//! Chinese mail still arrives in GB2312/GBK/GB18030 and Big5, often
//! labelled with a name the WHATWG list lacks or with the wrong one, so a
//! label is a hint, trusted when the bytes agree with it:
//!
//! 1. A byte-order mark decides; a UTF-16 label is taken as given.
//! 2. The label goes through [`resolve`] (WHATWG labels, then mail
//!    aliases; `gb2312`/`gbk` read as GB18030, their superset, as every
//!    mail client does). An unknown label counts as none.
//! 3. Non-ASCII bytes that are UTF-8, but for at most a few broken
//!    sequences, are UTF-8 whatever the label: legacy CJK text is almost
//!    never valid UTF-8, while UTF-8 labelled `us-ascii`, `iso-8859-1` or
//!    `gb2312` is common (and GB18030 reads an even number of UTF-8 hanzi
//!    "without errors").
//! 4. A label is trusted when the bytes decode under it without errors and
//!    the decode is plausible: chardetng's guess is the same family, or a
//!    single-byte encoding (no evidence against the label), or, against a
//!    CJK label, a CJK reading no less odd than the label's (see
//!    `oddity`). Latin-1 bytes that chardetng reads as GBK, and Big5 bytes
//!    labelled `gb2312` (which GB18030 reads "cleanly" into private-use
//!    characters and kana), are overridden.
//! 5. A label whose decode fails yields to the guess when that reads the
//!    bytes cleanly (a CJK label only to a CJK reading); otherwise the
//!    label's decode stands, with U+FFFD only where it failed.
//!
//! No label: chardetng's guess (a short text read as GB18030 when that
//! reads it cleanly, see `short_text_bias`).
//!
//! Header words are a few characters long, too short to judge alone; the
//! body is long. A [`Context`] carries what the body showed to the rest of
//! the message: a sender whose body is mislabelled mislabels its headers
//! the same way, and writes raw 8-bit headers in its body's charset.
//! The callers in this crate and transcode's text converter go through
//! this module so a mail reads the same in the push and on the phone.

mod labels;

use std::borrow::Cow;

use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};
use encoding_rs::{
    BIG5, EUC_JP, EUC_KR, Encoding, GB18030, GBK, ISO_2022_JP, SHIFT_JIS, UTF_8, UTF_16BE, UTF_16LE,
};

pub use labels::resolve;

/// Text decoded from bytes, and how it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// The text (borrowed when the bytes were already UTF-8).
    pub text: Cow<'a, str>,
    /// The encoding used.
    pub encoding: &'static Encoding,
    /// What chose the encoding.
    pub chosen_by: ChosenBy,
    /// Some bytes decoded under no candidate and became U+FFFD.
    pub replaced: bool,
}

/// What chose the encoding of a [`Decoded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChosenBy {
    /// A byte-order mark.
    Bom,
    /// The declared label (through the alias table).
    Label,
    /// Detection: no usable label, or the bytes contradicted it.
    Detection,
}

/// What one message's body showed about its charset, for reading its
/// headers (see the module doc).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Context {
    /// The encoding the body was read in: the label for raw 8-bit bytes.
    body: Option<&'static Encoding>,
    /// The body's label and what its bytes were read as instead, when the
    /// bytes contradicted it.
    corrected: Option<(&'static Encoding, &'static Encoding)>,
}

impl Context {
    /// The body, decoded under `label`, and what that showed. ASCII and
    /// UTF-8 bodies show nothing beyond their label.
    pub fn from_body<'a>(label: Option<&str>, body: &'a [u8]) -> (Self, Cow<'a, str>) {
        let declared = label.and_then(resolve);
        let read = decode_detailed(label, body);
        let detected = read.chosen_by == ChosenBy::Detection;
        let corrected = declared
            .filter(|_| detected && !read.replaced)
            .map(|declared| (declared, read.encoding));
        // An ASCII or UTF-8 body says nothing about raw header bytes,
        // which are then judged on their own.
        let body = if detected && read.encoding == UTF_8 {
            declared
        } else {
            Some(read.encoding)
        };
        (Self { body, corrected }, read.text)
    }

    /// A context that only labels raw bytes, as `label` does.
    pub fn with_raw_label(label: &str) -> Self {
        Self {
            body: resolve(label),
            corrected: None,
        }
    }

    /// [`decode`] in this message: bytes without a usable label read first
    /// as the body was, and the body's label read as the body's bytes were.
    pub fn decode<'a>(&self, label: Option<&str>, bytes: &'a [u8]) -> Cow<'a, str> {
        let declared = label.and_then(resolve).or(self.body);
        let declared = match (declared, self.corrected) {
            (Some(declared), Some((from, to))) if family(declared) == family(from) => Some(to),
            _ => declared,
        };
        match declared {
            Some(encoding) => decode(Some(encoding.name()), bytes),
            None => decode(label, bytes),
        }
    }
}

/// `bytes` as text, read as `label` says when the bytes agree (see the
/// module doc). Never fails: what no charset decodes becomes U+FFFD.
pub fn decode<'a>(label: Option<&str>, bytes: &'a [u8]) -> Cow<'a, str> {
    decode_detailed(label, bytes).text
}

/// [`decode`], telling which encoding was used and why.
pub fn decode_detailed<'a>(label: Option<&str>, bytes: &'a [u8]) -> Decoded<'a> {
    if let Some((encoding, bom)) = Encoding::for_bom(bytes) {
        return read(&bytes[bom..], encoding, ChosenBy::Bom);
    }
    let declared = label.and_then(resolve);
    let by_label = if declared.is_some() {
        ChosenBy::Label
    } else {
        ChosenBy::Detection
    };
    // UTF-16 is not ASCII-compatible: the bytes cannot be second-guessed.
    if let Some(utf16) = declared.filter(|e| *e == UTF_16LE || *e == UTF_16BE) {
        return read(bytes, utf16, ChosenBy::Label);
    }
    let ascii = bytes.is_ascii();
    // Escape sequences are how ISO-2022-JP looks in 7 bits.
    if ascii && !bytes.contains(&0x1B) {
        return read(bytes, declared.unwrap_or(UTF_8), by_label);
    }
    if !ascii && mostly_utf8(bytes) && !(declared.is_some_and(is_cjk) && two_byte_utf8(bytes)) {
        let (text, replaced) = UTF_8.decode_without_bom_handling(bytes);
        let chosen_by = if declared == Some(UTF_8) {
            ChosenBy::Label
        } else {
            ChosenBy::Detection
        };
        return Decoded {
            text,
            encoding: UTF_8,
            chosen_by,
            replaced,
        };
    }
    let guess = guess(bytes);
    let Some(declared) = declared else {
        return read(bytes, short_text_bias(bytes, guess), ChosenBy::Detection);
    };
    let own = read(bytes, declared, ChosenBy::Label);
    if family(guess) != family(declared) {
        let other = read(bytes, guess, ChosenBy::Detection);
        if !other.replaced && overrides(&own, &other) {
            return other;
        }
    }
    own
}

/// Whether the detector's clean reading `other` beats the label's `own`.
/// Only a CJK reading overrides a clean decode, and a clean CJK decode
/// only when the other reading is less odd (see [`oddity`]): the detector
/// errs on short text, and a single-byte guess is what it falls back to
/// when nothing else fits. A single-byte reading replaces only a failed
/// UTF-8 or single-byte label (Latin-1 labelled `utf-8`); a CJK label
/// with a broken byte keeps its hanzi and gets one U+FFFD.
fn overrides(own: &Decoded<'_>, other: &Decoded<'_>) -> bool {
    match (is_cjk(own.encoding), is_cjk(other.encoding)) {
        (_, false) => own.replaced && !is_cjk(own.encoding),
        (false, true) => true,
        (true, true) => {
            own.replaced || oddity(&other.text, other.encoding) < oddity(&own.text, own.encoding)
        }
    }
}

/// How many characters of `text` a reader of its script would find out of
/// place: private-use code points, vertical and small punctuation forms,
/// compatibility ideographs, bopomofo, C1 controls, and Greek, Cyrillic,
/// IPA and box drawing amid CJK (rows of GB2312 and Big5 that mislabelled
/// text lands in); kana and hangul too, unless the encoding is Japanese or
/// Korean. Big5 read as GB18030 is full of private-use characters and
/// kana, GBK read as Big5 of bopomofo and vertical forms; real text has
/// almost none of them.
fn oddity(text: &str, encoding: &'static Encoding) -> usize {
    let japanese = encoding == SHIFT_JIS || encoding == EUC_JP || encoding == ISO_2022_JP;
    let korean = encoding == EUC_KR;
    text.chars()
        .filter(|c| match u32::from(*c) {
            0x80..=0x9F
            | 0x250..=0x3FF
            | 0x400..=0x4FF
            | 0x2500..=0x257F
            | 0x3100..=0x312F
            | 0x31A0..=0x31BF
            | 0xE000..=0xF8FF
            | 0xF900..=0xFAFF
            | 0xFE10..=0xFE1F
            | 0xFE30..=0xFE6F => true,
            0x3040..=0x30FF | 0xFF66..=0xFF9F => !japanese,
            0x1100..=0x11FF | 0x3130..=0x318F | 0xAC00..=0xD7AF => !korean,
            _ => false,
        })
        .count()
}

/// Whether `bytes` are UTF-8 text with a few broken sequences rather than
/// another charset: valid multi-byte characters outnumber the invalid
/// sequences (legacy CJK text read as UTF-8 is mostly invalid: about one
/// GBK character in seven happens to be a valid UTF-8 sequence).
fn mostly_utf8(bytes: &[u8]) -> bool {
    let mut valid = 0usize;
    let mut invalid = 0usize;
    for chunk in bytes.utf8_chunks() {
        valid += chunk.valid().chars().filter(|c| !c.is_ascii()).count();
        invalid += usize::from(!chunk.invalid().is_empty());
    }
    valid > invalid
}

/// Whether the only non-ASCII characters `bytes` spell as UTF-8 are
/// two-byte ones (Latin, Greek, Cyrillic): a few GBK or Big5 characters
/// can be such UTF-8 by chance (Big5 `議` is UTF-8 `ĳ`), and a CJK label
/// is more believable than that. Hanzi in UTF-8 take three bytes.
fn two_byte_utf8(bytes: &[u8]) -> bool {
    bytes
        .utf8_chunks()
        .flat_map(|chunk| chunk.valid().chars())
        .all(|c| u32::from(c) < 0x800)
}

/// Below this many non-ASCII bytes (about eight hanzi) the detector's
/// choice between CJK encodings is close to a coin toss.
const SHORT_TEXT: usize = 16;

/// With no label, a short text the detector reads as Japanese, Korean or
/// Big5 is read as GB18030 instead when that reads it cleanly and without
/// odd characters: four GBK bytes are also two EUC-JP kanji, and mail
/// here is mostly Simplified Chinese. Longer texts keep the guess.
fn short_text_bias(bytes: &[u8], guess: &'static Encoding) -> &'static Encoding {
    let non_ascii = bytes.iter().filter(|b| !b.is_ascii()).count();
    if family(guess) == GB18030 || !is_cjk(guess) || non_ascii >= SHORT_TEXT {
        return guess;
    }
    let (text, replaced) = GB18030.decode_without_bom_handling(bytes);
    if !replaced && oddity(&text, GB18030) == 0 {
        GB18030
    } else {
        guess
    }
}

/// GBK and GB18030 are one family (the detector says GBK; we decode the
/// superset).
fn family(encoding: &'static Encoding) -> &'static Encoding {
    if encoding == GBK { GB18030 } else { encoding }
}

/// Whether `encoding` is one of the East Asian multi-byte encodings
/// whose readings the detector tells apart by character frequencies.
fn is_cjk(encoding: &'static Encoding) -> bool {
    [GB18030, BIG5, SHIFT_JIS, EUC_JP, ISO_2022_JP, EUC_KR].contains(&family(encoding))
}

/// chardetng's guess for `bytes`. UTF-8 is ruled out: the caller has
/// handled UTF-8. A GBK guess stays GBK (the detector's word); its decoder
/// is GB18030's (WHATWG), so four-byte sequences still decode.
fn guess(bytes: &[u8]) -> &'static Encoding {
    // Mail still carries ISO-2022-JP, Japanese mail's traditional charset.
    let mut detector = EncodingDetector::new(Iso2022JpDetection::Allow);
    detector.feed(bytes, true);
    detector.guess(None, Utf8Detection::Deny)
}

fn read<'a>(bytes: &'a [u8], encoding: &'static Encoding, chosen_by: ChosenBy) -> Decoded<'a> {
    let (text, replaced) = encoding.decode_without_bom_handling(bytes);
    Decoded {
        text,
        encoding,
        chosen_by,
        replaced,
    }
}

#[cfg(test)]
mod tests;
