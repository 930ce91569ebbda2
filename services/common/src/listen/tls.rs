//! A listener that serves plain TCP or TLS (rustls) behind the same
//! admission gate: connections are admitted within the caps before any
//! handshake (a flood of sockets costs no handshake work past them), and
//! handshakes run in their own tasks so a slow client never holds up the
//! others. The session service's device port and the ActiveSync front
//! door serve through it.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::either::Either;

use super::http::{self, HttpLimits};
use super::{Admitted, Gate};

/// Handshakes in progress or accepted but not yet served.
const HANDSHAKE_QUEUE: usize = 1_024;
/// A client that does not finish the handshake in this is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepted connections, plain or TLS.
pub enum PlainOrTls {
    /// Plain TCP.
    Plain {
        /// The bound socket.
        listener: TcpListener,
        /// Connection caps.
        gate: Gate,
        /// Idle timeout of a connection.
        idle: Option<Duration>,
    },
    /// TLS: handshakes run in their own tasks, so a slow client never
    /// holds up the others; finished ones queue here.
    Tls {
        /// Finished handshakes.
        ready: mpsc::Receiver<(Box<TlsStream<Admitted<TcpStream>>>, SocketAddr)>,
        /// The bound address.
        local: SocketAddr,
    },
}

impl PlainOrTls {
    /// Serves `listener` plain, or through `tls`, admitting connections
    /// within `limits` (before any TLS handshake, so a flood of sockets
    /// costs no handshake work past the caps).
    pub fn new(
        name: &str,
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        limits: &HttpLimits,
    ) -> std::io::Result<Self> {
        let gate = Gate::new(name, limits.connections());
        let idle = limits.idle();
        let Some(tls) = tls else {
            return Ok(Self::Plain {
                listener,
                gate,
                idle,
            });
        };
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(HANDSHAKE_QUEUE);
        tokio::spawn(async move {
            loop {
                // A TLS client would not understand a plain HTTP refusal.
                // The listener goes with the server: not at the next
                // connection after it.
                let (stream, permit, peer) = tokio::select! {
                    accepted = super::accept(&listener, &gate, |_| b"") => accepted,
                    () = tx.closed() => return,
                };
                let stream = Admitted::new(stream, permit, idle);
                let tls = tls.clone();
                let queue = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let _ = queue.send((Box::new(stream), peer)).await;
                        }
                        Ok(Err(err)) => {
                            tracing::debug!(%peer, error = %crate::report::Report(&err), "TLS handshake failed")
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

impl axum::serve::Listener for PlainOrTls {
    type Io = Accepted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self {
            Self::Plain {
                listener,
                gate,
                idle,
            } => {
                let (stream, permit, peer) = super::accept(listener, gate, http::refusal).await;
                (Either::Left(Admitted::new(stream, permit, *idle)), peer)
            }
            Self::Tls { ready, .. } => match ready.recv().await {
                Some((stream, peer)) => (Either::Right(stream), peer),
                // The acceptor task only ends with the listener: never serve again.
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            Self::Plain { listener, .. } => listener.local_addr(),
            Self::Tls { local, .. } => Ok(*local),
        }
    }
}

/// A connection as accepted: plain or TLS, holding its slots of
/// the listener's caps. The TLS state (1.2 KiB) is boxed so that a plain
/// connection does not carry its size.
pub type Accepted = Either<Admitted<TcpStream>, Box<TlsStream<Admitted<TcpStream>>>>;
