//! Bounded listeners: every accepted connection takes a slot of its
//! listener (a connection cap) and a slot of its peer (a per-address cap)
//! before any byte is read, and gives both back when it closes. HTTP, gRPC
//! and SMTP/LMTP listeners all admit connections through a [`Gate`], so a
//! flood from one address cannot take the slots of everyone else, and a
//! flood from many cannot take more sockets than the listener allows.
//!
//! An admitted connection is an [`Admitted`] stream: it holds the slots,
//! and (when configured) closes itself when no byte moved either way for
//! the idle timeout.

pub mod grpc;
pub mod http;
mod ports;
pub mod tls;

use std::collections::HashMap;
use std::future::Future as _;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::config::ConfigError;

pub use grpc::{GrpcLimits, GrpcListenersConfig};
pub use http::HttpLimits;
pub use ports::free_port;

/// How many connections a listener takes at once, in all and per peer.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionLimits {
    /// Connections open at once on the listener; past it new ones are
    /// refused at once.
    pub max_connections: usize,
    /// Connections open at once from one peer address (an IPv6 peer is
    /// its /64, which one host usually holds whole).
    pub max_connections_per_peer: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_connections_per_peer: 256,
        }
    }
}

impl ConnectionLimits {
    /// Both caps positive, the peer's within the listener's.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.max_connections == 0 || self.max_connections > Semaphore::MAX_PERMITS {
            return Err(ConfigError::invalid(
                format!("{prefix}max_connections"),
                "must be positive",
            ));
        }
        if self.max_connections_per_peer == 0
            || self.max_connections_per_peer > self.max_connections
        {
            return Err(ConfigError::invalid(
                format!("{prefix}max_connections_per_peer"),
                "must be positive and at most max_connections",
            ));
        }
        Ok(())
    }
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The listener holds `max_connections`.
    #[error("the listener is full")]
    Full,
    /// The peer holds `max_connections_per_peer`.
    #[error("too many connections from this address")]
    PeerFull,
}

impl Refused {
    fn label(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::PeerFull => "peer",
        }
    }
}

/// The address a per-peer cap counts by: the IPv4 address, or the /64 of
/// an IPv6 one (an IPv4-mapped IPv6 address is its IPv4 address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerKey(IpAddr);

impl PeerKey {
    /// The key of `ip`.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Self(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let mut segments = v6.segments();
                    segments[4..].fill(0);
                    Self(IpAddr::V6(segments.into()))
                }
            },
        }
    }
}

/// Admits connections to one listener within its [`ConnectionLimits`].
#[derive(Clone)]
pub struct Gate {
    inner: Arc<GateInner>,
}

struct GateInner {
    name: String,
    slots: Arc<Semaphore>,
    per_peer: usize,
    peers: Mutex<HashMap<PeerKey, usize>>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("name", &self.inner.name)
            .field("free", &self.inner.slots.available_permits())
            .field("per_peer", &self.inner.per_peer)
            .finish()
    }
}

impl Gate {
    /// A gate for the listener `name` (a metric label).
    pub fn new(name: &str, limits: ConnectionLimits) -> Self {
        Self {
            inner: Arc::new(GateInner {
                name: name.to_owned(),
                slots: Arc::new(Semaphore::new(limits.max_connections.max(1))),
                per_peer: limits.max_connections_per_peer.max(1),
                peers: Mutex::default(),
            }),
        }
    }

    /// Takes a slot of the listener and one of `peer`, or says which is full.
    pub fn admit(&self, peer: IpAddr) -> Result<Permit, Refused> {
        let refused = |why: Refused| {
            metrics::counter!(
                "pushmail_listener_refused_total",
                "listener" => self.inner.name.clone(),
                "reason" => why.label()
            )
            .increment(1);
            why
        };
        let slot = self
            .inner
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| refused(Refused::Full))?;
        let key = PeerKey::of(peer);
        {
            let mut peers = self.lock();
            let held = peers.entry(key).or_insert(0);
            if *held >= self.inner.per_peer {
                return Err(refused(Refused::PeerFull));
            }
            *held += 1;
        }
        Ok(Permit {
            gate: self.clone(),
            key,
            _slot: slot,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().values().sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PeerKey, usize>> {
        self.inner
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// One admitted connection's slots, given back when dropped.
pub struct Permit {
    gate: Gate,
    key: PeerKey,
    _slot: OwnedSemaphorePermit,
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit").field("peer", &self.key).finish()
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut peers = self.gate.lock();
        if let Some(held) = peers.get_mut(&self.key) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                peers.remove(&self.key);
            }
        }
    }
}

/// An admitted connection: the stream, its slots, and an optional idle
/// timer that ends it when no byte moved either way for its duration.
pub struct Admitted<S> {
    inner: S,
    idle: Option<Idle>,
    _permit: Permit,
}

struct Idle {
    after: Duration,
    timer: Pin<Box<Sleep>>,
}

impl Idle {
    fn progress(&mut self) {
        self.timer.as_mut().reset(Instant::now() + self.after);
    }

