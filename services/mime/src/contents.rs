//! A message's whole readable content, for quoting it in a reply and
//! carrying its attachments into a forward: the text and HTML bodies read
//! by this crate's charset rules, and each attachment's decoded bytes with
//! the name and type the summary lists.

use mail_parser::decoders::html::html_to_text;
use mail_parser::{MessageParser, PartType};

use crate::parse::{Limits, ParseError, ParsedMail, parse};
use crate::{AttachmentInfo, recode};

/// Most bytes of a body read for quoting.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// An attachment and its decoded bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// As the summary lists it.
    pub info: AttachmentInfo,
    /// Decoded (transfer encoding undone).
    pub bytes: Vec<u8>,
}

/// What a reply quotes and a forward carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Contents {
    /// The summary (sender, recipients, subject, ids, date).
    pub summary: ParsedMail,
    /// The plain-text body (the HTML body as text when there is no plain
    /// one).
    pub text: String,
    /// The HTML body, when the message has one.
    pub html: Option<String>,
    /// Its attachments, in order.
    pub attachments: Vec<Attached>,
}

/// Reads `raw` whole (it must fit `limits.max_message_bytes`).
pub fn contents(raw: &[u8], limits: &Limits) -> Result<Contents, ParseError> {
    let unbounded = Limits {
        max_attachments: usize::MAX,
        ..*limits
    };
    let summary = parse(raw, &unbounded)?;
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(ParseError::NotAMessage("no header section"))?;
    let read = |index: Option<&u32>, html: bool| {
        let part = message.parts.get(*index? as usize)?;
        match (&part.body, html) {
            (PartType::Text(_), false) | (PartType::Html(_), true) => {
                recode::part_text(&message, part, MAX_BODY_BYTES)
            }
            _ => None,
        }
    };
    let html = read(message.html_body.first(), true);
    let text = read(message.text_body.first(), false)
        .or_else(|| html.as_deref().map(html_to_text))
        .unwrap_or_default();
    let mut attachments = Vec::with_capacity(summary.attachments.len());
    for info in &summary.attachments {
        let Some(index) = crate::part_index(&message, &info.part_id) else {
            continue;
        };
        let Some(part) = message.parts.get(index as usize) else {
            continue;
        };
        let bytes = match &part.body {
            PartType::Message(inner) => inner.raw_message().to_vec(),
            _ => part.contents().to_vec(),
        };
        attachments.push(Attached {
            info: info.clone(),
            bytes,
        });
    }
    Ok(Contents {
        summary,
        text,
        html,
        attachments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &[u8] = b"From: A <a@example.org>\r\nTo: b@example.net\r\nSubject: report\r\n\
Message-ID: <r1@example.org>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain; charset=gb2312\r\nContent-Transfer-Encoding: base64\r\n\r\n\
1tC5+sTjusM=\r\n\
--b1\r\nContent-Type: application/pdf; name=\"q.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"q.pdf\"\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n";

    #[test]
    fn a_message_reads_whole_with_its_attachments_decoded() {
        let read = contents(MIXED, &Limits::default()).unwrap();
        assert_eq!(read.text.trim(), "\u{4e2d}\u{56fd}\u{4f60}\u{597d}");
        assert_eq!(read.html, None);
        assert_eq!(read.attachments.len(), 1);
        assert_eq!(read.attachments[0].info.file_name, "q.pdf");
        assert_eq!(read.attachments[0].bytes, b"%PDF-1.4\n");
        assert_eq!(read.summary.message_id.as_deref(), Some("r1@example.org"));
    }
}
