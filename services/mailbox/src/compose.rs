//! A message the phone sends, written out: new, reply, reply-all or
//! forward (inline with the original's attachments, or the original
//! attached whole), the user's signature, threading headers, and the
//! original quoted under a header in the user's language. Pure: the
//! original's contents and the uploads come in, RFC 5322 bytes and the
//! SMTP envelope go out. The MIME is written by mail-builder.

use std::collections::HashSet;

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address as Mailbox;
use pushmail_mime::{Contents, MailAddress};

/// Most recipients (To, Cc and Bcc together) of one message.
pub const MAX_RECIPIENTS: usize = 100;
/// Most `References` carried forward (the newest).
const MAX_REFERENCES: usize = 20;

/// What is being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A new message.
    New,
    /// To the original's sender.
    Reply,
    /// To the original's sender and its other recipients.
    ReplyAll,
    /// The original quoted, its attachments attached.
    ForwardInline,
    /// The original attached whole.
    ForwardAttached,
}

impl Kind {
    fn replies(self) -> bool {
        matches!(self, Self::Reply | Self::ReplyAll)
    }
}

/// The user's signature.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signature {
    /// Plain text.
    pub text: String,
    /// HTML (optional).
    pub html: Option<String>,
}

/// A file to attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Its name.
    pub name: String,
    /// `type/subtype`.
    pub content_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// What the phone asked to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// What kind.
    pub kind: Kind,
    /// Recipients; on a reply, empty means the original's sender.
    pub to: Vec<MailAddress>,
    /// Copies.
    pub cc: Vec<MailAddress>,
    /// Blind copies (in the envelope only).
    pub bcc: Vec<MailAddress>,
    /// Empty on a reply or forward: the original's, prefixed.
    pub subject: String,
    /// The user's text.
    pub text: String,
    /// Optional HTML of the same.
    pub html: Option<String>,
    /// Uploaded files.
    pub files: Vec<File>,
    /// Appended when set.
    pub signature: Option<Signature>,
    /// The user's language for the quote header (`zh…` or anything else
    /// for English).
    pub language: String,
}

/// A message ready for submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    /// RFC 5322 bytes (no Bcc header).
    pub raw: Vec<u8>,
    /// Its Message-ID (no angle brackets).
    pub message_id: String,
    /// Envelope recipients: To, Cc and Bcc, each once.
    pub recipients: Vec<String>,
}

/// The draft cannot be sent as it is.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// Nobody to send to.
    #[error("the message has no recipients")]
    NoRecipients,
    /// Too many recipients.
    #[error("{count} recipients; at most {MAX_RECIPIENTS} in one message")]
    TooManyRecipients {
        /// How many.
        count: usize,
    },
    /// An address that is not one.
    #[error("{0:?} is not a mail address")]
    BadAddress(String),
    /// A reply or forward without the message it answers.
    #[error("a reply or forward needs the original message")]
    NoOriginal,
    /// The MIME writer failed.
    #[error("the message could not be written")]
    Write(#[source] std::io::Error),
}

/// Writes `draft` from `sender` (answering `original` for a reply or
/// forward) at `now_ms`.
pub fn compose(
    sender: &MailAddress,
    draft: &Draft,
    original: Option<(&Contents, &[u8])>,
    now_ms: i64,
) -> Result<Composed, ComposeError> {
    let needs_original = draft.kind != Kind::New;
    let original = match (needs_original, original) {
        (true, None) => return Err(ComposeError::NoOriginal),
        (true, Some(original)) => Some(original),
        (false, _) => None,
    };
    let (to, cc) = recipients(sender, draft, original.map(|(c, _)| c));
    let envelope = envelope(&to, &cc, &draft.bcc)?;
    let domain = sender
        .address
        .rsplit_once('@')
        .map_or("pushmail.invalid", |(_, d)| d);
    let message_id = format!("{}@{domain}", uuid::Uuid::new_v4().simple());
    let zh = draft.language.to_ascii_lowercase().starts_with("zh");
    let subject = subject(draft, original.map(|(c, _)| c));
    let (text, html) = bodies(draft, original.map(|(c, _)| c), zh);

    let mut builder = MessageBuilder::new()
        .from(mailbox(sender))
        .subject(subject)
        .message_id(message_id.clone())
        .date(now_ms.div_euclid(1_000))
        .text_body(text);
    if !to.is_empty() {
        builder = builder.to(list(&to));
    }
    if !cc.is_empty() {
        builder = builder.cc(list(&cc));
    }
    if let Some(html) = html {
        builder = builder.html_body(html);
    }
    if let Some((contents, _)) = original {
        builder = threaded(builder, draft.kind, contents);
    }
    let raw = attach(builder, draft, original)
        .write_to_vec()
        .map_err(ComposeError::Write)?;
    Ok(Composed {
        raw,
        message_id,
        recipients: envelope,
    })
}

