//! A message's body as a mail app shows it beside a sync: the plain text,
//! the HTML (plain text for a message without any), or the message as
//! mailed, cut to what the app asked for. Text is cut at a character
//! boundary, so a cut body is still valid UTF-8.

/// Most bytes of one body, whatever is asked: a mail app fetches the rest
/// of a longer one when the user opens it.
pub(crate) const MAX_BODY_BYTES: u64 = 512 * 1024;

/// What to give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// Plain text.
    Plain,
    /// HTML.
    Html,
    /// The message as mailed.
    Mime,
}

/// A body, possibly cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Body {
    /// What `data` is.
    pub(crate) kind: BodyKind,
    /// The body, or its start.
    pub(crate) data: Vec<u8>,
    /// The whole body's size.
    pub(crate) total: u64,
    /// Whether `data` is only the start.
    pub(crate) truncated: bool,
}

/// `raw`'s body of `kind` (HTML falls back to plain text), at most
/// `max_bytes` (0, or more than [`MAX_BODY_BYTES`]: that bound). A stored
/// message the parser cannot read is shown as its own text: one bad mail
/// must not stop a phone's sync of the folder.
pub(crate) fn body(raw: &[u8], kind: BodyKind, max_bytes: u64) -> Body {
    let max = usize::try_from(match max_bytes {
        0 => MAX_BODY_BYTES,
        n => n.min(MAX_BODY_BYTES),
    })
    .unwrap_or(usize::MAX);
    if kind == BodyKind::Mime {
        let cut = raw.len().min(max);
        return Body {
            kind,
            data: raw[..cut].to_vec(),
            total: raw.len() as u64,
            truncated: cut < raw.len(),
        };
    }
    let limits = pushmail_mime::Limits {
        max_message_bytes: raw.len().max(1),
        ..pushmail_mime::Limits::default()
    };
    let (kind, text) = match pushmail_mime::contents(raw, &limits) {
        Ok(contents) => match (kind, contents.html) {
            (BodyKind::Html, Some(html)) => (BodyKind::Html, html),
            _ => (BodyKind::Plain, contents.text),
        },
        Err(_) => (
            BodyKind::Plain,
            String::from_utf8_lossy(raw).replace('\0', ""),
        ),
    };
    let mut cut = text.len().min(max);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let total = text.len() as u64;
    let mut data = text.into_bytes();
    data.truncate(cut);
    Body {
        kind,
        total,
        truncated: (cut as u64) < total,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALTERNATIVE: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\
        MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=x\r\n\r\n\
        --x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xe4\xbd\xa0\xe5\xa5\xbd world\r\n\
        --x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>\xe4\xbd\xa0\xe5\xa5\xbd world</p>\r\n--x--\r\n";

    const PLAIN: &[u8] =
        b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\njust text\r\n";

    #[test]
    fn each_kind_is_read_and_html_falls_back_to_text() {
        let plain = body(ALTERNATIVE, BodyKind::Plain, 0);
        assert_eq!(plain.kind, BodyKind::Plain);
        assert!(
            String::from_utf8(plain.data)
                .unwrap()
                .starts_with("你好 world")
        );
        let html = body(ALTERNATIVE, BodyKind::Html, 0);
        assert_eq!(html.kind, BodyKind::Html);
        assert!(
            String::from_utf8(html.data)
                .unwrap()
                .contains("<p>你好 world</p>")
        );
        let fallback = body(PLAIN, BodyKind::Html, 0);
        assert_eq!(fallback.kind, BodyKind::Plain);
        let mime = body(PLAIN, BodyKind::Mime, 0);
        assert_eq!((mime.data.as_slice(), mime.truncated), (PLAIN, false));
    }

    #[test]
    fn a_message_the_parser_refuses_is_shown_as_its_text() {
        let raw = b"\x00no header at all\r\n";
        assert!(pushmail_mime::contents(raw, &pushmail_mime::Limits::default()).is_err());
        let shown = body(raw, BodyKind::Html, 0);
        assert_eq!(shown.kind, BodyKind::Plain);
        assert_eq!(shown.data, b"no header at all\r\n");
        assert!(!shown.truncated);
    }

    #[test]
    fn a_cut_stays_within_bounds_and_on_a_character() {
        // "你" is three bytes: a cut at 4 keeps one character.
        let cut = body(ALTERNATIVE, BodyKind::Plain, 4);
        assert_eq!(cut.data, "你".as_bytes());
        assert!(cut.truncated);
        assert!(cut.total > 4);
        let raw = body(PLAIN, BodyKind::Mime, 10);
        assert_eq!((raw.data.len(), raw.truncated), (10, true));
        assert_eq!(raw.total, PLAIN.len() as u64);
        let huge = vec![b'a'; 2 * MAX_BODY_BYTES as usize];
        let capped = body(&huge, BodyKind::Mime, u64::MAX);
        assert_eq!(capped.data.len() as u64, MAX_BODY_BYTES);
    }
}
