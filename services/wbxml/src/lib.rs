//! WBXML (WAP-192-WBXML, version 1.3) documents as Exchange ActiveSync
//! sends them (MS-ASWBXML): UTF-8, no string table, no attributes; each
//! element a code page and a tag, holding elements, inline strings and
//! opaque bytes. A tree, its encoder, and a decoder that refuses what it
//! cannot represent and bounds what a hostile peer can make it hold.
//!
//! No Rust crate does this; libwbxml's `wbxml2xml` is the reference the
//! tests hold every encoding to. The code pages' names are in [`pages`].

mod decode;
mod encode;
pub mod pages;
mod writer;

pub use decode::{Limits, decode, decode_with};
pub use encode::encode;
pub use pages::{Tag, tag};
pub use writer::{UTF8, Writer};

/// An element: its code page and tag (the token without its flags), and
/// what it holds, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// The code page (MS-ASWBXML numbers them 0–24).
    pub page: u8,
    /// The tag, 0x05–0x3F.
    pub tag: u8,
    /// Its content.
    pub children: Vec<Node>,
}

/// Something an element holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A child element.
    Element(Element),
    /// Text (an inline string; never holds NUL).
    Text(String),
    /// Bytes (a MIME message, a policy document, a file).
    Opaque(Vec<u8>),
}

impl Element {
    /// An empty element.
    pub fn new(page: u8, tag: u8) -> Self {
        Self {
            page,
            tag,
            children: Vec::new(),
        }
    }

    /// An empty element of this tag.
    pub fn of(tag: Tag) -> Self {
        Self::new(tag.page, tag.tag)
    }

    /// Its tag.
    pub fn tag(&self) -> Tag {
        Tag {
            page: self.page,
            tag: self.tag,
        }
    }

    /// An element of this tag holding `text`.
    pub fn text_of(tag: Tag, text: impl Into<String>) -> Self {
        Self::of(tag).with_text(text)
    }

    /// The first child element of this tag.
    pub fn get(&self, tag: Tag) -> Option<&Element> {
        self.child(tag.page, tag.tag)
    }

    /// Every child element of this tag, in order.
    pub fn all(&self, tag: Tag) -> impl Iterator<Item = &Element> {
        self.elements().filter(move |e| e.tag() == tag)
    }

    /// Every child element, in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|node| match node {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    /// This element with `child` appended.
    #[must_use]
    pub fn with(mut self, child: Element) -> Self {
        self.children.push(Node::Element(child));
        self
    }

    /// This element with `text` appended.
    #[must_use]
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.children.push(Node::Text(text.into()));
        self
    }

    /// The first child element with this page and tag.
    pub fn child(&self, page: u8, tag: u8) -> Option<&Element> {
        self.children.iter().find_map(|node| match node {
            Node::Element(e) if e.page == page && e.tag == tag => Some(e),
            _ => None,
        })
    }

    /// Its text: every text child, joined.
    pub fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|node| match node {
                Node::Text(text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// Why bytes are not a document this crate takes, or a tree cannot be
/// encoded. Offsets count from the first byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WbxmlError {
    /// The bytes end inside a token.
    #[error("the document ends early (at byte {0})")]
    Truncated(usize),
    /// Not WBXML 1.1–1.3.
    #[error("WBXML version {0:#04x} is not 1.1–1.3")]
    Version(u8),
    /// A character set other than UTF-8 (IANA MIBenum 106).
    #[error("character set {0} is not UTF-8")]
    Charset(u32),
    /// A multi-byte integer longer than 32 bits.
    #[error("a multi-byte integer at byte {0} is too long")]
    Integer(usize),
    /// A token this profile does not use: attributes, string-table
    /// references, extensions, processing instructions, literals.
    #[error("token {token:#04x} at byte {at} is not used by ActiveSync")]
    Unsupported {
        /// The token.
        token: u8,
        /// Where.
        at: usize,
    },
    /// A tag token below 0x05 (those are the global tokens).
    #[error("tag {tag:#04x} at byte {at} is not a tag")]
    NotATag {
        /// The token's tag bits.
        tag: u8,
        /// Where.
        at: usize,
    },
    /// A switch to a code page MS-ASWBXML does not define (or that no
    /// command takes).
    #[error("code page {page} at byte {at} is not an ActiveSync code page")]
    UnknownPage {
        /// The page asked for.
        page: u8,
        /// Where.
        at: usize,
    },
    /// Text or an opaque value where only an element may be.
    #[error("content outside the root element at byte {0}")]
    Outside(usize),
    /// An inline string that is not UTF-8.
    #[error("the string at byte {0} is not UTF-8")]
    Utf8(usize),
    /// Nesting deeper than the limit.
    #[error("elements nest deeper than {0}")]
    TooDeep(usize),
    /// More nodes than the limit.
    #[error("more than {0} nodes")]
    TooMany(usize),
    /// A string or opaque value longer than the limit.
    #[error("a value of {len} bytes at byte {at} is over the limit of {max}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
        /// Where.
        at: usize,
    },
    /// Bytes after the root element ended.
    #[error("{0} bytes after the document's end")]
    Trailing(usize),
    /// A tag outside 0x05–0x3F, or text holding NUL, cannot be encoded.
    #[error("cannot encode: {0}")]
    Unencodable(&'static str),
}