    /// Whether the connection has been idle too long (registering a wake-up
    /// otherwise).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.timer.as_mut().poll(cx).is_ready()
    }
}

fn idle_expired(idle: &mut Option<Idle>, cx: &mut Context<'_>) -> bool {
    idle.as_mut().is_some_and(|idle| idle.expired(cx))
}

fn idle_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle too long")
}

impl<S> Admitted<S> {
    /// `inner` holding `permit`, closed after `idle` without traffic (never
    /// when `None`).
    pub fn new(inner: S, permit: Permit, idle: Option<Duration>) -> Self {
        Self {
            inner,
            idle: idle.map(|after| Idle {
                after,
                timer: Box::pin(tokio::time::sleep(after)),
            }),
            _permit: permit,
        }
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The stream, mutably (for socket options).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for Admitted<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admitted")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Admitted<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if let Some(idle) = &mut this.idle
                    && buf.filled().len() > before
                {
                    idle.progress();
                }
                Poll::Ready(result)
            }
            Poll::Pending if idle_expired(&mut this.idle, cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Admitted<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(result) => {
                if let (Some(idle), Ok(n)) = (&mut this.idle, &result)
                    && *n > 0
                {
                    idle.progress();
                }
                Poll::Ready(result)
            }
            Poll::Pending if idle_expired(&mut this.idle, cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => {
                if let (Some(idle), Ok(n)) = (&mut this.idle, &result)
                    && *n > 0
                {
                    idle.progress();
                }
                Poll::Ready(result)
            }
            Poll::Pending if idle_expired(&mut this.idle, cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Accepts a TCP connection and admits it through `gate`, or refuses it
/// with `refusal` (one non-blocking write) and closes it. Accept errors
/// (out of descriptors, typically) pause briefly instead of spinning.
pub async fn accept(
    listener: &TcpListener,
    gate: &Gate,
    refusal: impl Fn(Refused) -> &'static [u8],
) -> (TcpStream, Permit, SocketAddr) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(error = %crate::report::Report(&err), "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        match gate.admit(peer.ip()) {
            Ok(permit) => {
                // Small answers must not wait out the peer's delayed ACK.
                let _ = stream.set_nodelay(true);
                return (stream, permit, peer);
            }
            Err(why) => {
                tracing::debug!(%peer, reason = %why, "connection refused");
                let _ = stream.try_write(refusal(why));
            }
        }
    }
}

/// Seconds as an optional idle timeout (0: none).
pub fn idle_after(seconds: u64) -> Option<Duration> {
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_capped_apart_and_slots_come_back() {
        let gate = Gate::new(
            "t",
            ConnectionLimits {
                max_connections: 3,
                max_connections_per_peer: 2,
            },
        );
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = gate.admit(a).unwrap();
        let _a2 = gate.admit(a).unwrap();
        assert_eq!(gate.admit(a).unwrap_err(), Refused::PeerFull);
        let _b1 = gate.admit(b).unwrap();
        assert_eq!(gate.admit(b).unwrap_err(), Refused::Full, "three in all");
        drop(a1);
        assert_eq!(gate.open(), 2);
        let _b2 = gate.admit(b).unwrap();
        assert_eq!(gate.open(), 3);
    }

    #[test]
    fn an_ipv6_peer_is_its_slash_64_and_a_mapped_one_its_ipv4() {
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let two: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(PeerKey::of(one), PeerKey::of(two));
        assert_ne!(PeerKey::of(one), PeerKey::of(other));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(
            PeerKey::of(mapped),
            PeerKey::of("10.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn limits_are_validated() {
        let bad = ConnectionLimits {
            max_connections: 10,
            max_connections_per_peer: 11,
        };
        let err = bad.validate("x.").unwrap_err().to_string();
        assert!(err.contains("x.max_connections_per_peer"), "{err}");
        assert!(ConnectionLimits::default().validate("x.").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_ends_itself() {
        use tokio::io::AsyncReadExt as _;
        let gate = Gate::new("t", ConnectionLimits::default());
        let (client, server) = tokio::io::duplex(64);
        let permit = gate.admit("10.0.0.1".parse().unwrap()).unwrap();
        let mut server = Admitted::new(server, permit, Some(Duration::from_secs(5)));
        let mut buf = [0u8; 8];
        let err = server.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(server);
        assert_eq!(gate.open(), 0, "the slot came back");
        drop(client);
    }
}
