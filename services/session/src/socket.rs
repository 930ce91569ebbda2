//! A server-side WebSocket over any byte stream: whole messages in, frames
//! out. Between frames an idle connection holds no buffer at all: reads
//! land on the stack and only a partial frame is kept.

use std::future::poll_fn;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::frame::{self, Frame, Opcode, Violation};

/// Bytes read from the stream at a time (on the stack). A device's frames
/// are tens of bytes; a bigger one takes a few reads.
const READ_CHUNK: usize = 1_024;

/// A whole message from the device.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// A text message, UTF-8 checked.
    Text(String),
    /// A binary message (its bytes are not kept: devices send text).
    Binary,
    /// A ping, to be answered with a pong of the same payload.
    Ping(Vec<u8>),
    /// A pong (unsolicited or not, ignored).
    Pong,
    /// The device closes, with its code if it gave one.
    Close(Option<u16>),
}

/// Why a read ended the connection.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecvError {
    /// The stream failed.
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
    /// The device broke the protocol; the stream is out of step after it.
    #[error("{0}")]
    Violation(Violation),
}

/// The server's end of a WebSocket.
pub(crate) struct WebSocket<S> {
    io: S,
    /// Bytes read past the last whole frame (empty, unallocated, between
    /// the frames of an idle device).
    pending: Vec<u8>,
    /// A fragmented message being put together: its opcode and payload.
    message: Option<(Opcode, Vec<u8>)>,
    /// The longest message taken.
    max: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// A WebSocket on a stream whose opening handshake is done; `read` is
    /// what was read past the handshake.
    pub(crate) fn new(io: S, max: usize, read: &[u8]) -> Self {
        Self {
            io,
            pending: read.to_vec(),
            message: None,
            max,
        }
    }