/// Envelope recipients: every address checked, each once, at most
/// [`MAX_RECIPIENTS`].
fn envelope(
    to: &[MailAddress],
    cc: &[MailAddress],
    bcc: &[MailAddress],
) -> Result<Vec<String>, ComposeError> {
    let mut envelope = Vec::new();
    let mut seen = HashSet::new();
    for address in to.iter().chain(cc).chain(bcc) {
        check_address(&address.address)?;
        if seen.insert(address.address.to_ascii_lowercase()) {
            envelope.push(address.address.clone());
        }
    }
    match envelope.len() {
        0 => Err(ComposeError::NoRecipients),
        count if count > MAX_RECIPIENTS => Err(ComposeError::TooManyRecipients { count }),
        _ => Ok(envelope),
    }
}

/// `In-Reply-To` (replies) and `References` (replies and forwards).
fn threaded<'x>(
    mut builder: MessageBuilder<'x>,
    kind: Kind,
    original: &Contents,
) -> MessageBuilder<'x> {
    let summary = &original.summary;
    let Some(id) = &summary.message_id else {
        return builder;
    };
    let mut references: Vec<String> = summary.references.clone();
    if references.is_empty() {
        references.extend(summary.in_reply_to.iter().cloned());
    }
    references.push(id.clone());
    let skip = references.len().saturating_sub(MAX_REFERENCES);
    let references: Vec<String> = references.into_iter().skip(skip).collect();
    if kind.replies() {
        builder = builder.in_reply_to(id.clone());
    }
    builder.references(references)
}

/// The uploads, and what a forward carries of the original.
fn attach<'x>(
    mut builder: MessageBuilder<'x>,
    draft: &Draft,
    original: Option<(&Contents, &[u8])>,
) -> MessageBuilder<'x> {
    for file in &draft.files {
        builder = builder.attachment(
            file.content_type.clone(),
            file.name.clone(),
            file.bytes.clone(),
        );
    }
    match (draft.kind, original) {
        (Kind::ForwardInline, Some((contents, _))) => {
            for attached in &contents.attachments {
                builder = builder.attachment(
                    attached.info.content_type.clone(),
                    attached.info.file_name.clone(),
                    attached.bytes.clone(),
                );
            }
        }
        (Kind::ForwardAttached, Some((contents, raw))) => {
            let name = format!("{}.eml", file_stem(&contents.summary.subject));
            builder = builder.attachment("message/rfc822", name, raw.to_vec());
        }
        _ => {}
    }
    builder
}

/// To and Cc: as drafted, or on a reply taken from the original.
fn recipients(
    sender: &MailAddress,
    draft: &Draft,
    original: Option<&Contents>,
) -> (Vec<MailAddress>, Vec<MailAddress>) {
    let Some(original) = original.filter(|_| draft.kind.replies() && draft.to.is_empty()) else {
        return (draft.to.clone(), draft.cc.clone());
    };
    let summary = &original.summary;
    let to: Vec<MailAddress> = summary.from.iter().cloned().collect();
    let mut cc = draft.cc.clone();
    if draft.kind == Kind::ReplyAll {
        let mut taken: HashSet<String> = to
            .iter()
            .chain(&cc)
            .map(|a| a.address.to_ascii_lowercase())
            .collect();
        taken.insert(sender.address.to_ascii_lowercase());
        for address in summary.to.iter().chain(&summary.cc) {
            if taken.insert(address.address.to_ascii_lowercase()) {
                cc.push(address.clone());
            }
        }
    }
    (to, cc)
}

fn check_address(address: &str) -> Result<(), ComposeError> {
    let bad = || ComposeError::BadAddress(address.to_owned());
    let (local, domain) = address.rsplit_once('@').ok_or_else(bad)?;
    let fine = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && address.len() <= 254
        && !address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'));
    if fine { Ok(()) } else { Err(bad()) }
}

