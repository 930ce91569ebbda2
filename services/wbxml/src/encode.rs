//! Tree → bytes: version 1.3, public id 1 (unknown, as ActiveSync sends
//! it), UTF-8, an empty string table; a page switch only where the page
//! changes.

use crate::writer::{UTF8, Writer};
use crate::{Element, Node, WbxmlError};

/// ActiveSync's public identifier: 1, "unknown".
const PUBLIC_ID_UNKNOWN: u32 = 1;

/// The document whose root is `root`.
pub fn encode(root: &Element) -> Result<Vec<u8>, WbxmlError> {
    let mut out = Writer::new(0x03, PUBLIC_ID_UNKNOWN, UTF8);
    // An explicit stack: a deep tree must not take the thread's stack.
    let mut stack: Vec<(&Element, usize)> = vec![(root, 0)];
    start(&mut out, root)?;
    while let Some((element, next)) = stack.last_mut() {
        let Some(node) = element.children.get(*next) else {
            if !element.children.is_empty() {
                out.end();
            }
            stack.pop();
            continue;
        };
        *next += 1;
        match node {
            Node::Element(child) => {
                start(&mut out, child)?;
                stack.push((child, 0));
            }
            Node::Text(text) => out.inline(text)?,
            Node::Opaque(bytes) => out.opaque(bytes)?,
        }
    }
    Ok(out.finish())
}

fn start(out: &mut Writer, element: &Element) -> Result<(), WbxmlError> {
    out.page(element.page);
    out.tag(element.tag, !element.children.is_empty(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

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
