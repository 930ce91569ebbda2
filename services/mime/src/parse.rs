//! The parsing entry point (fuzzed: `services/ingest/fuzz`, which builds
//! this crate without the service around it).

use mail_parser::{Address, MessageParser, MimeHeaders as _};

use super::sections::sections;
use super::{AttachmentInfo, MailAddress, recode};

/// Bounds on what a summary carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message accepted, bytes.
    pub max_message_bytes: usize,
    /// Longest subject kept, characters.
    pub max_subject_chars: usize,
    /// Longest snippet, characters.
    pub max_snippet_chars: usize,
    /// Most recipients listed.
    pub max_recipients: usize,
    /// Most attachments listed.
    pub max_attachments: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 50 * 1024 * 1024,
            max_subject_chars: 256,
            max_snippet_chars: 200,
            max_recipients: 50,
            max_attachments: 100,
        }
    }
}

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing was received.
    #[error("the message is empty")]
    Empty,
    /// Over the size limit.
    #[error("the message is {size} bytes; at most {max} are accepted")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// No header section at all: not an RFC 5322 message.
    #[error("not a mail message: {0}")]
    NotAMessage(&'static str),
}

/// What a push needs of a message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedMail {
    /// `Message-ID` without angle brackets, when present.
    pub message_id: Option<String>,
    /// The sender.
    pub from: Option<MailAddress>,
    /// Recipients (To), at most `max_recipients`.
    pub to: Vec<MailAddress>,
    /// Copies (Cc), at most `max_recipients`.
    pub cc: Vec<MailAddress>,
    /// Blind copies (Bcc: present in a message a phone submits, not in
    /// one delivered), at most `max_recipients`.
    pub bcc: Vec<MailAddress>,
    /// `In-Reply-To` and `References` message ids (no angle brackets), for
    /// threading a reply.
    pub in_reply_to: Vec<String>,
    /// See `in_reply_to`; oldest first, at most 100.
    pub references: Vec<String>,
    /// Subject, decoded, whitespace-collapsed, bounded.
    pub subject: String,
    /// Plain-text snippet of the text or HTML body, bounded.
    pub snippet: String,
    /// Attachments, at most `max_attachments`.
    pub attachments: Vec<AttachmentInfo>,
    /// Raw size in bytes.
    pub size_bytes: u64,
    /// `Date`, ms since the epoch, when parseable.
    pub date_ms: Option<i64>,
}

/// Parses `raw` into a summary. Never panics; lenient like a mail client.
pub fn parse(raw: &[u8], limits: &Limits) -> Result<ParsedMail, ParseError> {
    refuse_non_messages(raw, limits)?;
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(ParseError::NotAMessage("no header section"))?;
    let parts = sections(&message);
    // A text part without a name that the parser filed as an attachment
    // (an unterminated multipart, a missing Content-Type) is what a mail
    // client shows as the body.
    let inline_text = |index: &u32| {
        message.parts.get(*index as usize).is_some_and(|part| {
            part.is_text()
                && part.attachment_name().is_none()
                && part
                    .content_disposition()
                    .is_none_or(|d| !d.ctype().eq_ignore_ascii_case("attachment"))
        })
    };
    let body_index = message
        .text_body
        .first()
        .or(message.html_body.first())
        .or_else(|| message.attachments.iter().find(|i| inline_text(i)))
        .copied();
    let (body, context) = recode::body(&message, body_index);
    let snippet = body
        .map(|text| bounded(&text, limits.max_snippet_chars))
        .or_else(|| {
            message
                .body_preview(limits.max_snippet_chars * 2)
                .map(|s| bounded(&s, limits.max_snippet_chars))
        })
        .unwrap_or_default();
    let attachments = message
        .attachments
        .iter()
        .filter(|index| !inline_text(index))
        .take(limits.max_attachments)
        .filter_map(|index| {
            let part = message.parts.get(*index as usize)?;
            let part_id = parts
                .get(index)
                .cloned()
                .unwrap_or_else(|| index.to_string());
            let name = recode::file_name(&message, part, &context);
            Some(attachment(part, name.as_deref(), part_id))
        })
        .collect();
    let recoded = recode::address_headers(&message, &context);
    let reparsed = recoded
        .as_deref()
        .and_then(|raw| MessageParser::default().parse_headers(raw));
    let addresses = reparsed.as_ref().unwrap_or(&message);
    let subject = recode::subject(&message, &context);
    Ok(ParsedMail {
        message_id: message.message_id().map(|id| bounded(id, 998)),
        from: addresses.from().and_then(first_address),
        to: recipients(addresses.to(), limits),
        // Only From and To are re-read after charset repair.
        cc: recipients(message.cc(), limits),
        bcc: recipients(message.bcc(), limits),
        in_reply_to: message_ids(message.in_reply_to()),
        references: message_ids(message.references()),
        subject: subject
            .as_deref()
            .or(message.subject())
            .map(|s| bounded(s, limits.max_subject_chars))
            .unwrap_or_default(),
        snippet,
        attachments,
        size_bytes: raw.len() as u64,
        date_ms: message
            .date()
            .map(|d| d.to_timestamp().saturating_mul(1_000)),
    })
}

