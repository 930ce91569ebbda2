//! Summaries without downloading whole messages: one `UID FETCH` per batch
//! of the header, the first bytes of the text, flags, size, arrival date
//! and BODYSTRUCTURE. The header and text start go through the same parser
//! ingest uses (addresses, subject, snippet and threading read the same
//! everywhere); the attachment list comes from BODYSTRUCTURE, which sees
//! parts past the bytes fetched.

use std::borrow::Cow;
use std::collections::HashMap;

use async_imap::imap_proto::{
    AttributeValue, BodyStructure, MessageSection, Response, SectionPath,
};
use pushmail_mime::{Limits, file_name_from_params};

use crate::backend::BackendError;
use crate::domain::{Attachment, FolderId, Listed, MessageKey, Part, Summary, Uid};

use super::conn::{Conn, uid_set};
use super::select::read_flags;

/// Bytes of the text fetched for the snippet.
const TEXT_BYTES: u32 = 4_096;
/// Most bytes of a header section fetched: a listing holds at most this
/// per message whatever a sender put in the header.
const HEADER_BYTES: u32 = 64 * 1024;
/// UIDs per FETCH, bounding one answer's size.
const BATCH: usize = 200;

/// Summaries of `uids` (the folder is selected), in the order asked.
pub(crate) async fn fetch(
    conn: &mut Conn,
    folder: &FolderId,
    uid_validity: u32,
    uids: &[Uid],
) -> Result<Vec<Listed>, BackendError> {
    let mut found: HashMap<u32, Summary> = HashMap::with_capacity(uids.len());
    for batch in uids.chunks(BATCH) {
        let set = uid_set(&batch.iter().map(|u| u.0).collect::<Vec<_>>());
        let command = format!(
            "UID FETCH {set} (UID FLAGS RFC822.SIZE INTERNALDATE BODYSTRUCTURE BODY.PEEK[HEADER]<0.{HEADER_BYTES}> BODY.PEEK[TEXT]<0.{TEXT_BYTES}>)"
        );
        conn.exchange("FETCH", &command, |response| {
            if let Response::Fetch(_, attributes) = response
                && let Some((uid, summary)) = summarise(attributes)
            {
                found.insert(uid, summary);
            }
        })
        .await?;
    }
    Ok(uids
        .iter()
        .filter_map(|uid| {
            found.remove(&uid.0).map(|summary| Listed {
                key: MessageKey {
                    folder: folder.clone(),
                    uid_validity,
                    uid: *uid,
                },
                summary,
            })
        })
        .collect())
}