/// The subject: as drafted, or the original's with one `Re:` / `Fwd:`.
fn subject(draft: &Draft, original: Option<&Contents>) -> String {
    if !draft.subject.is_empty() {
        return draft.subject.clone();
    }
    let Some(original) = original else {
        return String::new();
    };
    let base = original.summary.subject.trim();
    let lower = base.to_lowercase();
    let (prefix, already): (&str, &[&str]) = if draft.kind.replies() {
        (
            "Re: ",
            &["re:", "re：", "回复:", "回复：", "答复:", "答复：", "aw:"],
        )
    } else {
        ("Fwd: ", &["fwd:", "fw:", "转发:", "转发：", "wg:"])
    };
    if already.iter().any(|p| lower.starts_with(p)) {
        base.to_owned()
    } else {
        format!("{prefix}{base}")
    }
}

/// The text body and, when anything has HTML, the HTML body.
fn bodies(draft: &Draft, original: Option<&Contents>, zh: bool) -> (String, Option<String>) {
    let mut text = draft.text.clone();
    let signature = draft
        .signature
        .as_ref()
        .filter(|s| !s.text.is_empty() || s.html.is_some());
    if let Some(signature) = signature {
        text.push_str("\n\n-- \n");
        text.push_str(&signature.text);
    }
    let quoted =
        original.filter(|_| draft.kind != Kind::ForwardAttached && draft.kind != Kind::New);
    if let Some(original) = quoted {
        text.push_str("\n\n");
        text.push_str(&quote_header(original, draft.kind, zh));
        text.push('\n');
        for line in original.text.lines() {
            if draft.kind.replies() {
                text.push_str(if line.is_empty() { ">" } else { "> " });
            }
            text.push_str(line);
            text.push('\n');
        }
    }
    let wants_html = draft.html.is_some()
        || signature.is_some_and(|s| s.html.is_some())
        || quoted.is_some_and(|o| o.html.is_some());
    if !wants_html {
        return (text, None);
    }
    let mut html = draft
        .html
        .clone()
        .unwrap_or_else(|| format!("<div>{}</div>", escape(&draft.text).replace('\n', "<br>")));
    if let Some(signature) = signature {
        let body = signature
            .html
            .clone()
            .unwrap_or_else(|| escape(&signature.text).replace('\n', "<br>"));
        html.push_str(&format!("<div class=\"signature\">-- <br>{body}</div>"));
    }
    if let Some(original) = quoted {
        let header = escape(&quote_header(original, draft.kind, zh)).replace('\n', "<br>");
        let body = original
            .html
            .clone()
            .unwrap_or_else(|| format!("<pre>{}</pre>", escape(&original.text)));
        html.push_str(&format!(
            "<div>{header}</div><blockquote type=\"cite\">{body}</blockquote>"
        ));
    }
    (text, Some(html))
}

/// "On …, … wrote:" or the forwarded-message header, in the user's language.
fn quote_header(original: &Contents, kind: Kind, zh: bool) -> String {
    let summary = &original.summary;
    let who = summary.from.as_ref().map_or_else(String::new, shown);
    let when = summary.date_ms.map(|ms| date(ms, zh)).unwrap_or_default();
    if kind.replies() {
        return if zh {
            format!("在 {when}，{who} 写道：")
        } else {
            format!("On {when}, {who} wrote:")
        };
    }
    let to = summary.to.iter().map(shown).collect::<Vec<_>>().join(", ");
    if zh {
        format!(
            "---------- 转发的邮件 ----------\n发件人：{who}\n日期：{when}\n主题：{}\n收件人：{to}",
            summary.subject
        )
    } else {
        format!(
            "---------- Forwarded message ----------\nFrom: {who}\nDate: {when}\nSubject: {}\nTo: {to}",
            summary.subject
        )
    }
}

fn shown(address: &MailAddress) -> String {
    if address.name.is_empty() {
        address.address.clone()
    } else {
        format!("{} <{}>", address.name, address.address)
    }
}

