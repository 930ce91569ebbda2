//! A message's summary as the index keeps it: read once from the raw
//! message when it is filed (by the parser ingest and the IMAP backend
//! use, so a summary reads the same whichever backend lists it), kept as
//! JSON, so a sync lists a page without opening a single blob.

use pushmail_mime::Limits;
use serde::{Deserialize, Serialize};

use crate::domain::{Address, Attachment, Part, Summary};

/// The summary of `raw`. A message that does not parse still lists (its
/// size and arrival are known): it is the user's mail, not ours to hide.
pub fn summarise(raw: &[u8]) -> Summary {
    let limits = Limits {
        max_message_bytes: usize::MAX,
        ..Limits::default()
    };
    let mut summary = Summary {
        size_bytes: raw.len() as u64,
        ..Summary::default()
    };
    if let Ok(parsed) = pushmail_mime::parse(raw, &limits) {
        summary.parts = parts_of(&parsed.attachments);
        summary.from = parsed.from;
        summary.to = parsed.to;
        summary.cc = parsed.cc;
        summary.subject = parsed.subject;
        summary.date_ms = parsed.date_ms;
        summary.snippet = parsed.snippet;
        summary.attachments = parsed.attachments;
        summary.rfc_message_id = parsed.message_id;
        summary.in_reply_to = parsed.in_reply_to;
        summary.references = parsed.references;
    }
    summary
}

/// The parts a summary lists: its attachments (bodies are read from the
/// whole message, which this store always has).
fn parts_of(attachments: &[Attachment]) -> Vec<Part> {
    attachments
        .iter()
        .map(|a| Part {
            part_id: a.part_id.clone(),
            content_type: a.content_type.clone(),
            file_name: a.file_name.clone(),
            size_bytes: a.size_bytes,
            content_id: String::new(),
            attachment: true,
        })
        .collect()
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredAddress {
    #[serde(rename = "n", default, skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(rename = "a")]
    address: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredAttachment {
    part: String,
    name: String,
    #[serde(rename = "type")]
    content_type: String,
    size: u64,
}

/// Version 1. Flags, size and arrival are the index's columns, not here.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<StoredAddress>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    to: Vec<StoredAddress>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    cc: Vec<StoredAddress>,
    #[serde(default)]
    subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    date_ms: Option<i64>,
    #[serde(default)]
    snippet: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<StoredAttachment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    in_reply_to: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    references: Vec<String>,
}

fn address_out(a: &Address) -> StoredAddress {
    StoredAddress {
        name: a.name.clone(),
        address: a.address.clone(),
    }
}

fn address_in(a: StoredAddress) -> Address {
    Address {
        name: a.name,
        address: a.address,
    }
}

/// What the index keeps of `summary`.
pub(crate) fn encode(summary: &Summary) -> String {
    let stored = Stored {
        from: summary.from.as_ref().map(address_out),
        to: summary.to.iter().map(address_out).collect(),
        cc: summary.cc.iter().map(address_out).collect(),
        subject: summary.subject.clone(),
        date_ms: summary.date_ms,
        snippet: summary.snippet.clone(),
        attachments: summary
            .attachments
            .iter()
            .map(|a| StoredAttachment {
                part: a.part_id.clone(),
                name: a.file_name.clone(),
                content_type: a.content_type.clone(),
                size: a.size_bytes,
            })
            .collect(),
        message_id: summary.rfc_message_id.clone(),
        in_reply_to: summary.in_reply_to.clone(),
        references: summary.references.clone(),
    };
    serde_json::to_string(&stored).unwrap_or_else(|_| "{}".to_owned())
}

/// The summary the index kept. One that no longer reads (written by a
/// later version, or damaged) lists empty rather than hiding the message.
pub(crate) fn decode(text: &str) -> Summary {
    let stored: Stored = serde_json::from_str(text).unwrap_or_default();
    let attachments: Vec<Attachment> = stored
        .attachments
        .into_iter()
        .map(|a| Attachment {
            part_id: a.part,
            file_name: a.name,
            content_type: a.content_type,
            size_bytes: a.size,
        })
        .collect();
    Summary {
        from: stored.from.map(address_in),
        to: stored.to.into_iter().map(address_in).collect(),
        cc: stored.cc.into_iter().map(address_in).collect(),
        subject: stored.subject,
        date_ms: stored.date_ms,
        snippet: stored.snippet,
        parts: parts_of(&attachments),
        attachments,
        rfc_message_id: stored.message_id,
        in_reply_to: stored.in_reply_to,
        references: stored.references,
        ..Summary::default()
    }
}
