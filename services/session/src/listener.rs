//! The device listener: plain TCP or TLS (rustls), optionally bound with
//! SO_REUSEPORT so several session processes share one port (one node can
//! then hold more connections than one process may open files).
//!
//! TLS here costs one handshake and a few KiB of buffers per connection;
//! terminating TLS at an ingress instead doubles the per-connection cost
//! (the proxy holds a socket pair and its own buffers per device), which is
//! why TLS is on by default where devices connect directly.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use pushmail_common::listen::http::{self, HttpLimits};
pub use pushmail_common::listen::tls::Accepted;
use pushmail_common::listen::tls::PlainOrTls;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;

/// Device connections, plain or TLS: the shared listener, labelled
/// `devices` in its metrics.
pub type DeviceListener = PlainOrTls;

/// Binds the device address (with SO_REUSEPORT when asked).
pub fn bind(addr: SocketAddr, reuse_port: bool, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    socket.bind(addr).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen for device endpoints on {addr}: {e}"),
        )
    })?;
    socket.listen(backlog)
}

/// Serves the device endpoints over HTTP/1.1 until `stop`, within
/// `limits` (the shared bounded serving of `pushmail_common::listen`),
/// then waits for the requests in flight (upgraded WebSockets live on in
/// their own tasks; the drain sends them away).
///
/// hyper's HTTP/1.1 connection rather than `axum::serve`, so an upgraded
/// connection can be unwrapped back to its socket ([`DeviceIo`]) and
/// every frame does not go through four layers of adapters. A connection
/// that has not sent a whole request head within the head deadline (from
/// connect, or from its previous answer) is closed; a request being
/// answered, such as a held long poll, is not timed by it.
pub async fn serve(
    listener: DeviceListener,
    router: axum::Router,
    limits: HttpLimits,
    stop: CancellationToken,
) -> std::io::Result<()> {
    http::serve(listener, router, &limits, stop).await
}

/// An upgraded device connection: its own socket again where the
/// connection was served by [`serve`], else hyper's wrapper.
pub enum DeviceIo {
    /// The accepted socket itself.
    Direct(Accepted),
    /// Served some other way (an embedding server): through hyper.
    Upgraded(TokioIo<Upgraded>),
}

impl DeviceIo {
    /// Unwraps the upgraded connection; the bytes are what the client sent
    /// after its handshake and hyper had already read.
    pub fn new(upgraded: Upgraded) -> (Self, Bytes) {
        match upgraded.downcast::<TokioIo<Accepted>>() {
            Ok(parts) => (Self::Direct(parts.io.into_inner()), parts.read_buf),
            Err(upgraded) => (Self::Upgraded(TokioIo::new(upgraded)), Bytes::new()),
        }
    }
}

impl AsyncRead for DeviceIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Direct(io) => Pin::new(io).poll_read(cx, buf),
            Self::Upgraded(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for DeviceIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Direct(io) => Pin::new(io).poll_write(cx, buf),
            Self::Upgraded(io) => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Direct(io) => Pin::new(io).poll_flush(cx),
            Self::Upgraded(io) => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Direct(io) => Pin::new(io).poll_shutdown(cx),
            Self::Upgraded(io) => Pin::new(io).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::body::Body;
    use axum::extract::Request;
    use axum::response::Response;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;
    use tokio_util::either::Either;

    use super::*;

    /// The point of serving HTTP/1.1 ourselves: the WebSocket runs on the
    /// socket, not through hyper's adapters.
    #[tokio::test]
    async fn an_upgraded_connection_is_its_socket_again() {
        let listener = bind("127.0.0.1:0".parse().unwrap(), false, 16).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let tx = Arc::new(Mutex::new(Some(tx)));
        let upgrade = move |mut request: Request| async move {
            let upgrade = request
                .extensions_mut()
                .remove::<hyper::upgrade::OnUpgrade>()
                .expect("an HTTP/1.1 connection can upgrade");
            tokio::spawn(async move {
                let (io, _) = DeviceIo::new(upgrade.await.unwrap());
                let sender = tx.lock().unwrap().take().unwrap();
                let _ = sender.send(matches!(io, DeviceIo::Direct(Either::Left(_))));
            });
            Response::builder()
                .status(101)
                .header("connection", "upgrade")
                .header("upgrade", "test")
                .body(Body::empty())
                .unwrap()
        };
        let router = axum::Router::new().route("/", axum::routing::get(upgrade));
        let stop = CancellationToken::new();
        let listener =
            DeviceListener::new("devices", listener, None, &HttpLimits::default()).unwrap();
        let server = tokio::spawn(serve(listener, router, HttpLimits::default(), stop.clone()));
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: test\r\n\r\n")
            .await
            .unwrap();
        assert!(rx.await.unwrap(), "the plain socket came back");
        stop.cancel();
        server.await.unwrap().unwrap();
    }

    const HEAD: Duration = Duration::from_secs(1);

    /// Serves `router` with a short header-read timeout.
    async fn serving(router: axum::Router) -> (SocketAddr, CancellationToken) {
        let listener = bind("127.0.0.1:0".parse().unwrap(), false, 16).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let limits = HttpLimits {
            header_read_timeout_seconds: 1,
            idle_timeout_seconds: 0,
            ..HttpLimits::default()
        };
        let listener = DeviceListener::new("devices", listener, None, &limits).unwrap();
        tokio::spawn(serve(listener, router, limits, stop.clone()));
        (addr, stop)
    }

    /// Everything the server sends until it closes (a guard against a
    /// server that never does).
    async fn until_closed(client: &mut TcpStream) -> String {
        let mut got = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(20), client.read_to_end(&mut got));
        // A reset also ends the connection; what matters is that it ends.
        let _ = read.await.expect("the server closed the connection");
        String::from_utf8_lossy(&got).into_owned()
    }

    #[tokio::test]
    async fn a_client_that_never_finishes_its_request_head_is_closed() {
        let router = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let (addr, stop) = serving(router).await;
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let mut partial = TcpStream::connect(addr).await.unwrap();
        partial
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        // One header line at a time, each in time, never the end.
        let mut dribble = TcpStream::connect(addr).await.unwrap();
        dribble.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let drip = async {
            for _ in 0..100 {
                tokio::time::sleep(HEAD / 3).await;
                if dribble.write_all(b"X-Slow: 1\r\n").await.is_err() {
                    return;
                }
            }
            panic!("a head dribbled a line at a time was read for 100 lines");
        };
        drip.await;
        assert_eq!(until_closed(&mut silent).await, "", "nothing was sent");
        assert_eq!(until_closed(&mut partial).await, "");
        stop.cancel();
    }

    /// The timeout is for reading a head, not for answering: a long poll
    /// held longer than it still gets its answer, and the kept-alive
    /// connection is timed again only from that answer.
    #[tokio::test]
    async fn a_held_request_is_answered_and_only_then_timed_again() {
        let held = || async {
            tokio::time::sleep(HEAD * 4).await;
            "answered"
        };
        let router = axum::Router::new().route("/", axum::routing::get(held));
        let (addr, stop) = serving(router).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let answer = until_closed(&mut client).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("answered"), "{answer}");
        stop.cancel();
    }
}
