//! A message as the Email class shows it (MS-ASEMAIL): the summary the
//! mailbox service lists, with the body the phone asked for, as the
//! `ApplicationData` of a Sync `Add`; and the read and flag changes a
//! phone sends back.

use pushmail_proto::common::v1::Address;
use pushmail_wbxml::{Element, Node, Tag, tag};

use crate::mail::{Body, BodyType, Summary};

const APPLICATION_DATA: Tag = tag("AirSync", "ApplicationData");
const TO: Tag = tag("Email", "To");
const CC: Tag = tag("Email", "Cc");
const FROM: Tag = tag("Email", "From");
const SUBJECT: Tag = tag("Email", "Subject");
const REPLY_TO: Tag = tag("Email", "ReplyTo");
const DATE_RECEIVED: Tag = tag("Email", "DateReceived");
const DISPLAY_TO: Tag = tag("Email", "DisplayTo");
const THREAD_TOPIC: Tag = tag("Email", "ThreadTopic");
const IMPORTANCE: Tag = tag("Email", "Importance");
const READ: Tag = tag("Email", "Read");
const MESSAGE_CLASS: Tag = tag("Email", "MessageClass");
const INTERNET_CPID: Tag = tag("Email", "InternetCPID");
const CONTENT_CLASS: Tag = tag("Email", "ContentClass");
const FLAG: Tag = tag("Email", "Flag");
// MS-ASEMAIL's `Status` inside `Flag` (token 0x3B).
const FLAG_STATUS: Tag = tag("Email", "Status");
const FLAG_TYPE: Tag = tag("Email", "FlagType");
const BODY: Tag = tag("AirSyncBase", "Body");
const TYPE: Tag = tag("AirSyncBase", "Type");
const ESTIMATED_DATA_SIZE: Tag = tag("AirSyncBase", "EstimatedDataSize");
const TRUNCATED: Tag = tag("AirSyncBase", "Truncated");
const DATA: Tag = tag("AirSyncBase", "Data");
const NATIVE_BODY_TYPE: Tag = tag("AirSyncBase", "NativeBodyType");
const ATTACHMENTS: Tag = tag("AirSyncBase", "Attachments");
const ATTACHMENT: Tag = tag("AirSyncBase", "Attachment");
const DISPLAY_NAME: Tag = tag("AirSyncBase", "DisplayName");
const FILE_REFERENCE: Tag = tag("AirSyncBase", "FileReference");
const METHOD: Tag = tag("AirSyncBase", "Method");

/// MS-ASAIRS body types.
pub fn body_type_code(kind: BodyType) -> &'static str {
    match kind {
        BodyType::Html => "2",
        BodyType::Mime => "4",
        BodyType::Plain | BodyType::Unspecified => "1",
    }
}

/// A body type the phone named (`1`, `2`, `4`; RTF, `3`, is not served).
pub fn body_type(code: &str) -> Option<BodyType> {
    match code.trim() {
        "1" => Some(BodyType::Plain),
        "2" => Some(BodyType::Html),
        "4" => Some(BodyType::Mime),
        _ => None,
    }
}

/// Text an inline string can hold (no NUL).
fn clean(text: &str) -> String {
    text.replace('\0', "")
}

fn text(tag: Tag, value: &str) -> Element {
    Element::text_of(tag, clean(value))
}

/// `"Name" <address>`, or the bare address.
fn mailbox(address: &Address) -> String {
    if address.name.trim().is_empty() {
        address.address.clone()
    } else {
        format!(
            "\"{}\" <{}>",
            address.name.replace(['"', '\\'], ""),
            address.address
        )
    }
}

fn list(addresses: &[Address]) -> String {
    addresses.iter().map(mailbox).collect::<Vec<_>>().join(", ")
}

/// Recipients as a phone shows them: names where they have one.
pub fn display(addresses: &[Address]) -> String {
    addresses
        .iter()
        .map(|a| {
            if a.name.is_empty() {
                &a.address
            } else {
                &a.name
            }
        })
        .cloned()
        .collect::<Vec<_>>()
        .join("; ")
}

/// MS-ASDTYPE's date-time: `2026-12-07T14:00:00.000Z`.
pub fn date_time(at: Option<&prost_types::Timestamp>) -> String {
    let seconds = at.map_or(0, |t| t.seconds);
    jiff::Timestamp::from_second(seconds)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%S.000Z")
        .to_string()
}

/// The subject without reply and forward prefixes, for threading.
fn thread_topic(subject: &str) -> &str {
    let mut topic = subject.trim();
    loop {
        let lower = topic.to_ascii_lowercase();
        let Some(cut) = ["re:", "fw:", "fwd:", "aw:", "wg:", "回复:", "转发:"]
            .iter()
            .find(|p| lower.starts_with(*p))
            .map(|p| p.len())
        else {
            return topic;
        };
        topic = topic[cut..].trim_start();
    }
}

/// The follow-up flag as MS-ASEMAIL states it (2: active; empty: none).
fn flag(flagged: bool) -> Element {
    if flagged {
        Element::of(FLAG)
            .with(Element::text_of(FLAG_STATUS, "2"))
            .with(Element::text_of(FLAG_TYPE, "Flag for follow up"))
    } else {
        Element::of(FLAG)
    }
}

