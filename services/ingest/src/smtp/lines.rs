//! Bounded line reading: a client cannot make us buffer more than we
//! allow, and an over-long line is consumed (so the dialogue stays in step)
//! but reported.

use tokio::io::{AsyncBufRead, AsyncBufReadExt as _};

/// How a line read ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Line {
    /// A whole line was appended (with its line ending).
    Complete,
    /// The line went past the limit; the part past it was discarded.
    TooLong,
    /// The line went on far past the limit (see [`overflow_at`]) and
    /// reading stopped in the middle of it: the dialogue is out of step,
    /// the connection must close. Without this an endless line would be
    /// read (and dropped) for as long as the sender keeps sending.
    Overflow,
    /// The peer closed the connection.
    Closed,
}

/// Bytes of one line read before giving up on it: four times the limit,
/// and never less than 64 KiB (a sender's over-long line is consumed and
/// answered while it is merely long, not endless).
pub(super) fn overflow_at(max: usize) -> usize {
    max.saturating_mul(4).max(64 * 1024)
}

/// Appends one line (up to and including `\n`) to `out`, keeping at most
/// `max` bytes of it.
pub(super) async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    out: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    let mut kept = 0usize;
    let mut seen = 0usize;
    let mut too_long = false;
    let overflow = overflow_at(max);
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(Line::Closed);
        }
        let (chunk, done) = match memchr(buf) {
            Some(at) => (&buf[..=at], true),
            None => (buf, false),
        };
        let room = max.saturating_sub(kept);
        if chunk.len() > room {
            too_long = true;
        }
        let take = chunk.len().min(room);
        out.extend_from_slice(&chunk[..take]);
        kept += take;
        let used = chunk.len();
        reader.consume(used);
        seen = seen.saturating_add(used);
        if !done && seen > overflow {
            return Ok(Line::Overflow);
        }
        if done {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

fn memchr(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n')
}

/// The line without its `\r\n` (or bare `\n`).
pub(super) fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// What reading a message body (after `DATA`) gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Body {
    /// The message, dot-unstuffed, with its original line endings.
    Message(Vec<u8>),
    /// Larger than allowed; the rest was read and dropped.
    TooLarge,
    /// The peer closed before the end.
    Closed,
    /// A line went on endlessly (see [`Line::Overflow`]): close.
    Overflow,
}

/// Reads up to the `<CRLF>.<CRLF>` terminator. Only a dot line ending in
/// CRLF ends the message: taking `\n.\n` as well would let a sender smuggle
/// a second message past a relay that reads it differently.
pub(super) async fn read_body<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Body> {
    let mut message = Vec::new();
    let mut line = Vec::new();
    let mut too_large = false;
    let mut at_line_start = true;
    loop {
        line.clear();
        // Two bytes more than the budget: the line ending of a message
        // exactly at the limit still fits.
        let budget = if too_large {
            0
        } else {
            max.saturating_sub(message.len()) + 2
        };
        match read_line(reader, &mut line, budget.max(3)).await? {
            Line::Closed => return Ok(Body::Closed),
            Line::Overflow => return Ok(Body::Overflow),
            Line::TooLong => {
                // The kept part lost the line's ending; a line that long is
                // refused anyway, so take it as a whole line.
                too_large = true;
                at_line_start = true;
                continue;
            }
            Line::Complete => {}
        }
        // A bare LF does not start an SMTP line: the dot after it is data.
        let line_start = at_line_start;
        at_line_start = line.ends_with(b"\r\n");
        if line_start && line == b".\r\n" {
            return Ok(if too_large {
                Body::TooLarge
            } else {
                Body::Message(message)
            });
        }
        if too_large {
            continue;
        }
        let content = match line.strip_prefix(b".") {
            Some(unstuffed) if line_start => unstuffed,
            _ => &line,
        };
        message.extend_from_slice(content);
        if message.len() > max {
            too_large = true;
            message = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(input: &[u8], max: usize) -> (Body, Vec<u8>) {
        let mut reader = tokio::io::BufReader::with_capacity(7, input);
        let body = read_body(&mut reader, max).await.unwrap();
        let mut rest = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut rest)
            .await
            .unwrap();
        (body, rest)
    }

    #[tokio::test]
    async fn bodies_are_unstuffed_and_end_only_at_crlf_dot_crlf() {
        let (got, rest) = body(b"a\r\n..b\r\n\n.\nc\n.\r\nd\r\n.\r\nQUIT\r\n", 100).await;
        assert_eq!(
            got,
            Body::Message(b"a\r\n.b\r\n\n.\nc\n.\r\nd\r\n".to_vec()),
            "dots after a bare LF are data"
        );
        assert_eq!(rest, b"QUIT\r\n", "the next command is left unread");
    }

    #[tokio::test]
    async fn a_large_body_is_read_through_and_refused() {
        let mut input = b"x".repeat(50);
        input.extend_from_slice(b"\r\nmore\r\n.\r\nQUIT\r\n");
        let (got, rest) = body(&input, 20).await;
        assert_eq!(got, Body::TooLarge);
        assert_eq!(rest, b"QUIT\r\n");
        let (got, _) = body(b"12345678\r\n.\r\n", 10).await;
        assert_eq!(
            got,
            Body::Message(b"12345678\r\n".to_vec()),
            "exactly at the limit"
        );
        let (got, _) = body(b"123456789\r\n.\r\n", 10).await;
        assert_eq!(got, Body::TooLarge, "one byte over");
    }

    #[tokio::test]
    async fn a_body_cut_off_is_not_a_message() {
        assert_eq!(body(b"a\r\nb\r\n", 100).await.0, Body::Closed);
    }

    #[tokio::test]
    async fn an_endless_line_is_given_up_on() {
        let endless = vec![b'x'; 200 * 1024];
        let mut reader = tokio::io::BufReader::with_capacity(4096, &endless[..]);
        let mut out = Vec::new();
        assert_eq!(
            read_line(&mut reader, &mut out, 512).await.unwrap(),
            Line::Overflow
        );
        assert_eq!(out.len(), 512, "only the limit was kept");
        let (got, _) = body(&endless, 1_000).await;
        assert_eq!(got, Body::Overflow);
    }

    #[tokio::test]
    async fn long_lines_are_consumed_not_buffered() {
        let mut reader = tokio::io::BufReader::with_capacity(4, &b"0123456789\r\nnext\r\n"[..]);
        let mut out = Vec::new();
        assert_eq!(
            read_line(&mut reader, &mut out, 5).await.unwrap(),
            Line::TooLong
        );
        assert_eq!(out, b"01234");
        out.clear();
        assert_eq!(
            read_line(&mut reader, &mut out, 8).await.unwrap(),
            Line::Complete
        );
        assert_eq!(trim_eol(&out), b"next");
    }
}
