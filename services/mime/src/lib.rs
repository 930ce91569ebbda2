//! A received message, parsed once into what a push needs: who, what, a
//! snippet, the attachment list. Parsing is lenient the way mail clients
//! are (broken MIME, missing headers, unknown or legacy charsets still give
//! a summary); only input that is not a message at all is refused.

pub mod charset;
mod contents;
mod params;
mod parse;
mod recode;
mod sections;
mod words;

pub use contents::{Attached, Contents, contents};
pub use params::file_name_from_params;
pub use parse::{Limits, ParseError, ParsedMail, parse};
pub use sections::{part_index, part_sections};

/// A mail address with its display name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MailAddress {
    /// Display name, decoded (may be empty).
    pub name: String,
    /// The address (may be empty when the header is unparseable).
    pub address: String,
}

/// An attachment as the phone lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentInfo {
    /// IMAP body section of the part (e.g. `2`, `1.3`), for fetching it.
    pub part_id: String,
    /// Decoded file name (`attachment-<part>` when it has none).
    pub file_name: String,
    /// `type/subtype`, lowercased.
    pub content_type: String,
    /// Decoded size in bytes.
    pub size_bytes: u64,
}
