//! The POP3 client side (RFC 1939, UIDL from RFC 2449) ingest needs:
//! login, UIDL, RETR, QUIT. Every read is bounded, every step timed out; a
//! server that sends nonsense or hangs up mid-message is an error, not a panic.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};

/// Longest status line accepted.
const MAX_LINE: usize = 1_024;
/// Longest line of any kind (message lines included): a server streaming
/// bytes without a line end is cut off here.
const MAX_ANY_LINE: usize = 1024 * 1024;

/// A POP3 exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum Pop3Error {
    /// The connection failed or closed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The server did not answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The server said no.
    #[error("server refused {command}: {line}")]
    Refused {
        /// The command.
        command: &'static str,
        /// Its answer.
        line: String,
    },
    /// The server sent something that is not POP3.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A message larger than the limit.
    #[error("message over {0} bytes")]
    TooLarge(usize),
}

/// One POP3 session.
pub struct Pop3<S> {
    stream: BufReader<S>,
    timeout: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Pop3<S> {
    /// Reads the greeting.
    pub(crate) async fn greet(stream: S, timeout: Duration) -> Result<Self, Pop3Error> {
        let mut pop3 = Self {
            stream: BufReader::new(stream),
            timeout,
        };
        pop3.status("greeting").await?;
        Ok(pop3)
    }

    /// Continues a session on an upgraded stream (after `STLS`).
    pub(crate) fn resume(stream: S, timeout: Duration) -> Self {
        Self {
            stream: BufReader::new(stream),
            timeout,
        }
    }

    /// Asks for `STLS` and hands back the stream to upgrade. Bytes the
    /// server sent ahead of the handshake would be a downgrade attempt.
    pub(crate) async fn start_tls(mut self) -> Result<S, Pop3Error> {
        self.command("STLS", "STLS").await?;
        if !self.stream.buffer().is_empty() {
            return Err(Pop3Error::Protocol(
                "data after STLS before the handshake".to_owned(),
            ));
        }
        Ok(self.stream.into_inner())
    }

    async fn line(&mut self) -> Result<Vec<u8>, Pop3Error> {
        let mut line = Vec::new();
        let read = tokio::time::timeout(self.timeout, async {
            loop {
                let chunk = self.stream.fill_buf().await?;
                if chunk.is_empty() {
                    return Err(Pop3Error::Protocol("connection closed mid-line".to_owned()));
                }
                let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
                    Some(end) => (end + 1, true),
                    None => (chunk.len(), false),
                };
                line.extend_from_slice(&chunk[..take]);
                self.stream.consume(take);
                if line.len() > MAX_ANY_LINE {
                    return Err(Pop3Error::Protocol(format!(
                        "a line over {MAX_ANY_LINE} bytes"
                    )));
                }
                if done {
                    return Ok(());
                }
            }
        });
        read.await.map_err(|_| Pop3Error::Timeout(self.timeout))??;
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        Ok(line)
    }

    async fn status(&mut self, command: &'static str) -> Result<String, Pop3Error> {
        let line = self.line().await?;
        if line.len() > MAX_LINE {
            return Err(Pop3Error::Protocol(format!(
                "{command}: status line of {} bytes",
                line.len()
            )));
        }
        let line = String::from_utf8_lossy(&line).into_owned();
        if line.starts_with("+OK") {
            Ok(line)
        } else if line.starts_with("-ERR") {
            Err(Pop3Error::Refused { command, line })
        } else {
            Err(Pop3Error::Protocol(format!("{command}: {line:.80}")))
        }
    }

    async fn command(&mut self, command: &'static str, text: &str) -> Result<String, Pop3Error> {
        self.stream
            .get_mut()
            .write_all(format!("{text}\r\n").as_bytes())
            .await?;
        self.status(command).await
    }

    /// USER/PASS login.
    pub async fn login(&mut self, user: &str, password: &str) -> Result<(), Pop3Error> {
        if user.contains(['\r', '\n']) || password.contains(['\r', '\n']) {
            return Err(Pop3Error::Protocol(
                "credentials contain a line break".to_owned(),
            ));
        }
        self.command("USER", &format!("USER {user}")).await?;
        self.command("PASS", &format!("PASS {password}")).await?;
        Ok(())
    }

    /// Message numbers with their unique ids.
    pub async fn uidl(&mut self) -> Result<Vec<(u32, String)>, Pop3Error> {
        self.command("UIDL", "UIDL").await?;
        let mut out = Vec::new();
        loop {
            let line = self.line().await?;
            if line == b"." {
                return Ok(out);
            }
            let text = String::from_utf8_lossy(&line);
            let mut fields = text.split_whitespace();
            let number = fields.next().and_then(|n| n.parse().ok());
            let uid = fields.next().filter(|u| u.len() <= 70);
            match (number, uid) {
                (Some(number), Some(uid)) => out.push((number, uid.to_owned())),
                _ => return Err(Pop3Error::Protocol(format!("UIDL line {text:.80}"))),
            }
        }
    }

