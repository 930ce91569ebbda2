//! What a summary shows, decoded again from the raw bytes by this crate's
//! charset rules rather than as mail-parser decoded it.
//!
//! mail-parser 0.11 has no charset hook: every decode goes through its
//! fixed label table (`decoders::charsets::map::charset_decoder`, a plain
//! function the parser calls), an unknown label falls back to lossy
//! UTF-8, a known one is trusted whatever the bytes, and raw 8-bit header
//! bytes are read as lossy UTF-8. It does keep where everything came from:
//! each header's value offsets, each part's body offsets and transfer
//! encoding. So we let it find the structure and re-read only what the
//! phone sees: the subject, the sender and recipients (their raw values
//! rewritten in UTF-8 and parsed again by mail-parser, which then finds
//! nothing to decode), the snippet's part (transfer-decoded with
//! mail-parser's own decoders, then charset-decoded by us) and attachment
//! names. Values that are plain ASCII keep mail-parser's reading.

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::html::html_to_text;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{Encoding, HeaderName, Message, MessagePart, MimeHeaders as _, PartType};

use crate::charset::Context;
use crate::{params, words};

/// At most this much of a body is decoded for its snippet: enough to get
/// past an HTML head to the text.
const SNIPPET_SOURCE_BYTES: usize = 64 * 1024;

/// The raw value of `part`'s first `name` header.
fn raw_header<'m>(
    message: &'m Message<'_>,
    part: &MessagePart<'_>,
    name: &HeaderName<'_>,
) -> Option<&'m [u8]> {
    let header = part.headers.iter().find(|h| h.name == *name)?;
    message
        .raw_message()
        .get(header.offset_start as usize..header.offset_end as usize)
}

fn root_header<'m>(message: &'m Message<'_>, name: &HeaderName<'_>) -> Option<&'m [u8]> {
    raw_header(message, message.parts.first()?, name)
}

/// The subject, when mail-parser's reading of it cannot be trusted.
pub(crate) fn subject(message: &Message<'_>, context: &Context) -> Option<String> {
    let raw = root_header(message, &HeaderName::Subject)?;
    words::needs_decoding(raw).then(|| words::text(raw, context))
}

/// `From` and `To` rewritten in UTF-8 as a header section for mail-parser
/// to parse again, when either needs it.
pub(crate) fn address_headers(message: &Message<'_>, context: &Context) -> Option<Vec<u8>> {
    let fields = [("From", HeaderName::From), ("To", HeaderName::To)];
    let raw: Vec<(&str, &[u8])> = fields
        .iter()
        .filter_map(|(field, name)| Some((*field, root_header(message, name)?)))
        .collect();
    if !raw.iter().any(|(_, value)| words::needs_decoding(value)) {
        return None;
    }
    let mut out = Vec::new();
    for (field, value) in raw {
        out.extend_from_slice(field.as_bytes());
        out.extend_from_slice(b":");
        out.extend_from_slice(words::to_utf8(value, context).trim_end().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Some(out)
}

/// An attachment's file name, decoded; mail-parser's when ours finds none.
pub(crate) fn file_name(
    message: &Message<'_>,
    part: &MessagePart<'_>,
    context: &Context,
) -> Option<String> {
    let disposition = raw_header(message, part, &HeaderName::ContentDisposition);
    let content_type = raw_header(message, part, &HeaderName::ContentType);
    params::file_name(disposition, content_type, context)
        .or_else(|| part.attachment_name().map(str::to_owned))
}

/// The message's body (part `index`, the one its snippet comes from) as
/// text, and the [`Context`] its headers are read in. Without a readable
/// body the context is the top-level charset label's.
pub(crate) fn body(message: &Message<'_>, index: Option<u32>) -> (Option<String>, Context) {
    let read = index.and_then(|index| {
        let part = message.parts.get(index as usize)?;
        let html = match &part.body {
            PartType::Text(_) => false,
            PartType::Html(_) => true,
            _ => return None,
        };
        let bytes = body_bytes(message, part, SNIPPET_SOURCE_BYTES)?;
        let (context, text) = Context::from_body(charset_label(part), &bytes);
        Some((
            if html {
                html_to_text(&text)
            } else {
                text.into_owned()
            },
            context,
        ))
    });
    match read {
        Some((text, context)) => (Some(text), context),
        None => {
            let label = message.parts.first().and_then(charset_label);
            (None, label.map(Context::with_raw_label).unwrap_or_default())
        }
    }
}

fn charset_label<'p>(part: &'p MessagePart<'_>) -> Option<&'p str> {
    part.content_type()?.attribute("charset")
}

/// A text or HTML part's whole body as text, read by this crate's charset
/// rules (at most `max` bytes of it, cut at a line end).
pub(crate) fn part_text(
    message: &Message<'_>,
    part: &MessagePart<'_>,
    max: usize,
) -> Option<String> {
    let bytes = body_bytes(message, part, max)?;
    let (_, text) = Context::from_body(charset_label(part), &bytes);
    Some(text.into_owned())
}

/// The start of a part's body (at most `max` bytes of it), transfer-decoded;
/// `None` when its transfer encoding is broken.
fn body_bytes(message: &Message<'_>, part: &MessagePart<'_>, max: usize) -> Option<Vec<u8>> {
    let raw = message.raw_message();
    let start = (part.offset_body as usize).min(raw.len());
    let end = (part.offset_end as usize).clamp(start, raw.len());
    let mut body = &raw[start..end];
    if body.len() > max {
        // Cut after a line end: no charset or transfer encoding continues
        // a character across one.
        body = &body[..max];
        if let Some(line_end) = body.iter().rposition(|b| *b == b'\n') {
            body = &body[..=line_end];
        }
    }
    match part.encoding {
        Encoding::None => Some(body.to_vec()),
        Encoding::Base64 => base64_decode(body),
        Encoding::QuotedPrintable => quoted_printable_decode(body),
    }
}