fn date(ms: i64, zh: bool) -> String {
    let Ok(at) = jiff::Timestamp::from_millisecond(ms) else {
        return String::new();
    };
    let utc = at.to_zoned_datetime(jiff::tz::TimeZone::UTC);
    if zh {
        utc.strftime("%Y年%-m月%-d日 %H:%M (UTC)").to_string()
    } else {
        utc.strftime("%a, %-d %b %Y %H:%M UTC").to_string()
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A subject made safe as a file name.
fn file_stem(subject: &str) -> String {
    let stem: String = subject
        .chars()
        .map(|c| {
            if c.is_control() || "/\\:*?\"<>|".contains(c) {
                '_'
            } else {
                c
            }
        })
        .take(80)
        .collect();
    if stem.trim().is_empty() {
        "message".to_owned()
    } else {
        stem
    }
}

fn mailbox(address: &MailAddress) -> Mailbox<'static> {
    Mailbox::new_address(
        (!address.name.is_empty()).then(|| address.name.clone()),
        address.address.clone(),
    )
}

fn list(addresses: &[MailAddress]) -> Mailbox<'static> {
    Mailbox::new_list(addresses.iter().map(mailbox).collect())
}

#[cfg(test)]
mod tests {
    use pushmail_mime::{Limits, contents};

    use super::*;

    const ORIGINAL: &[u8] =
        b"From: Alice <alice@example.org>\r\nTo: me@example.net, Bob <bob@example.org>\r\n\
Cc: carol@example.org\r\nSubject: Q3 numbers\r\nMessage-ID: <q3@example.org>\r\n\
References: <r0@example.org>\r\nDate: Mon, 7 Dec 2026 08:00:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee attached.\r\nAlice\r\n\
--b1\r\nContent-Type: application/pdf; name=\"q3.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"q3.pdf\"\r\n\r\nJVBERi0xLjQKJcfsj6IK\r\n--b1--\r\n";

    fn me() -> MailAddress {
        MailAddress {
            name: "Me".into(),
            address: "me@example.net".into(),
        }
    }

    fn draft(kind: Kind) -> Draft {
        Draft {
            kind,
            to: Vec::new(),
            cc: Vec::new(),
            bcc: Vec::new(),
            subject: String::new(),
            text: "Thanks!".into(),
            html: None,
            files: Vec::new(),
            signature: Some(Signature {
                text: "Sent from my phone".into(),
                html: None,
            }),
            language: "en".into(),
        }
    }

    fn sent(draft: &Draft) -> (Composed, Contents) {
        let original = contents(ORIGINAL, &Limits::default()).unwrap();
        let composed =
            compose(&me(), draft, Some((&original, ORIGINAL)), 1_800_000_000_000).unwrap();
        let read = contents(&composed.raw, &Limits::default()).unwrap();
        (composed, read)
    }

    #[test]
    fn a_reply_threads_quotes_and_signs() {
        let (composed, read) = sent(&draft(Kind::Reply));
        assert_eq!(composed.recipients, ["alice@example.org"]);
        assert_eq!(read.summary.subject, "Re: Q3 numbers");
        assert_eq!(read.summary.in_reply_to, ["q3@example.org"]);
        assert_eq!(
            read.summary.references,
            ["r0@example.org", "q3@example.org"]
        );
        let text = read.text.replace("\r\n", "\n");
        assert!(text.starts_with("Thanks!\n\n-- \nSent from my phone\n\nOn Mon, 7 Dec 2026 08:00 UTC, Alice <alice@example.org> wrote:\n> See attached.\n> Alice"), "{text}");
        assert!(read.attachments.is_empty());
        let raw = String::from_utf8_lossy(&composed.raw);
        assert!(raw.contains(&format!("<{}>", composed.message_id)));
    }

    #[test]
    fn reply_all_copies_everyone_but_the_sender_once() {
        let (composed, read) = sent(&draft(Kind::ReplyAll));
        assert_eq!(
            composed.recipients,
            ["alice@example.org", "bob@example.org", "carol@example.org"]
        );
        let cc: Vec<&str> = read.summary.cc.iter().map(|a| a.address.as_str()).collect();
        assert_eq!(cc, ["bob@example.org", "carol@example.org"]);
    }

    #[test]
    fn a_forward_carries_the_attachments_byte_for_byte() {
        let mut forward = draft(Kind::ForwardInline);
        forward.to = vec![MailAddress {
            name: String::new(),
            address: "dave@example.com".into(),
        }];
        forward.language = "zh-CN".into();
        let (_, read) = sent(&forward);
        assert_eq!(read.summary.subject, "Fwd: Q3 numbers");
        assert!(read.summary.in_reply_to.is_empty());
        assert!(
            read.text.contains("---------- 转发的邮件 ----------"),
            "{}",
            read.text
        );
        assert!(read.text.contains("发件人：Alice <alice@example.org>"));
        assert_eq!(read.attachments.len(), 1);
        assert_eq!(read.attachments[0].info.file_name, "q3.pdf");
        assert_eq!(read.attachments[0].bytes, b"%PDF-1.4\n%\xc7\xec\x8f\xa2\n");
    }