    /// The next message; `Ok(None)` once the stream ended between frames.
    pub(crate) async fn recv(&mut self) -> Result<Option<Incoming>, RecvError> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Incoming>, RecvError>> {
        loop {
            if !self.pending.is_empty()
                && let Some(incoming) = self.take_pending()?
            {
                return Poll::Ready(Ok(Some(incoming)));
            }
            let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
            let mut read = ReadBuf::uninit(&mut chunk);
            ready!(Pin::new(&mut self.io).poll_read(cx, &mut read))?;
            let bytes = read.filled();
            if bytes.is_empty() {
                if self.pending.is_empty() && self.message.is_none() {
                    return Poll::Ready(Ok(None));
                }
                return Poll::Ready(Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()));
            }
            if !self.pending.is_empty() {
                self.pending.extend_from_slice(bytes);
                continue;
            }
            // The usual case: one whole frame, decoded straight off the stack.
            let mut at = 0;
            while let Some((frame, used)) =
                frame::decode(&bytes[at..], self.max).map_err(RecvError::Violation)?
            {
                at += used;
                if let Some(incoming) = self.assemble(frame)? {
                    self.pending.extend_from_slice(&bytes[at..]);
                    return Poll::Ready(Ok(Some(incoming)));
                }
            }
            self.pending.extend_from_slice(&bytes[at..]);
        }
    }

    /// The next message from bytes already read, if they hold one.
    fn take_pending(&mut self) -> Result<Option<Incoming>, RecvError> {
        let mut at = 0;
        let mut found = None;
        while let Some((frame, used)) =
            frame::decode(&self.pending[at..], self.max).map_err(RecvError::Violation)?
        {
            at += used;
            if let Some(incoming) = self.assemble(frame)? {
                found = Some(incoming);
                break;
            }
        }
        if at == self.pending.len() {
            // Free it: an idle connection keeps nothing between frames.
            self.pending = Vec::new();
        } else {
            self.pending.drain(..at);
        }
        Ok(found)
    }

    /// Adds a frame to the message in progress; a whole message comes out.
    fn assemble(&mut self, frame: Frame) -> Result<Option<Incoming>, RecvError> {
        let Frame {
            fin,
            opcode,
            payload,
        } = frame;
        let violation = |v| Err(RecvError::Violation(v));
        let (opcode, payload) = match (opcode, self.message.take()) {
            (Opcode::Ping, started) => {
                self.message = started;
                return Ok(Some(Incoming::Ping(payload)));
            }
            (Opcode::Pong, started) => {
                self.message = started;
                return Ok(Some(Incoming::Pong));
            }
            (Opcode::Close, _) => {
                let code = frame::close_code(&payload).map_err(RecvError::Violation)?;
                return Ok(Some(Incoming::Close(code)));
            }
            (Opcode::Continuation, None) => {
                return violation(Violation::Protocol("a continuation outside a message"));
            }
            (Opcode::Text | Opcode::Binary, Some(_)) => {
                return violation(Violation::Protocol("a new message inside a fragmented one"));
            }
            (Opcode::Continuation, Some((opcode, mut started))) => {
                if started.len() + payload.len() > self.max {
                    return violation(Violation::TooLarge);
                }
                started.extend_from_slice(&payload);
                (opcode, started)
            }
            (opcode, None) => (opcode, payload),
        };
        if !fin {
            self.message = Some((opcode, payload));
            return Ok(None);
        }
        match opcode {
            Opcode::Text => String::from_utf8(payload)
                .map(|text| Some(Incoming::Text(text)))
                .or_else(|_| violation(Violation::NotUtf8)),
            _ => Ok(Some(Incoming::Binary)),
        }
    }

    /// Writes bytes that are whole frames and flushes them.
    pub(crate) async fn send_raw(&mut self, frames: &[u8]) -> io::Result<()> {
        self.io.write_all(frames).await?;
        self.io.flush().await
    }

    /// Writes one text message (the server sends prepared frames).
    #[cfg(test)]
    pub(crate) async fn send_text(&mut self, text: &str) -> io::Result<()> {
        self.send_raw(&frame::text(text)).await
    }

    /// Answers a ping.
    pub(crate) async fn pong(&mut self, payload: &[u8]) -> io::Result<()> {
        let mut out = Vec::with_capacity(payload.len() + 2);
        frame::encode(Opcode::Pong, payload, &mut out);
        self.send_raw(&out).await
    }

    /// Reads and drops what the device still sends, until it ends its side
    /// or `budget` bytes went by. After a refused frame the rest of it may
    /// still be arriving: closing over unread bytes makes the kernel reset
    /// the connection, and a reset can make the device's TCP throw away the
    /// error and close frames before its application read them (the
    /// lingering close of RFC 9112 §9.6).
    pub(crate) async fn discard(&mut self, budget: usize) -> io::Result<()> {
        self.pending = Vec::new();
        self.message = None;
        let mut chunk = [0u8; READ_CHUNK];
        let mut left = budget;
        while left > 0 {
            match self.io.read(&mut chunk).await? {
                0 => return Ok(()),
                n => left = left.saturating_sub(n),
            }
        }
        Ok(())
    }

    /// Sends a close frame and ends the stream (the server closes the TCP
    /// connection first, as RFC 6455 asks).
    pub(crate) async fn close(&mut self, code: Option<u16>, reason: &str) -> io::Result<()> {
        let mut payload = Vec::new();
        if let Some(code) = code {
            payload.extend_from_slice(&code.to_be_bytes());
            payload.extend_from_slice(reason.as_bytes());
        }
        let mut out = Vec::with_capacity(payload.len() + 2);
        frame::encode(Opcode::Close, &payload, &mut out);
        self.send_raw(&out).await?;
        self.io.shutdown().await
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

    use super::*;

    const MASK: [u8; 4] = [1, 2, 3, 4];

    fn client(first: u8, payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() <= 125);
        let mut out = vec![first, 0x80 | payload.len() as u8];
        out.extend_from_slice(&MASK);
        out.extend(payload.iter().zip(MASK.iter().cycle()).map(|(b, k)| b ^ k));
        out
    }

    fn pair() -> (WebSocket<DuplexStream>, DuplexStream) {
        let (server, device) = duplex(4_096);
        (WebSocket::new(server, 64, &[]), device)
    }

    #[tokio::test]
    async fn messages_come_out_whole_however_the_bytes_arrive() {
        let (mut ws, mut device) = pair();
        let mut wire = client(0x81, b"one");
        wire.extend(client(0x81, b"two"));
        // Fragmented, with a ping between its fragments.
        wire.extend(client(0x01, b"thr"));
        wire.extend(client(0x89, b"?"));
        wire.extend(client(0x80, b"ee"));
        wire.extend(client(0x82, b"\x00"));
        wire.extend(client(0x8A, b""));
        for chunk in wire.chunks(3) {
            device.write_all(chunk).await.unwrap();
        }
        drop(device);
        let mut got = Vec::new();
        while let Some(message) = ws.recv().await.unwrap() {
            got.push(message);
        }
        assert_eq!(
            got,
            [
                Incoming::Text("one".into()),
                Incoming::Text("two".into()),
                Incoming::Ping(b"?".to_vec()),
                Incoming::Text("three".into()),
                Incoming::Binary,
                Incoming::Pong,
            ]
        );
        assert!(ws.pending.capacity() == 0, "nothing kept between frames");
    }

    #[tokio::test]
    async fn bytes_read_with_the_handshake_come_first() {
        let (server, mut device) = duplex(4_096);
        let early = [client(0x81, b"early"), client(0x81, b"la")].concat();
        let mut ws = WebSocket::new(server, 64, &early[..early.len() - 1]);
        device.write_all(&early[early.len() - 1..]).await.unwrap();
        device.write_all(&client(0x81, b"late")).await.unwrap();
        assert_eq!(
            ws.recv().await.unwrap(),
            Some(Incoming::Text("early".into()))
        );
        assert_eq!(ws.recv().await.unwrap(), Some(Incoming::Text("la".into())));
        assert_eq!(
            ws.recv().await.unwrap(),
            Some(Incoming::Text("late".into()))
        );
    }

    #[tokio::test]
    async fn frames_in_one_read_come_out_one_by_one() {
        let (mut ws, mut device) = pair();
        let mut wire = client(0x81, b"a");
        wire.extend(client(0x81, b"b"));
        wire.extend(client(0x88, &1000u16.to_be_bytes()));
        device.write_all(&wire).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Some(Incoming::Text("a".into())));
        assert_eq!(ws.recv().await.unwrap(), Some(Incoming::Text("b".into())));
        assert_eq!(ws.recv().await.unwrap(), Some(Incoming::Close(Some(1000))));
    }

    #[tokio::test]
    async fn broken_streams_are_violations_or_errors() {
        type Expected = fn(&RecvError) -> bool;
        let cases: [(&str, Vec<u8>, Expected); 6] = [
            ("unmasked", vec![0x81, 0x01, b'x'], |e| {
                matches!(e, RecvError::Violation(Violation::Protocol(_)))
            }),
            ("bad UTF-8", client(0x81, &[0xC3, 0x28]), |e| {
                matches!(e, RecvError::Violation(Violation::NotUtf8))
            }),
            ("continuation first", client(0x80, b"x"), |e| {
                matches!(e, RecvError::Violation(Violation::Protocol(_)))
            }),
            (
                "text inside a fragmented message",
                [client(0x01, b"a"), client(0x81, b"b")].concat(),
                |e| matches!(e, RecvError::Violation(Violation::Protocol(_))),
            ),
            (
                "fragments adding up past the limit",
                [client(0x01, &[b'a'; 60]), client(0x80, &[b'a'; 5])].concat(),
                |e| matches!(e, RecvError::Violation(Violation::TooLarge)),
            ),
            (
                "cut off mid-frame",
                client(0x81, b"abc")[..5].to_vec(),
                |e| matches!(e, RecvError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof),
            ),
        ];
        for (what, wire, expected) in cases {
            let (mut ws, mut device) = pair();
            device.write_all(&wire).await.unwrap();
            drop(device);
            let err = ws.recv().await.expect_err(what);
            assert!(expected(&err), "{what}: {err:?}");
        }
    }

    /// After a refusal the rest of the device's bytes are read off, up to
    /// the device's end or the budget, whichever comes first.
    #[tokio::test]
    async fn discard_reads_until_the_device_ends_or_the_budget_is_spent() {
        let guard = std::time::Duration::from_secs(10);
        // A frame over the limit, its whole payload, then more.
        let (mut ws, mut device) = pair();
        let mut oversized = vec![0x81, 0x80 | 126, 0x07, 0xD0];
        oversized.extend_from_slice(&MASK);
        oversized.extend([0u8; 2_000]);
        let sending = tokio::spawn(async move {
            device.write_all(&oversized).await.unwrap();
            device.write_all(&[0u8; 6_000]).await.unwrap();
            // The device ends its side.
        });
        let err = ws.recv().await.expect_err("oversized");
        assert!(matches!(err, RecvError::Violation(Violation::TooLarge)));
        tokio::time::timeout(guard, ws.discard(1 << 20))
            .await
            .expect("the device's end stops it")
            .unwrap();
        sending.await.expect("every byte the device sent was taken");

        // A device that keeps its side open: the budget stops it.
        let (mut ws, mut device) = pair();
        device.write_all(&[0u8; 3_000]).await.unwrap();
        tokio::time::timeout(guard, ws.discard(2_048))
            .await
            .expect("the budget stops it")
            .unwrap();
    }

    #[tokio::test]
    async fn server_frames_are_plain_and_close_ends_the_stream() {
        let (mut ws, mut device) = pair();
        ws.send_text("hi").await.unwrap();
        ws.pong(b"?").await.unwrap();
        ws.send_raw(&frame::static_text::<4>("ok")).await.unwrap();
        ws.close(Some(1001), "going away").await.unwrap();
        let mut got = Vec::new();
        device.read_to_end(&mut got).await.unwrap();
        let mut expected = vec![0x81, 2, b'h', b'i', 0x8A, 1, b'?', 0x81, 2, b'o', b'k'];
        expected.extend([0x88, 12, 0x03, 0xE9]);
        expected.extend(b"going away");
        assert_eq!(got, expected);
    }
}