/// The ids of an `In-Reply-To` or `References` field, each bounded, at
/// most 100 (a thread's newest references are the last ones kept).
fn message_ids(value: &mail_parser::HeaderValue<'_>) -> Vec<String> {
    const MOST: usize = 100;
    let ids: Vec<&str> = match value {
        mail_parser::HeaderValue::Text(id) => vec![id.as_ref()],
        mail_parser::HeaderValue::TextList(ids) => ids.iter().map(AsRef::as_ref).collect(),
        _ => Vec::new(),
    };
    let skip = ids.len().saturating_sub(MOST);
    ids.into_iter()
        .skip(skip)
        .map(|id| bounded(id, 998))
        .collect()
}

/// Input that is empty, over the limit or does not start like a header.
fn refuse_non_messages(raw: &[u8], limits: &Limits) -> Result<(), ParseError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    if raw.len() > limits.max_message_bytes {
        return Err(ParseError::TooLarge {
            size: raw.len(),
            max: limits.max_message_bytes,
        });
    }
    if !has_header_line(raw) {
        return Err(ParseError::NotAMessage(
            "the first line is not a header field",
        ));
    }
    Ok(())
}

/// An attachment as the phone lists it: its IMAP section, a name (made up
/// when it has none), its type in lower case, its decoded size.
fn attachment(
    part: &mail_parser::MessagePart<'_>,
    name: Option<&str>,
    part_id: String,
) -> AttachmentInfo {
    let content_type = part.content_type().map_or_else(
        || "application/octet-stream".to_owned(),
        |ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_lowercase(),
            None => ct.ctype().to_lowercase(),
        },
    );
    AttachmentInfo {
        file_name: name
            .map(|n| bounded(n, 255))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("attachment-{part_id}")),
        part_id,
        content_type,
        size_bytes: part.len() as u64,
    }
}

/// Whether `raw` starts like a header section: `Name:` on the first line
/// (RFC 5322 field names are printable ASCII without ':' or space). mbox
/// `From ` lines are allowed too.
fn has_header_line(raw: &[u8]) -> bool {
    let first = raw.split(|b| *b == b'\n').next().unwrap_or_default();
    if first.starts_with(b"From ") {
        return true;
    }
    match first.iter().position(|b| *b == b':') {
        Some(0) | None => false,
        Some(colon) => first[..colon]
            .iter()
            .all(|b| b.is_ascii_graphic() && *b != b':'),
    }
}

/// A recipient field's addresses, at most `max_recipients`.
fn recipients(field: Option<&Address<'_>>, limits: &Limits) -> Vec<MailAddress> {
    field
        .map(|list| {
            list.iter()
                .take(limits.max_recipients)
                .map(address)
                .collect()
        })
        .unwrap_or_default()
}

fn first_address(address: &Address<'_>) -> Option<MailAddress> {
    address.first().map(address_of)
}

fn address(addr: &mail_parser::Addr<'_>) -> MailAddress {
    address_of(addr)
}

fn address_of(addr: &mail_parser::Addr<'_>) -> MailAddress {
    MailAddress {
        name: addr.name().map(|n| bounded(n, 128)).unwrap_or_default(),
        address: addr.address().map(|a| bounded(a, 254)).unwrap_or_default(),
    }
}

/// Whitespace collapsed, control characters dropped, at most `max` characters.
fn bounded(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max * 4));
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if c.is_control() || c == '\u{fffd}' && out.ends_with('\u{fffd}') {
            continue;
        }
        if out.chars().count() >= max {
            break;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_messages_are_refused_with_a_reason() {
        let limits = Limits::default();
        assert_eq!(parse(b"", &limits), Err(ParseError::Empty));
        assert_eq!(parse(b" \r\n", &limits), Err(ParseError::Empty));
        assert!(matches!(
            parse(b"hello world\r\n", &limits),
            Err(ParseError::NotAMessage(_))
        ));
        assert!(matches!(
            parse(b": no name\r\n\r\nx", &limits),
            Err(ParseError::NotAMessage(_))
        ));
        let small = Limits {
            max_message_bytes: 10,
            ..limits
        };
        assert_eq!(
            parse(b"Subject: too long for ten bytes\r\n\r\n", &small),
            Err(ParseError::TooLarge { size: 35, max: 10 })
        );
    }

    #[test]
    fn bounded_collapses_and_cuts() {
        assert_eq!(bounded("  a \t b\r\n c  ", 10), "a b c");
        assert_eq!(bounded("abcdef", 3), "abc");
        assert_eq!(bounded("x\u{7}y", 5), "xy");
        assert_eq!(bounded("季度报告", 2), "季度");
    }
}
