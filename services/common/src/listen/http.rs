//! Bounded HTTP/1.1 serving, the one way every HTTP listener of pushmail
//! is served (the gateway, the webhook, the session's device port, admin
//! ports): connections admitted through a [`Gate`], a deadline for each
//! request head, an idle timeout, and a request-body limit that answers
//! `413` from the `Content-Length` before any route, so before any
//! authentication runs.
//!
//! hyper's HTTP/1.1 connection is used directly rather than
//! `axum::serve`: that one has no head deadline, and it wraps the socket
//! in a private sniffing buffer, so an upgraded connection could not be
//! unwrapped back to its socket (the session's WebSockets need that).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::serve::Listener;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Layer as _;

use super::{Admitted, ConnectionLimits, Gate, Refused, idle_after};
use crate::config::ConfigError;

/// The bounds of one HTTP listener.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpLimits {
    /// Connections open at once on the listener.
    pub max_connections: usize,
    /// Connections open at once from one address (IPv6: one /64).
    pub max_connections_per_peer: usize,
    /// A connection must send a whole request head within this, from
    /// connect or from its previous answer (so also the keep-alive idle
    /// limit); a head dribbled a line at a time is cut off at it.
    pub header_read_timeout_seconds: u64,
    /// A connection on which no byte moved either way for this long is
    /// closed: a stalled upload or a download nobody reads. 0: none (for
    /// listeners whose connections are held idle on purpose).
    pub idle_timeout_seconds: u64,
    /// Largest request body; a larger declared `Content-Length` is `413`
    /// before routing and authentication, a larger streamed body is cut
    /// at the limit.
    pub max_body_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_connections_per_peer: 256,
            header_read_timeout_seconds: 10,
            idle_timeout_seconds: 60,
            max_body_bytes: 64 * 1024,
        }
    }
}

impl HttpLimits {
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
        if !(1..=3_600).contains(&self.header_read_timeout_seconds) {
            return Err(ConfigError::invalid(
                format!("{prefix}header_read_timeout_seconds"),
                "must be between 1 and 3600",
            ));
        }
        if self.max_body_bytes == 0 {
            return Err(ConfigError::invalid(
                format!("{prefix}max_body_bytes"),
                "must be positive",
            ));
        }
        Ok(())
    }

    /// The head deadline.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_seconds)
    }

    /// The idle timeout, if any.
    pub fn idle(&self) -> Option<Duration> {
        idle_after(self.idle_timeout_seconds)
    }
}

/// What a refused connection is told before it is closed (written without
/// waiting: a fresh socket's send buffer always takes it).
pub fn refusal(why: Refused) -> &'static [u8] {
    match why {
        Refused::Full => {
            b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
        }
        Refused::PeerFull => {
            b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
        }
    }
}

/// A TCP listener whose connections pass a [`Gate`] and carry the idle
/// timeout.
pub struct BoundedTcp {
    listener: TcpListener,
    gate: Gate,
    idle: Option<Duration>,
}

impl BoundedTcp {
    /// `listener` bounded by `limits`; `name` labels its metrics.
    pub fn new(name: &str, listener: TcpListener, limits: &HttpLimits) -> Self {
        Self {
            listener,
            gate: Gate::new(name, limits.connections()),
            idle: limits.idle(),
        }
    }
}

impl Listener for BoundedTcp {
    type Io = Admitted<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, permit, peer) = super::accept(&self.listener, &self.gate, refusal).await;
        (Admitted::new(stream, permit, self.idle), peer)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// Serves `router` over HTTP/1.1 on `listener` until `stop`, then lets the
/// requests in flight finish (upgraded connections live on in their own
/// tasks). Requests get the body limit before routing; connections the
/// head deadline.
pub async fn serve<L>(
    mut listener: L,
    router: axum::Router,
    limits: &HttpLimits,
    stop: CancellationToken,
) -> io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
    L::Io: Unpin,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout());
    let max_body = limits.max_body_bytes;
    let limited = tower_http::limit::RequestBodyLimitLayer::new(max_body).layer(router);
    // The limit's own 413 in the platform's error shape, like every other
    // error of its HTTP edges (a route's own JSON 413 is left as it is).
    let service = tower::util::MapResponse::new(
        limited,
        move |response: http::Response<tower_http::limit::ResponseBody<axum::body::Body>>| {
            let plain = !response
                .headers()
                .get(http::header::CONTENT_TYPE)
                .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
            if response.status() == http::StatusCode::PAYLOAD_TOO_LARGE && plain {
                return crate::http_error::error(
                    http::StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    &format!("the request body is over {max_body} bytes"),
                );
            }
            response.map(axum::body::Body::new)
        },
    );
    let connections = TaskTracker::new();
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => break,
        };
        // Handlers see the peer as axum's `ConnectInfo` (rates per address).
        let with_peer = tower::util::MapRequest::new(
            service.clone(),
            move |mut request: http::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                request
            },
        );
        let connection = http
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(with_peer))
            .with_upgrades();
        let stop = stop.clone();
        connections.spawn(async move {
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = stop.cancelled() => {
                    // Finish the request in flight, then close.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = ended {
                tracing::debug!(error = %crate::report::Report(&err), "HTTP connection ended");
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    fn tight() -> HttpLimits {
        HttpLimits {
            max_connections: 8,
            max_connections_per_peer: 3,
            header_read_timeout_seconds: 1,
            idle_timeout_seconds: 1,
            max_body_bytes: 16,
        }
    }

    async fn serving(limits: HttpLimits) -> (SocketAddr, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = axum::Router::new().route(
            "/",
            axum::routing::get(|| async { "ok" }).post(|body: String| async move { body }),
        );
        let stop = CancellationToken::new();
        let bounded = BoundedTcp::new("test", listener, &limits);
        let task_stop = stop.clone();
        tokio::spawn(async move { serve(bounded, router, &limits, task_stop).await });
        (addr, stop)
    }

    async fn answer(client: &mut TcpStream) -> String {
        let mut got = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut got));
        let _ = read.await.expect("the server closed the connection");
        String::from_utf8_lossy(&got).into_owned()
    }

    #[tokio::test]
    async fn a_dribbled_head_is_cut_off_at_the_deadline() {
        let (addr, stop) = serving(tight()).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let started = std::time::Instant::now();
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if client.write_all(b"X-Slow: 1\r\n").await.is_err() {
                break;
            }
        }
        let _ = answer(&mut client).await;
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        stop.cancel();
    }

    #[tokio::test]
    async fn a_large_declared_body_is_413_before_the_route() {
        let (addr, stop) = serving(tight()).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 100000\r\n\r\n")
            .await
            .unwrap();
        let got = answer(&mut client).await;
        assert!(got.starts_with("HTTP/1.1 413"), "{got}");
        assert!(got.contains(r#""code":"body_too_large""#), "{got}");
        stop.cancel();
    }

    #[tokio::test]
    async fn past_the_peer_cap_a_connection_is_told_429() {
        let (addr, stop) = serving(tight()).await;
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(TcpStream::connect(addr).await.unwrap());
        }
        let mut extra = TcpStream::connect(addr).await.unwrap();
        let got = answer(&mut extra).await;
        assert!(got.starts_with("HTTP/1.1 429"), "{got}");
        drop(held);
        // The slots come back as the server sees the closes.
        let mut served = String::new();
        for _ in 0..50 {
            let mut again = TcpStream::connect(addr).await.unwrap();
            again
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            served = answer(&mut again).await;
            if served.starts_with("HTTP/1.1 200") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(served.starts_with("HTTP/1.1 200"), "{served}");
        stop.cancel();
    }
}
