//! The device listener: plain TCP or TLS (rustls), optionally bound with
//! SO_REUSEPORT so several session processes share one port (one node can
//! then hold more connections than one process may open files).
//!
//! TLS here costs one handshake and a few KiB of buffers per connection;
//! terminating TLS at an ingress instead doubles the per-connection cost
//! (the proxy holds a socket pair and its own buffers per device), which is
//! why TLS is on by default where devices connect directly.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::either::Either;

/// Handshakes in progress or accepted but not yet served.
const HANDSHAKE_QUEUE: usize = 1_024;
/// A client that does not finish the handshake in this is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Accepted device connections, plain or TLS.
pub enum DeviceListener {
    /// Plain TCP.
    Plain(TcpListener),
    /// TLS: handshakes run in their own tasks, so a slow client never
    /// holds up the others; finished ones queue here.
    Tls {
        /// Finished handshakes.
        ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
        /// The bound address.
        local: SocketAddr,
    },
}

impl DeviceListener {
    /// Serves `listener` plain, or through `tls`.
    pub fn new(listener: TcpListener, tls: Option<TlsAcceptor>) -> std::io::Result<Self> {
        let Some(tls) = tls else {
            return Ok(Self::Plain(listener));
        };
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(HANDSHAKE_QUEUE);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::warn!(error = %err, "device accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let tls = tls.clone();
                let queue = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let _ = queue.send((stream, peer)).await;
                        }
                        Ok(Err(err)) => {
                            tracing::debug!(%peer, error = %err, "TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
                if tx.is_closed() {
                    return;
                }
            }
        });
        Ok(Self::Tls { ready, local })
    }
}

impl axum::serve::Listener for DeviceListener {
    type Io = Either<TcpStream, TlsStream<TcpStream>>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self {
            Self::Plain(listener) => loop {
                match TcpListener::accept(listener).await {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        return (Either::Left(stream), peer);
                    }
                    Err(err) => {
                        // Out of file descriptors, typically: back off, keep serving.
                        tracing::warn!(error = %err, "device accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            },
            Self::Tls { ready, .. } => match ready.recv().await {
                Some((stream, peer)) => (Either::Right(stream), peer),
                // The acceptor task only ends with the listener: never serve again.
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            Self::Plain(listener) => listener.local_addr(),
            Self::Tls { local, .. } => Ok(*local),
        }
    }
}
