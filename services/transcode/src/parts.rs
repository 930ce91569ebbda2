//! Finding one part of a stored message: by its IMAP body section (the
//! numbers ingest put in the notification), or `body` for the text the
//! phone shows. Section numbers come from `pushmail_mime`, the
//! same code ingest numbered them with.

use std::collections::HashMap;

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{Encoding, Message, MessageParser, MessagePart, MimeHeaders as _, PartType};
use pushmail_mime as mail;

/// The part id that names the message's body.
pub(crate) const BODY: &str = "body";

/// One part, decoded from its transfer encoding. The bytes travel beside
/// the rest between a worker and the service (see `crate::worker`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Part {
    /// The bytes as the sender attached them (text still in its charset).
    #[serde(skip)]
    pub bytes: Vec<u8>,
    /// `type/subtype`, lowercase.
    pub content_type: String,
    /// Declared charset of a text part.
    pub charset: Option<String>,
    /// File name, when it has one.
    pub file_name: Option<String>,
    /// Inline images of an HTML body: Content-ID → section.
    pub inline: HashMap<String, String>,
}

/// Why no part was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum PartError {
    #[error("the stored message is not a mail message")]
    NotAMessage,
    #[error("the message has no part {0:?}")]
    NoSuchPart(String),
    #[error("part {0:?} is a multipart container, not content")]
    Container(String),
    #[error("part {section:?} has a broken {encoding} encoding")]
    BadEncoding { section: String, encoding: String },
}

fn parse(raw: &[u8]) -> Result<Message<'_>, PartError> {
    MessageParser::default()
        .parse(raw)
        .ok_or(PartError::NotAMessage)
}

/// Whether the message's body has an HTML version.
pub fn has_html_body(raw: &[u8]) -> bool {
    parse(raw).is_ok_and(|m| {
        m.html_part(0)
            .is_some_and(|p| matches!(p.body, PartType::Html(_)))
    })
}

/// Part `section` of `raw`; `prefer_html` picks the body's HTML version
/// when there is one.
pub fn find(raw: &[u8], section: &str, prefer_html: bool) -> Result<Part, PartError> {
    let message = parse(raw)?;
    let sections = mail::part_sections(&message);
    let index = if section == BODY {
        let html = message
            .html_part(0)
            .filter(|p| prefer_html && matches!(p.body, PartType::Html(_)))
            .and(message.html_body.first());
        html.or(message.text_body.first())
            .copied()
            .ok_or_else(|| PartError::NoSuchPart(section.to_owned()))?
    } else {
        mail::part_index(&message, section)
            .ok_or_else(|| PartError::NoSuchPart(section.to_owned()))?
    };
    let part = message
        .parts
        .get(index as usize)
        .ok_or_else(|| PartError::NoSuchPart(section.to_owned()))?;
    let bytes = match &part.body {
        PartType::Multipart(_) => return Err(PartError::Container(section.to_owned())),
        PartType::Text(_) | PartType::Html(_) => raw_text(&message, part, section)?,
        _ => part.contents().to_vec(),
    };
    let content_type = part.content_type().map_or_else(
        || match part.body {
            PartType::Html(_) => "text/html".to_owned(),
            PartType::Text(_) => "text/plain".to_owned(),
            _ => "application/octet-stream".to_owned(),
        },
        |ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        },
    );
    let inline = if matches!(part.body, PartType::Html(_)) {
        message
            .parts
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let id = p.content_id()?.trim_matches(['<', '>']).to_owned();
                Some((id, sections.get(&u32::try_from(i).ok()?)?.clone()))
            })
            .collect()
    } else {
        HashMap::new()
    };
    Ok(Part {
        bytes,
        content_type,
        charset: part
            .content_type()
            .and_then(|ct| ct.attribute("charset"))
            .map(str::to_owned),
        file_name: part.attachment_name().map(str::to_owned),
        inline,
    })
}

/// A text part's bytes before any charset decoding: the parser would
/// decode with the declared charset, and a missing or wrong label (common
/// in GBK/Big5 mail) would lose the text before our detection sees it.
fn raw_text(
    message: &Message<'_>,
    part: &MessagePart<'_>,
    section: &str,
) -> Result<Vec<u8>, PartError> {
    let raw = message.raw_message();
    let start = (part.offset_body as usize).min(raw.len());
    let end = (part.offset_end as usize).clamp(start, raw.len());
    let body = &raw[start..end];
    let bad = |encoding: &str| PartError::BadEncoding {
        section: section.to_owned(),
        encoding: encoding.to_owned(),
    };
    match part.encoding {
        Encoding::None => Ok(body.to_vec()),
        Encoding::Base64 => base64_decode(body).ok_or_else(|| bad("base64")),
        Encoding::QuotedPrintable => {
            quoted_printable_decode(body).ok_or_else(|| bad("quoted-printable"))
        }
    }
}
