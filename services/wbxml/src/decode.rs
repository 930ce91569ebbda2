//! Bytes → tree, refusing what ActiveSync does not use and bounding what a
//! peer can make the decoder hold: nesting depth, node count, and the
//! length of each string and opaque value. Iterative, so no input can
//! exhaust the stack.

use crate::writer::{CONTENT, END, OPAQUE, STR_I, SWITCH_PAGE, UTF8};
use crate::{Element, Node, WbxmlError};

/// ENTITY: a character by its code point.
const ENTITY: u8 = 0x02;
/// The tag token's "has attributes" bit.
const ATTRIBUTES: u8 = 0x80;

/// What one document may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of elements.
    pub max_depth: usize,
    /// Most nodes (elements, strings, opaque values).
    pub max_nodes: usize,
    /// Longest string or opaque value, bytes.
    pub max_value: usize,
}

impl Default for Limits {
    /// Far beyond any ActiveSync request (a Sync nests about 8 deep) and
    /// within what a request body may carry.
    fn default() -> Self {
        Self {
            max_depth: 64,
            max_nodes: 1_000_000,
            max_value: 64 * 1024 * 1024,
        }
    }
}

/// The root element `bytes` encode, within the default [`Limits`].
pub fn decode(bytes: &[u8]) -> Result<Element, WbxmlError> {
    decode_with(bytes, Limits::default())
}

/// The root element `bytes` encode, within `limits`.
pub fn decode_with(bytes: &[u8], limits: Limits) -> Result<Element, WbxmlError> {
    let mut at = Reader { bytes, at: 0 };
    let version = at.byte()?;
    if !(0x01..=0x03).contains(&version) {
        return Err(WbxmlError::Version(version));
    }
    if at.integer()? == 0 {
        // A public id given as a string-table reference.
        at.integer()?;
    }
    let charset = at.integer()?;
    if charset != UTF8 {
        return Err(WbxmlError::Charset(charset));
    }
    let table = at.integer()? as usize;
    at.skip(table)?;

    let mut page = 0u8;
    let mut nodes = 0usize;
    let mut stack: Vec<Element> = Vec::new();
    loop {
        let offset = at.at;
        let token = at.byte()?;
        match token {
            SWITCH_PAGE => {
                page = at.byte()?;
                if crate::pages::page(page).is_none() {
                    return Err(WbxmlError::UnknownPage { page, at: offset });
                }
            }
            END => {
                let done = stack.pop().ok_or(WbxmlError::Outside(offset))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(done)),
                    None => return finish(done, &at),
                }
            }
            STR_I | ENTITY | OPAQUE => {
                let node = match token {
                    STR_I => Node::Text(at.string(limits.max_value)?),
                    ENTITY => Node::Text(at.entity()?),
                    _ => Node::Opaque(at.opaque(limits.max_value)?),
                };
                nodes += 1;
                if nodes > limits.max_nodes {
                    return Err(WbxmlError::TooMany(limits.max_nodes));
                }
                stack
                    .last_mut()
                    .ok_or(WbxmlError::Outside(offset))?
                    .children
                    .push(node);
            }
            _ if token & ATTRIBUTES != 0 || matches!(token, 0x40..=0x43) => {
                return Err(WbxmlError::Unsupported { token, at: offset });
            }
            _ if token & 0x3F < 0x05 => {
                return Err(WbxmlError::Unsupported { token, at: offset });
            }
            _ => {
                nodes += 1;
                if nodes > limits.max_nodes {
                    return Err(WbxmlError::TooMany(limits.max_nodes));
                }
                let element = Element::new(page, token & 0x3F);
                if token & CONTENT != 0 {
                    if stack.len() >= limits.max_depth {
                        return Err(WbxmlError::TooDeep(limits.max_depth));
                    }
                    stack.push(element);
                } else {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(Node::Element(element)),
                        None => return finish(element, &at),
                    }
                }
            }
        }
    }
}

