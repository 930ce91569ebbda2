//! The device frame codec on arbitrary bytes, as a device would send
//! them: the frame decoder alone, then the WebSocket that reassembles
//! messages from them, fed in chunks whose sizes the input chooses. It
//! must never panic, hang or keep more than its limit.

#![no_main]

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

// The codec modules themselves (the session's), compiled here without the
// rest of the service.
#[allow(dead_code, unreachable_pub)]
#[path = "../../src/frame.rs"]
mod frame;
#[allow(dead_code, unreachable_pub)]
#[path = "../../src/socket.rs"]
mod socket;

/// The longest message the fuzzed socket takes (small, so the limit is hit).
const MAX: usize = 512;

/// A device's side of a connection: `data` in chunks of `chunk` bytes;
/// what the server writes is dropped.
struct Device<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl AsyncRead for Device<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.data.len().min(self.chunk).min(buf.remaining());
        buf.put_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Device<'_> {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&first, data)) = input.split_first() else {
        return;
    };
    // The decoder: whole frames off the front, each within the limit.
    let mut at = 0;
    while let Ok(Some((frame, used))) = frame::decode(&data[at..], MAX) {
        assert!(used > 0 && at + used <= data.len());
        assert!(frame.payload.len() <= MAX);
        if frame.opcode == frame::Opcode::Close {
            let _ = frame::close_code(&frame.payload);
        }
        at += used;
    }
    // The socket: messages until the stream ends or breaks the protocol.
    let chunk = usize::from(first % 64) + 1;
    let device = Device { data, chunk };
    let mut ws = socket::WebSocket::new(device, MAX, &[]);
    futures::executor::block_on(async {
        for _ in 0..data.len() + 1 {
            match ws.recv().await {
                Ok(Some(socket::Incoming::Text(text))) => assert!(text.len() <= MAX),
                Ok(Some(socket::Incoming::Ping(payload))) => assert!(payload.len() <= 125),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return,
            }
        }
        panic!("more messages than input bytes");
    });
});