/// The `ApplicationData` of a read or flag change.
pub fn changed(read: bool, flagged: bool) -> Element {
    Element::of(APPLICATION_DATA)
        .with(Element::text_of(READ, if read { "1" } else { "0" }))
        .with(flag(flagged))
}

/// The `ApplicationData` of a new message, with its `body` when the
/// mailbox gave one.
pub fn added(summary: &Summary, body: Option<&Body>, attachments: bool) -> Element {
    let flags = summary.flags.unwrap_or_default();
    let received = summary.received.as_ref().or(summary.date.as_ref());
    let mut data = Element::of(APPLICATION_DATA)
        .with(text(TO, &list(&summary.to)))
        .with(text(CC, &list(&summary.cc)))
        .with(text(
            FROM,
            &summary.from.as_ref().map(mailbox).unwrap_or_default(),
        ))
        .with(text(SUBJECT, &summary.subject))
        .with(text(
            REPLY_TO,
            &summary.from.as_ref().map(mailbox).unwrap_or_default(),
        ))
        .with(Element::text_of(DATE_RECEIVED, date_time(received)))
        .with(text(DISPLAY_TO, &display(&summary.to)))
        .with(text(THREAD_TOPIC, thread_topic(&summary.subject)))
        .with(Element::text_of(IMPORTANCE, "1"))
        .with(Element::text_of(READ, if flags.seen { "1" } else { "0" }));
    // With attachments turned off in the preferences none is listed
    // (and ItemOperations refuses to fetch one).
    if attachments && !summary.attachments.is_empty() {
        let mut attachments = Element::of(ATTACHMENTS);
        for attachment in &summary.attachments {
            attachments = attachments.with(
                Element::of(ATTACHMENT)
                    .with(text(DISPLAY_NAME, &attachment.file_name))
                    .with(text(
                        FILE_REFERENCE,
                        &file_reference(&summary.message_id, &attachment.part_id),
                    ))
                    // 1: a regular attachment, fetched by reference.
                    .with(Element::text_of(METHOD, "1"))
                    .with(Element::text_of(
                        ESTIMATED_DATA_SIZE,
                        attachment.size_bytes.to_string(),
                    )),
            );
        }
        data = data.with(attachments);
    }
    if let Some(body) = body {
        data = data.with(body_element(body));
    }
    data.with(Element::text_of(MESSAGE_CLASS, "IPM.Note"))
        .with(Element::text_of(INTERNET_CPID, "65001"))
        .with(flag(flags.flagged))
        .with(Element::text_of(
            CONTENT_CLASS,
            "urn:content-classes:message",
        ))
        .with(Element::text_of(
            NATIVE_BODY_TYPE,
            body_type_code(body.map_or(BodyType::Plain, |b| b.r#type())),
        ))
}

/// An attachment's reference: its message and MIME part.
pub fn file_reference(message_id: &str, part_id: &str) -> String {
    format!("{message_id}:{part_id}")
}

fn body_element(body: &Body) -> Element {
    let kind = body.r#type();
    let data = if kind == BodyType::Mime {
        // The message as mailed need not be UTF-8: opaque bytes.
        let mut data = Element::of(DATA);
        data.children.push(Node::Opaque(body.data.clone()));
        data
    } else {
        text(DATA, &String::from_utf8_lossy(&body.data))
    };
    Element::of(BODY)
        .with(Element::text_of(TYPE, body_type_code(kind)))
        .with(Element::text_of(
            ESTIMATED_DATA_SIZE,
            body.total_bytes.to_string(),
        ))
        .with(Element::text_of(
            TRUNCATED,
            if body.truncated { "1" } else { "0" },
        ))
        .with(data)
}

/// What a phone's `Change` of a message asks: read, flagged.
pub fn client_change(data: &Element) -> (Option<bool>, Option<bool>) {
    let read = data.get(READ).map(|r| r.text().trim() == "1");
    // An empty Flag clears it; Status 2 is active, 1 complete, 0 cleared.
    let flagged = data
        .get(FLAG)
        .map(|f| f.get(FLAG_STATUS).is_some_and(|s| s.text().trim() == "2"));
    (read, flagged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_topics_read_as_phones_expect() {
        let at = prost_types::Timestamp {
            seconds: 1_796_652_000,
            nanos: 0,
        };
        assert_eq!(date_time(Some(&at)), "2026-12-07T14:00:00.000Z");
        assert_eq!(thread_topic("Re: Fwd: RE: lunch"), "lunch");
        assert_eq!(thread_topic("回复: 会议"), "会议");
        assert_eq!(thread_topic("Reply all"), "Reply all");
    }

    #[test]
    fn a_phones_change_reads_read_and_flag() {
        let data = Element::of(APPLICATION_DATA)
            .with(Element::text_of(READ, "1"))
            .with(Element::of(FLAG).with(Element::text_of(FLAG_STATUS, "2")));
        assert_eq!(client_change(&data), (Some(true), Some(true)));
        let cleared = Element::of(APPLICATION_DATA).with(Element::of(FLAG));
        assert_eq!(client_change(&cleared), (None, Some(false)));
    }

    #[test]
    fn addresses_are_quoted_and_nul_is_dropped() {
        let a = Address {
            name: "Li \"Lei\"".to_owned(),
            address: "li@example.org".to_owned(),
        };
        assert_eq!(mailbox(&a), "\"Li Lei\" <li@example.org>");
        assert_eq!(clean("a\0b"), "ab");
    }
}
