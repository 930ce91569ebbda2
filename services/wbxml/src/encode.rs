//! Tree → bytes: version 1.3, public id 1 (unknown, as ActiveSync sends
//! it), UTF-8, an empty string table; a page switch only where the page
//! changes.

use crate::{Element, Node, WbxmlError};

pub(crate) const SWITCH_PAGE: u8 = 0x00;
pub(crate) const END: u8 = 0x01;
pub(crate) const STR_I: u8 = 0x03;
pub(crate) const OPAQUE: u8 = 0xC3;
/// The tag token's "has content" bit.
pub(crate) const CONTENT: u8 = 0x40;
/// UTF-8's IANA MIBenum.
pub(crate) const UTF8: u32 = 106;

/// The document whose root is `root`.
pub fn encode(root: &Element) -> Result<Vec<u8>, WbxmlError> {
    let mut out = vec![0x03, 0x01];
    integer(&mut out, UTF8);
    out.push(0x00);
    let mut page = 0;
    // An explicit stack: a deep tree must not take the thread's stack.
    let mut stack: Vec<(&Element, usize)> = vec![(root, 0)];
    start(&mut out, &mut page, root)?;
    while let Some((element, next)) = stack.last_mut() {
        let Some(node) = element.children.get(*next) else {
            if !element.children.is_empty() {
                out.push(END);
            }
            stack.pop();
            continue;
        };
        *next += 1;
        match node {
            Node::Element(child) => {
                start(&mut out, &mut page, child)?;
                stack.push((child, 0));
            }
            Node::Text(text) => {
                if text.contains('\0') {
                    return Err(WbxmlError::Unencodable("text holding NUL"));
                }
                out.push(STR_I);
                out.extend_from_slice(text.as_bytes());
                out.push(0);
            }
            Node::Opaque(bytes) => {
                out.push(OPAQUE);
                let len = u32::try_from(bytes.len())
                    .map_err(|_| WbxmlError::Unencodable("opaque value over 4 GiB"))?;
                integer(&mut out, len);
                out.extend_from_slice(bytes);
            }
        }
    }
    Ok(out)
}

fn start(out: &mut Vec<u8>, page: &mut u8, element: &Element) -> Result<(), WbxmlError> {
    if !(0x05..=0x3F).contains(&element.tag) {
        return Err(WbxmlError::Unencodable("a tag outside 0x05-0x3F"));
    }
    if element.page != *page {
        out.extend_from_slice(&[SWITCH_PAGE, element.page]);
        *page = element.page;
    }
    let flag = if element.children.is_empty() {
        0
    } else {
        CONTENT
    };
    out.push(element.tag | flag);
    Ok(())
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
    fn a_page_switch_only_where_the_page_changes() {
        // <Sync><Collections><Collection><SyncKey>0</SyncKey></Collection>
        // </Collections></Sync> then a FolderHierarchy element.
        let root = Element::new(0, 0x05).with(
            Element::new(0, 0x1C).with(
                Element::new(0, 0x0F)
                    .with(Element::new(0, 0x0B).with_text("0"))
                    .with(Element::new(7, 0x12)),
            ),
        );
        assert_eq!(
            encode(&root).unwrap(),
            [
                0x03, 0x01, 0x6A, 0x00, 0x45, 0x5C, 0x4F, 0x4B, 0x03, b'0', 0x00, 0x01, 0x00, 0x07,
                0x12, 0x01, 0x01, 0x01
            ]
        );
    }

    #[test]
    fn what_cannot_be_encoded_is_refused() {
        assert!(encode(&Element::new(0, 0x04)).is_err());
        assert!(encode(&Element::new(0, 0x40)).is_err());
        assert!(encode(&Element::new(0, 0x05).with_text("a\0b")).is_err());
    }
}