fn finish(root: Element, at: &Reader<'_>) -> Result<Element, WbxmlError> {
    match at.bytes.len() - at.at {
        0 => Ok(root),
        left => Err(WbxmlError::Trailing(left)),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, WbxmlError> {
        let byte = *self
            .bytes
            .get(self.at)
            .ok_or(WbxmlError::Truncated(self.at))?;
        self.at += 1;
        Ok(byte)
    }

    fn integer(&mut self) -> Result<u32, WbxmlError> {
        let start = self.at;
        let mut value: u32 = 0;
        for _ in 0..5 {
            let byte = self.byte()?;
            value =
                value.checked_mul(128).ok_or(WbxmlError::Integer(start))? | u32::from(byte & 0x7F);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WbxmlError::Integer(start))
    }

    fn skip(&mut self, len: usize) -> Result<(), WbxmlError> {
        let end = self
            .at
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(WbxmlError::Truncated(self.bytes.len()))?;
        self.at = end;
        Ok(())
    }

    fn string(&mut self, max: usize) -> Result<String, WbxmlError> {
        let start = self.at;
        let rest = &self.bytes[start..];
        let len = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or(WbxmlError::Truncated(self.bytes.len()))?;
        if len > max {
            return Err(WbxmlError::TooLarge {
                len,
                max,
                at: start,
            });
        }
        let text = std::str::from_utf8(&rest[..len]).map_err(|_| WbxmlError::Utf8(start))?;
        self.at = start + len + 1;
        Ok(text.to_owned())
    }

    fn entity(&mut self) -> Result<String, WbxmlError> {
        let start = self.at;
        let code = self.integer()?;
        char::from_u32(code)
            .filter(|c| *c != '\0')
            .map(String::from)
            .ok_or(WbxmlError::Utf8(start))
    }

    fn opaque(&mut self, max: usize) -> Result<Vec<u8>, WbxmlError> {
        let start = self.at;
        let len = self.integer()? as usize;
        if len > max {
            return Err(WbxmlError::TooLarge {
                len,
                max,
                at: start,
            });
        }
        let from = self.at;
        self.skip(len)?;
        Ok(self.bytes[from..self.at].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode;

    const HEADER: [u8; 4] = [0x03, 0x01, 0x6A, 0x00];

    fn body(tokens: &[u8]) -> Vec<u8> {
        [&HEADER[..], tokens].concat()
    }

    #[test]
    fn a_sync_request_decodes_into_its_tree() {
        let bytes = body(&[
            0x45, 0x5C, 0x4F, 0x4B, 0x03, b'0', 0x00, 0x01, 0x00, 0x07, 0x52, 0xC3, 0x02, 0xFF,
            0x00, 0x01, 0x01, 0x01, 0x01,
        ]);
        let root = decode(&bytes).unwrap();
        let collection = root.child(0, 0x1C).unwrap().child(0, 0x0F).unwrap();
        assert_eq!(collection.child(0, 0x0B).unwrap().text(), "0");
        assert_eq!(
            collection.child(7, 0x12).unwrap().children,
            [Node::Opaque(vec![0xFF, 0x00])]
        );
        assert_eq!(encode(&root).unwrap(), bytes, "re-encoded byte for byte");
    }

    #[test]
    fn bad_input_gets_a_clear_error() {
        let cases: Vec<(Vec<u8>, WbxmlError)> = vec![
            (vec![], WbxmlError::Truncated(0)),
            (vec![0x04, 0x01, 0x6A, 0x00, 0x05], WbxmlError::Version(4)),
            (vec![0x03, 0x01, 0x04, 0x00, 0x05], WbxmlError::Charset(4)),
            (body(&[0x45, 0x03, b'a']), WbxmlError::Truncated(7)),
            (
                body(&[0x85, 0x01]),
                WbxmlError::Unsupported { token: 0x85, at: 4 },
            ),
            (
                body(&[0x45, 0x83, 0x00, 0x01]),
                WbxmlError::Unsupported { token: 0x83, at: 5 },
            ),
            (
                body(&[0x04]),
                WbxmlError::Unsupported { token: 0x04, at: 4 },
            ),
            (
                body(&[0x00, 0x63, 0x45, 0x01]),
                WbxmlError::UnknownPage { page: 99, at: 4 },
            ),
            (
                body(&[0x00, 0x1A, 0x45, 0x01]),
                WbxmlError::UnknownPage { page: 26, at: 4 },
            ),
            (body(&[0x03, b'a', 0x00]), WbxmlError::Outside(4)),
            (body(&[0x01]), WbxmlError::Outside(4)),
            (body(&[0x45, 0x03, 0xFF, 0x00, 0x01]), WbxmlError::Utf8(6)),
            (body(&[0x05, 0x05]), WbxmlError::Trailing(1)),
            (
                body(&[0x45, 0xC3, 0x8F, 0xFF, 0xFF, 0xFF, 0x7F]),
                WbxmlError::TooLarge {
                    len: u32::MAX as usize,
                    max: Limits::default().max_value,
                    at: 6,
                },
            ),
            (body(&[0x45, 0xC3, 0x05, 0x01]), WbxmlError::Truncated(8)),
            (
                vec![0x03, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00],
                WbxmlError::Integer(2),
            ),
        ];
        for (bytes, error) in cases {
            assert_eq!(decode(&bytes), Err(error.clone()), "{bytes:02x?}");
        }
    }

    #[test]
    fn limits_hold_against_deep_and_wide_documents() {
        let deep = body(&vec![0x45; 100_000]);
        assert_eq!(decode(&deep), Err(WbxmlError::TooDeep(64)));
        let mut wide = vec![0x45];
        wide.extend(std::iter::repeat_n(0x06, 50));
        wide.push(0x01);
        let limits = Limits {
            max_nodes: 20,
            ..Limits::default()
        };
        assert_eq!(
            decode_with(&body(&wide), limits),
            Err(WbxmlError::TooMany(20))
        );
        assert!(decode(&body(&wide)).is_ok());
    }

    #[test]
    fn entities_and_string_tables_are_read() {
        // A 3-byte string table (skipped), an entity for 'é'.
        let bytes = [
            0x03, 0x01, 0x6A, 0x03, b'x', b'y', 0x00, 0x45, 0x02, 0x81, 0x69, 0x01,
        ];
        assert_eq!(decode(&bytes).unwrap().text(), "é");
    }
}