    /// Message numbers with their sizes in octets.
    pub(crate) async fn list(&mut self) -> Result<Vec<(u32, u64)>, Pop3Error> {
        self.command("LIST", "LIST").await?;
        let mut out = Vec::new();
        loop {
            let line = self.line().await?;
            if line == b"." {
                return Ok(out);
            }
            let text = String::from_utf8_lossy(&line);
            let mut fields = text.split_whitespace();
            match (
                fields.next().and_then(|n| n.parse().ok()),
                fields.next().and_then(|n| n.parse().ok()),
            ) {
                (Some(number), Some(size)) => out.push((number, size)),
                _ => return Err(Pop3Error::Protocol(format!("LIST line {text:.80}"))),
            }
        }
    }

    /// The header section of message `number` (`TOP n 0`), at most `max` bytes.
    pub(crate) async fn headers(&mut self, number: u32, max: usize) -> Result<Vec<u8>, Pop3Error> {
        self.command("TOP", &format!("TOP {number} 0")).await?;
        self.multiline(max).await
    }

    /// Message `number`, dot-unstuffed, at most `max` bytes.
    pub(crate) async fn retr(&mut self, number: u32, max: usize) -> Result<Vec<u8>, Pop3Error> {
        self.command("RETR", &format!("RETR {number}")).await?;
        self.multiline(max).await
    }

    /// A dot-terminated, dot-stuffed body. Over `max` the session is out of
    /// step (the rest is still coming): the caller must drop it.
    async fn multiline(&mut self, max: usize) -> Result<Vec<u8>, Pop3Error> {
        let mut message = Vec::new();
        loop {
            let line = self.line().await?;
            if line == b"." {
                return Ok(message);
            }
            let line = line.strip_prefix(b".").unwrap_or(&line);
            if message.len() + line.len() + 2 > max {
                return Err(Pop3Error::TooLarge(max));
            }
            message.extend_from_slice(line);
            message.extend_from_slice(b"\r\n");
        }
    }

    /// Ends the session.
    pub async fn quit(mut self) -> Result<(), Pop3Error> {
        self.command("QUIT", "QUIT").await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt as _;

    /// A scripted server: answers each command line with the next reply.
    async fn scripted(replies: &'static [&'static str]) -> Pop3<tokio::io::DuplexStream> {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let mut replies = replies.iter();
            server
                .write_all(replies.next().unwrap().as_bytes())
                .await
                .unwrap();
            let mut buf = [0u8; 1024];
            for reply in replies {
                if server.read(&mut buf).await.unwrap_or(0) == 0 {
                    return;
                }
                server.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        Pop3::greet(client, Duration::from_secs(2)).await.unwrap()
    }

    #[tokio::test]
    async fn uidl_and_retr_unstuff_dots() {
        let mut pop3 = scripted(&[
            "+OK hi\r\n",
            "+OK\r\n1 abc\r\n2 def\r\n.\r\n",
            "+OK 30 octets\r\nSubject: x\r\n\r\n..leading dot\r\n.\r\n",
        ])
        .await;
        assert_eq!(
            pop3.uidl().await.unwrap(),
            [(1, "abc".to_owned()), (2, "def".to_owned())]
        );
        assert_eq!(
            pop3.retr(1, 1_000).await.unwrap(),
            b"Subject: x\r\n\r\n.leading dot\r\n"
        );
    }

    #[tokio::test]
    async fn nonsense_and_hang_ups_are_errors() {
        let mut pop3 = scripted(&["+OK hi\r\n", "HELLO THERE\r\n"]).await;
        assert!(matches!(pop3.uidl().await, Err(Pop3Error::Protocol(_))));
        let mut pop3 = scripted(&["+OK hi\r\n", "+OK\r\nSubject: cut off"]).await;
        assert!(matches!(
            pop3.retr(1, 1_000).await,
            Err(Pop3Error::Protocol(_) | Pop3Error::Timeout(_))
        ));
        let mut pop3 = scripted(&["+OK hi\r\n", "-ERR no such message\r\n"]).await;
        assert!(matches!(
            pop3.retr(9, 1_000).await,
            Err(Pop3Error::Refused {
                command: "RETR",
                ..
            })
        ));
        let mut pop3 = scripted(&["+OK hi\r\n", "+OK\r\n1 a\r\n2\r\n.\r\n"]).await;
        assert!(matches!(pop3.uidl().await, Err(Pop3Error::Protocol(_))));
        let mut pop3 = scripted(&[
            "+OK hi\r\n",
            "+OK\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n.\r\n",
        ])
        .await;
        assert!(matches!(
            pop3.retr(1, 10).await,
            Err(Pop3Error::TooLarge(10))
        ));
    }
}