    #[test]
    fn a_forward_as_attachment_attaches_the_original_whole() {
        let mut forward = draft(Kind::ForwardAttached);
        forward.to = vec![MailAddress {
            name: String::new(),
            address: "dave@example.com".into(),
        }];
        forward.bcc = vec![MailAddress {
            name: String::new(),
            address: "eve@example.com".into(),
        }];
        let (composed, read) = sent(&forward);
        assert_eq!(composed.recipients, ["dave@example.com", "eve@example.com"]);
        assert!(!String::from_utf8_lossy(&composed.raw).contains("eve@example.com"));
        assert_eq!(read.attachments.len(), 1);
        assert_eq!(read.attachments[0].info.content_type, "message/rfc822");
        assert_eq!(read.attachments[0].bytes, ORIGINAL);
    }

    #[test]
    fn prefixes_are_not_doubled() {
        let mut original = contents(ORIGINAL, &Limits::default()).unwrap();
        original.summary.subject = "回复：季度报告".into();
        let composed = compose(&me(), &draft(Kind::Reply), Some((&original, ORIGINAL)), 0).unwrap();
        let read = contents(&composed.raw, &Limits::default()).unwrap();
        assert_eq!(read.summary.subject, "回复：季度报告");
    }

    #[test]
    fn bad_drafts_are_refused_with_reasons() {
        let mut new = draft(Kind::New);
        assert!(matches!(
            compose(&me(), &new, None, 0),
            Err(ComposeError::NoRecipients)
        ));
        new.to = vec![MailAddress {
            name: String::new(),
            address: "not an address".into(),
        }];
        assert!(matches!(
            compose(&me(), &new, None, 0),
            Err(ComposeError::BadAddress(_))
        ));
        new.to = (0..10_000)
            .map(|i| MailAddress {
                name: String::new(),
                address: format!("u{i}@example.com"),
            })
            .collect();
        assert!(matches!(
            compose(&me(), &new, None, 0),
            Err(ComposeError::TooManyRecipients { count: 10_000 })
        ));
        assert!(matches!(
            compose(&me(), &draft(Kind::Reply), None, 0),
            Err(ComposeError::NoOriginal)
        ));
    }

    #[test]
    fn an_html_signature_makes_an_html_alternative() {
        let mut new = draft(Kind::New);
        new.to = vec![MailAddress {
            name: String::new(),
            address: "dave@example.com".into(),
        }];
        new.signature = Some(Signature {
            text: "Me".into(),
            html: Some("<b>Me</b>".into()),
        });
        let composed = compose(&me(), &new, None, 0).unwrap();
        let read = contents(&composed.raw, &Limits::default()).unwrap();
        let html = read.html.unwrap();
        assert!(
            html.contains("<b>Me</b>") && html.contains("Thanks!"),
            "{html}"
        );
        assert!(
            read.text.replace("\r\n", "\n").contains("-- \nMe"),
            "{}",
            read.text
        );
    }
}

#[cfg(test)]
mod injection {
    use pushmail_mime::{Limits, contents};

    use super::*;

    #[test]
    fn line_breaks_in_subject_or_names_add_no_header() {
        let draft = Draft {
            kind: Kind::New,
            to: vec![MailAddress {
                name: "Bob\r\nBcc: evil@example.com".into(),
                address: "bob@example.com".into(),
            }],
            cc: Vec::new(),
            bcc: Vec::new(),
            subject: "hi\r\nBcc: evil@example.com\r\n\r\nforged body".into(),
            text: "real body".into(),
            html: None,
            files: Vec::new(),
            signature: None,
            language: String::new(),
        };
        let sender = MailAddress {
            name: "Me".into(),
            address: "me@example.net".into(),
        };
        let composed = compose(&sender, &draft, None, 0).unwrap();
        let raw = String::from_utf8_lossy(&composed.raw);
        let head = raw.split("\r\n\r\n").next().unwrap();
        assert!(
            !head
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
            "{head}"
        );
        assert_eq!(composed.recipients, ["bob@example.com"]);
        let read = contents(&composed.raw, &Limits::default()).unwrap();
        assert!(read.text.contains("real body"));
        assert!(!read.text.contains("forged body"));
    }
}
