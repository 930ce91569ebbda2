//! IMAP body section numbers (RFC 3501 §6.4.5) of a parsed message's parts,
//! so the phone (through the gateway) can fetch one attachment alone.

use std::collections::HashMap;

use mail_parser::{Message, PartType};

/// Section number of every part index of `message`.
pub(super) fn sections(message: &Message<'_>) -> HashMap<u32, String> {
    let mut out = HashMap::new();
    // A single-part message's body is section 1.
    walk(message, 0, "", &mut out, 0);
    if !matches!(
        message.parts.first().map(|p| &p.body),
        Some(PartType::Multipart(_))
    ) {
        out.insert(0, "1".to_owned());
    }
    out
}

/// Nesting deeper than this is not followed (hostile input).
const MAX_DEPTH: usize = 32;

fn walk(
    message: &Message<'_>,
    index: u32,
    prefix: &str,
    out: &mut HashMap<u32, String>,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let Some(part) = message.parts.get(index as usize) else {
        return;
    };
    if let PartType::Multipart(children) = &part.body {
        for (n, child) in children.iter().enumerate() {
            let section = if prefix.is_empty() {
                (n + 1).to_string()
            } else {
                format!("{prefix}.{}", n + 1)
            };
            out.insert(*child, section.clone());
            walk(message, *child, &section, out, depth + 1);
        }
    }
}

/// The part index of IMAP body section `section` in `message`.
pub fn part_index(message: &Message<'_>, section: &str) -> Option<u32> {
    sections(message)
        .into_iter()
        .find_map(|(index, s)| (s == section).then_some(index))
}

/// Every part's IMAP body section, by part index.
pub fn part_sections(message: &Message<'_>) -> HashMap<u32, String> {
    sections(message)
}
