//! Bounds of a gRPC server: its connections pass a [`Gate`]; each request
//! has a deadline (the caller's `grpc-timeout` when shorter) and takes a
//! slot of a server-wide concurrency limit; each connection carries at
//! most so many streams at once; and HTTP/2 keep-alive pings find dead or
//! silent peers.

use std::io;
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::server::{Connected, TcpIncoming};

use super::{Admitted, ConnectionLimits, Gate, idle_after};
use crate::config::ConfigError;

/// The `listeners` section of a service whose only public listener is
/// its gRPC server.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcListenersConfig {
    /// The gRPC server.
    pub grpc: GrpcLimits,
}

/// The bounds of one gRPC server.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcLimits {
    /// Connections open at once (callers keep a few long-lived ones each).
    pub max_connections: usize,
    /// Connections open at once from one address (IPv6: one /64).
    pub max_connections_per_peer: usize,
    /// Requests being handled at once across all connections; more wait
    /// (within their deadline) for a slot.
    pub max_concurrent_requests: usize,
    /// Streams (calls) open at once on one HTTP/2 connection.
    pub max_concurrent_streams: u32,
    /// The deadline of a request whose caller sets a longer one or none:
    /// past it the call ends with `DEADLINE_EXCEEDED` (a streamed answer's
    /// later messages are not timed by it).
    pub request_timeout_ms: u64,
    /// A connection on which no byte moved either way for this long is
    /// closed, e.g. one that never finished its HTTP/2 preface. Live
    /// connections carry keep-alive pings (`keepalive_seconds`), so this
    /// must be longer. 0: none.
    pub idle_timeout_seconds: u64,
    /// Interval of the server's HTTP/2 keep-alive pings; a peer that does
    /// not answer one within 20 s is dropped.
    pub keepalive_seconds: u64,
}

impl Default for GrpcLimits {
    fn default() -> Self {
        Self {
            max_connections: 2_048,
            max_connections_per_peer: 256,
            max_concurrent_requests: 4_096,
            max_concurrent_streams: 256,
            request_timeout_ms: 60_000,
            idle_timeout_seconds: 300,
            keepalive_seconds: 60,
        }
    }
}

impl GrpcLimits {
    /// The connection caps alone.
    pub fn connections(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.max_connections,
            max_connections_per_peer: self.max_connections_per_peer,
        }
    }

    /// Checks every bound is usable.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        self.connections().validate(prefix)?;
        if self.max_concurrent_requests == 0 || self.max_concurrent_streams == 0 {
            return Err(ConfigError::invalid(
                format!("{prefix}max_concurrent_requests"),
                "max_concurrent_requests and max_concurrent_streams must be positive",
            ));
        }
        if self.request_timeout_ms == 0 {
            return Err(ConfigError::invalid(
                format!("{prefix}request_timeout_ms"),
                "must be positive",
            ));
        }
        if self.keepalive_seconds == 0 {
            return Err(ConfigError::invalid(
                format!("{prefix}keepalive_seconds"),
                "must be positive",
            ));
        }
        if self.idle_timeout_seconds != 0 && self.idle_timeout_seconds <= self.keepalive_seconds {
            return Err(ConfigError::invalid(
                format!("{prefix}idle_timeout_seconds"),
                "must be 0 or longer than keepalive_seconds (pings keep live connections busy)",
            ));
        }
        Ok(())
    }

    /// The server-side request deadline.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The keep-alive ping interval.
    pub fn keepalive(&self) -> Duration {
        Duration::from_secs(self.keepalive_seconds)
    }
}

/// The connections of `listener` that `gate` admits, as tonic takes them
/// (`serve_with_incoming`); the others are closed at once.
pub fn incoming(
    name: &str,
    listener: TcpListener,
    limits: &GrpcLimits,
) -> impl Stream<Item = io::Result<Admitted<TcpStream>>> + Send + 'static {
    let gate = Gate::new(name, limits.connections());
    let idle = idle_after(limits.idle_timeout_seconds);
    // Without NODELAY small unary replies wait out the peer's delayed
    // ACK: ~40 ms per call (measured).
    let tcp = TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60)));
    tcp.filter_map(move |accepted| {
        let admitted = match accepted {
            Ok(stream) => {
                let peer = stream.peer_addr().map(|a| a.ip());
                match peer.map(|ip| gate.admit(ip)) {
                    Ok(Ok(permit)) => Some(Ok(Admitted::new(stream, permit, idle))),
                    Ok(Err(why)) => {
                        tracing::debug!(reason = %why, "gRPC connection refused");
                        None
                    }
                    // Gone before we looked: nothing to serve.
                    Err(_) => None,
                }
            }
            // Out of descriptors, typically: the listening socket stays
            // readable, and tonic retries at once, so passing the error on
            // would spin a worker. Pause as the HTTP listeners do.
            Err(err) => {
                tracing::warn!(error = %crate::report::Report(&err), "gRPC accept failed");
                return futures::future::Either::Left(async {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    None
                });
            }
        };
        futures::future::Either::Right(std::future::ready(admitted))
    })
}

impl<S: Connected> Connected for Admitted<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.get_ref().connect_info()
    }
}

/// A [`tower::Layer`] that limits requests in flight across every
/// connection of a server (tonic's own limit is per connection).
pub fn concurrency_layer(limits: &GrpcLimits) -> tower::limit::GlobalConcurrencyLimitLayer {
    tower::limit::GlobalConcurrencyLimitLayer::new(limits.max_concurrent_requests)
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt as _;

    use super::*;

    #[tokio::test]
    async fn connections_past_the_peer_cap_are_closed_before_any_http2() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = GrpcLimits {
            max_connections_per_peer: 2,
            ..GrpcLimits::default()
        };
        let mut admitted = Box::pin(incoming("test", listener, &limits));
        let first = TcpStream::connect(addr).await.unwrap();
        let second = TcpStream::connect(addr).await.unwrap();
        let mut third = TcpStream::connect(addr).await.unwrap();
        let kept = vec![
            admitted.next().await.unwrap().unwrap(),
            admitted.next().await.unwrap().unwrap(),
        ];
        // The third is taken off the listener and closed while the stream
        // waits for the next admitted one.
        let pending = tokio::time::timeout(Duration::from_millis(300), admitted.next()).await;
        assert!(pending.is_err(), "nothing more was admitted");
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf))
            .await
            .expect("the refused connection was closed");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        drop((first, second, kept));
    }

    #[test]
    fn idle_must_outlast_the_pings() {
        let limits = GrpcLimits {
            idle_timeout_seconds: 60,
            keepalive_seconds: 60,
            ..GrpcLimits::default()
        };
        let err = limits.validate("listeners.grpc.").unwrap_err().to_string();
        assert!(err.contains("listeners.grpc.idle_timeout_seconds"), "{err}");
        assert!(GrpcLimits::default().validate("x.").is_ok());
    }
}