fn summarise(attributes: &[AttributeValue<'_>]) -> Option<(u32, Summary)> {
    let mut uid = None;
    let mut summary = Summary::default();
    let mut header: &[u8] = &[];
    let mut text: &[u8] = &[];
    let mut structure = None;
    for attribute in attributes {
        match attribute {
            AttributeValue::Uid(n) => uid = Some(*n),
            AttributeValue::Flags(list) => summary.flags = read_flags(list),
            AttributeValue::Rfc822Size(n) => summary.size_bytes = u64::from(*n),
            AttributeValue::InternalDate(date) => summary.received_ms = internal_date(date),
            AttributeValue::BodyStructure(body) => structure = Some(body),
            AttributeValue::BodySection {
                section: Some(SectionPath::Full(MessageSection::Header)),
                data: Some(data),
                ..
            } => header = data,
            AttributeValue::BodySection {
                section: Some(SectionPath::Full(MessageSection::Text)),
                data: Some(data),
                ..
            } => text = data,
            _ => {}
        }
    }
    let mut head = Vec::with_capacity(header.len() + text.len());
    head.extend_from_slice(header);
    head.extend_from_slice(text);
    // A message whose header does not parse still lists, with what the
    // server told us; it is the user's mail, not ours to hide.
    if let Ok(parsed) = pushmail_mime::parse(&head, &Limits::default()) {
        summary.from = parsed.from;
        summary.to = parsed.to;
        summary.cc = parsed.cc;
        summary.subject = parsed.subject;
        summary.date_ms = parsed.date_ms;
        summary.snippet = parsed.snippet;
        summary.rfc_message_id = parsed.message_id;
        summary.in_reply_to = parsed.in_reply_to;
        summary.references = parsed.references;
    }
    if let Some(structure) = structure {
        parts(structure, "", &mut summary.parts);
        summary.attachments = attachments(&summary.parts);
    }
    Some((uid?, summary))
}

/// INTERNALDATE (`17-Jul-1996 02:44:25 -0700`) in ms since the epoch.
fn internal_date(text: &str) -> Option<i64> {
    let zoned = jiff::fmt::strtime::parse("%d-%b-%Y %H:%M:%S %z", text.trim()).ok()?;
    Some(zoned.to_timestamp().ok()?.as_millisecond())
}

/// The leaf parts under `body`, whose section is `prefix` ("" at the
/// top). A forwarded message (message/rfc822) is one part, an attachment.
fn parts(body: &BodyStructure<'_>, prefix: &str, out: &mut Vec<Part>) {
    const MOST: usize = 200;
    let section = |n: usize| {
        if prefix.is_empty() {
            n.to_string()
        } else {
            format!("{prefix}.{n}")
        }
    };
    match body {
        BodyStructure::Multipart { bodies, .. } => {
            for (i, child) in bodies.iter().enumerate() {
                parts(child, &section(i + 1), out);
            }
        }
        BodyStructure::Basic { common, other, .. }
        | BodyStructure::Text { common, other, .. }
        | BodyStructure::Message { common, other, .. } => {
            if out.len() >= MOST {
                return;
            }
            let part_id = if prefix.is_empty() {
                "1".to_owned()
            } else {
                prefix.to_owned()
            };
            let disposition = common.disposition.as_ref();
            let name = file_name_from_params(
                &pairs(disposition.and_then(|d| d.params.as_ref())),
                &pairs(common.ty.params.as_ref()),
            );
            let ty = common.ty.ty.to_ascii_lowercase();
            let attached = disposition.is_some_and(|d| d.ty.eq_ignore_ascii_case("attachment"));
            let is_body = ty == "text" && name.is_none() && !attached;
            out.push(Part {
                file_name: name.unwrap_or_default(),
                content_type: format!("{ty}/{}", common.ty.subtype.to_ascii_lowercase()),
                size_bytes: decoded_size(other.octets, &other.transfer_encoding),
                content_id: other.id.as_deref().unwrap_or_default().to_owned(),
                attachment: !is_body,
                part_id,
            });
        }
    }
}

/// The parts a phone lists as attachments (a nameless one is named for
/// its section).
fn attachments(parts: &[Part]) -> Vec<Attachment> {
    const MOST: usize = 100;
    parts
        .iter()
        .filter(|p| p.attachment)
        .take(MOST)
        .map(|p| Attachment {
            part_id: p.part_id.clone(),
            file_name: if p.file_name.is_empty() {
                format!("attachment-{}", p.part_id)
            } else {
                p.file_name.clone()
            },
            content_type: p.content_type.clone(),
            size_bytes: p.size_bytes,
        })
        .collect()
}

/// BODYSTRUCTURE parameters as the MIME parser takes them.
fn pairs<'a>(list: Option<&'a Vec<(Cow<'a, str>, Cow<'a, str>)>>) -> Vec<(&'a str, &'a [u8])> {
    list.into_iter()
        .flatten()
        .map(|(name, value)| (name.as_ref(), value.as_bytes()))
        .collect()
}

/// About what `octets` of a part decode to.
fn decoded_size(octets: u32, encoding: &async_imap::imap_proto::ContentEncoding<'_>) -> u64 {
    use async_imap::imap_proto::ContentEncoding;
    let octets = u64::from(octets);
    match encoding {
        // Four characters per three bytes, less the line breaks (76 a line).
        ContentEncoding::Base64 => octets * 76 / 78 * 3 / 4,
        _ => octets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_dates_parse() {
        assert_eq!(
            internal_date("17-Jul-1996 02:44:25 -0700"),
            Some(837_596_665_000)
        );
        assert_eq!(
            internal_date(" 7-Jul-1996 02:44:25 +0000").map(|ms| ms > 0),
            Some(true)
        );
        assert_eq!(internal_date("yesterday"), None);
    }

    #[test]
    fn base64_sizes_are_decoded_sizes() {
        use async_imap::imap_proto::ContentEncoding;
        // 3 KiB of data: 4,096 characters in 54 lines of 76 + CRLF.
        let size = decoded_size(4_096 + 54 * 2, &ContentEncoding::Base64);
        assert!((3_000..=3_200).contains(&size), "{size}");
        assert_eq!(decoded_size(10, &ContentEncoding::SevenBit), 10);
    }
}
