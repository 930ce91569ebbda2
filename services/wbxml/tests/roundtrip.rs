//! encode ∘ decode = id over arbitrary trees, and arbitrary bytes never
//! make the decoder panic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use proptest::prelude::*;
use pushmail_wbxml::{Element, Node, decode, encode};

fn leaf() -> impl Strategy<Value = Node> {
    prop_oneof![
        "[^\u{0}]{0,40}".prop_map(Node::Text),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Node::Opaque),
    ]
}

fn element() -> impl Strategy<Value = Element> {
    let empty = (0u8..25, 0x05u8..=0x3F).prop_map(|(page, tag)| Element::new(page, tag));
    empty.prop_recursive(6, 64, 6, |inner| {
        (
            0u8..25,
            0x05u8..=0x3F,
            proptest::collection::vec(prop_oneof![inner.prop_map(Node::Element), leaf()], 1..6),
        )
            .prop_map(|(page, tag, children)| Element {
                page,
                tag,
                children,
            })
    })
}

/// Adjacent text nodes merge on the wire only if written so; an empty
/// text node is kept as an empty inline string. So the tree comes back
/// exactly.
fn same(root: &Element) -> Element {
    decode(&encode(root).unwrap()).unwrap()
}

proptest! {
    #[test]
    fn decoding_an_encoding_gives_the_tree_back(root in element()) {
        prop_assert_eq!(same(&root), root);
    }

    #[test]
    fn any_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes);
        let mut document = vec![0x03, 0x01, 0x6A, 0x00];
        document.extend_from_slice(&bytes);
        let _ = decode(&document);
    }
}
