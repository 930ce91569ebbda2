//! The token layer every WBXML document we write shares: the header, tags
//! with their content and attribute flags, attribute tokens, inline
//! strings, opaque values and ends. The ActiveSync encoder drives it from
//! a tree; the WAP Push Service Indication encoder (`pushmail-sms-encoding`)
//! drives it directly, as SI needs attributes, which ActiveSync never uses.

use crate::WbxmlError;

pub(crate) const SWITCH_PAGE: u8 = 0x00;
pub(crate) const END: u8 = 0x01;
pub(crate) const STR_I: u8 = 0x03;
pub(crate) const OPAQUE: u8 = 0xC3;
/// The tag token's "has content" bit.
pub(crate) const CONTENT: u8 = 0x40;
/// The tag token's "has attributes" bit.
const ATTRIBUTES: u8 = 0x80;
/// UTF-8's IANA MIBenum.
pub const UTF8: u32 = 106;

/// A document being written, token by token.
#[derive(Debug)]
pub struct Writer {
    out: Vec<u8>,
    page: u8,
}

impl Writer {
    /// A document of WBXML `version` (0x03 for 1.3), with this public
    /// identifier and character set, and an empty string table.
    pub fn new(version: u8, public_id: u32, charset: u32) -> Self {
        let mut out = vec![version];
        integer(&mut out, public_id);
        integer(&mut out, charset);
        out.push(0x00);
        Self { out, page: 0 }
    }

    /// Switches to `page` unless it is the current one.
    pub fn page(&mut self, page: u8) {
        if page != self.page {
            self.out.extend_from_slice(&[SWITCH_PAGE, page]);
            self.page = page;
        }
    }

    /// A tag token on the current page; one with content or attributes
    /// is closed later by [`Writer::end`] (attributes end first).
    pub fn tag(&mut self, tag: u8, content: bool, attributes: bool) -> Result<(), WbxmlError> {
        if !(0x05..=0x3F).contains(&tag) {
            return Err(WbxmlError::Unencodable("a tag outside 0x05-0x3F"));
        }
        let mut token = tag;
        if content {
            token |= CONTENT;
        }
        if attributes {
            token |= ATTRIBUTES;
        }
        self.out.push(token);
        Ok(())
    }

    /// An attribute start or value token (the document type defines them).
    pub fn attribute(&mut self, token: u8) {
        self.out.push(token);
    }

    /// An inline string; text holding NUL cannot be one.
    pub fn inline(&mut self, text: &str) -> Result<(), WbxmlError> {
        if text.contains('\0') {
            return Err(WbxmlError::Unencodable("text holding NUL"));
        }
        self.out.push(STR_I);
        self.out.extend_from_slice(text.as_bytes());
        self.out.push(0);
        Ok(())
    }

    /// An opaque value.
    pub fn opaque(&mut self, bytes: &[u8]) -> Result<(), WbxmlError> {
        let len = u32::try_from(bytes.len())
            .map_err(|_| WbxmlError::Unencodable("opaque value over 4 GiB"))?;
        self.out.push(OPAQUE);
        integer(&mut self.out, len);
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    /// Ends the open attribute list or element.
    pub fn end(&mut self) {
        self.out.push(END);
    }

    /// The bytes written.
    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// A WBXML multi-byte integer: 7 bits a byte, most significant first.
pub(crate) fn integer(out: &mut Vec<u8>, value: u32) {
    let mut bytes = [0u8; 5];
    let mut at = bytes.len();
    let mut rest = value;
    loop {
        at -= 1;
        bytes[at] = (rest & 0x7F) as u8;
        rest >>= 7;
        if rest == 0 {
            break;
        }
    }
    let last = bytes.len() - 1;
    for (i, byte) in bytes.iter().enumerate().skip(at) {
        out.push(if i == last { *byte } else { byte | 0x80 });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_seven_bits_a_byte() {
        for (value, bytes) in [
            (0, vec![0x00]),
            (106, vec![0x6A]),
            (0x80, vec![0x81, 0x00]),
            (0xA0, vec![0x81, 0x20]),
            (u32::MAX, vec![0x8F, 0xFF, 0xFF, 0xFF, 0x7F]),
        ] {
            let mut out = Vec::new();
            integer(&mut out, value);
            assert_eq!(out, bytes, "{value}");
        }
    }

    #[test]
    fn tokens_carry_their_flags_and_bad_values_are_refused() {
        let mut w = Writer::new(0x02, 0x05, UTF8);
        w.tag(0x05, true, false).unwrap();
        w.tag(0x06, true, true).unwrap();
        w.attribute(0x0C);
        w.inline("a").unwrap();
        w.end();
        w.opaque(&[0x20, 0x26]).unwrap();
        w.end();
        w.end();
        assert!(w.tag(0x04, false, false).is_err());
        assert!(w.inline("a\0b").is_err());
        assert_eq!(
            w.finish(),
            [
                0x02, 0x05, 0x6A, 0x00, 0x45, 0xC6, 0x0C, 0x03, b'a', 0x00, 0x01, 0xC3, 0x02, 0x20,
                0x26, 0x01, 0x01
            ]
        );
    }
}
