//! The device's connection loop: hello with the last ack (and the outbox
//! generation it counts in) and the proposed heartbeat, heartbeats at the
//! granted interval, an ack for each new notification (a sequence already
//! seen is dropped: a replay can race a live delivery), reconnect hints
//! obeyed, and reconnects with backoff that resume from the last ack. A
//! welcome of another generation, or a resync, moves the cursor where the
//! server says, so mail of a recreated outbox is never taken for seen.
//! What happens is reported as [`Event`]s.

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use pushmail_common::backoff::Backoff;
use pushmail_common::report::Report;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_util::sync::CancellationToken;

use crate::frames::{Incoming, Notification, Outgoing};
use crate::heartbeat::Heartbeat;
use crate::shown::Shown;

/// How the device connects.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// The session node's device endpoint, e.g. `ws://127.0.0.1:8102`.
    pub server: String,
    /// The device token binding issued.
    pub token: String,
    /// The network it reports (MCC-MNC and radio).
    pub network: String,
    /// Heartbeat adaptation.
    pub heartbeat: Heartbeat,
    /// How long a heartbeat or the welcome may go unanswered before the
    /// connection counts as lost.
    pub answer_timeout: Duration,
    /// Reconnect backoff after a failure, doubling up to the maximum, each
    /// wait drawn from its upper half so phones that lost the same node do
    /// not all return in the same second.
    pub reconnect_initial: Duration,
    pub reconnect_max: Duration,
    /// The local address to connect from (a load generator spreads its
    /// devices over several, past one address's ephemeral ports).
    pub source: Option<std::net::IpAddr>,
    /// Mails remembered as shown, so a mail notified again is not shown
    /// twice (0: every notification is shown).
    pub remember_shown: usize,
}

impl DeviceConfig {
    /// Defaults for `server` and `token`: 60 s heartbeats stepping up to
    /// 30 minutes after 5 held, 10 s answers, 1–60 s backoff.
    pub fn new(server: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            server: server.into(),
            token: token.into(),
            network: "46000-lte".to_owned(),
            heartbeat: Heartbeat::new(60, 60, 1_800, 5),
            answer_timeout: Duration::from_secs(10),
            reconnect_initial: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
            source: None,
            remember_shown: 1_000,
        }
    }
}

/// What the device saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Connected; the server holds it to `heartbeat` seconds.
    Connected { heartbeat: u32, session: String },
    /// A new notification (acked).
    Notification(Notification),
    /// A sequence at or below the last ack arrived again (dropped).
    Duplicate(u64),
    /// A notification for a mail already shown (acked, not shown again).
    AlreadyShown(u64),
    /// Heartbeat answered; `next_proposal` when the interval steps up.
    HeartbeatHeld { next_proposal: Option<u32> },
    /// A heartbeat went unanswered: the next hello proposes `next_proposal`.
    TimedOut { next_proposal: u32 },
    /// The server says to sync the mailboxes: the device fell behind its
    /// outbox, or the outbox its cursor was in is gone. The replay that
    /// follows continues after `from` in outbox generation `generation`.
    Resync { generation: u64, from: u64 },
    /// Reconnecting after `after` (a hint from the server, or backoff).
    Reconnecting { after: Duration, reason: String },
    /// The server refused something.
    Error { code: String, message: String },
}

/// Why a connection ended.
enum Ended {
    Shutdown,
    Reconnect(Duration, String),
}

/// A device and where it is in its notification stream.
pub struct Device {
    config: DeviceConfig,
    /// The outbox generation `last_ack` counts in (0: none yet).
    generation: u64,
    last_ack: u64,
    shown: Shown,
}

impl Device {
    /// A device that has seen nothing yet.
    pub fn new(config: DeviceConfig) -> Self {
        Self::resuming(config, 0, 0)
    }

    /// A device that holds everything up to `last_ack` of outbox
    /// `generation` (0: none named, as before generations).
    pub fn resuming(config: DeviceConfig, generation: u64, last_ack: u64) -> Self {
        Self {
            shown: Shown::new(config.remember_shown),
            config,
            generation,
            last_ack,
        }
    }

    /// The highest sequence acked.
    pub fn last_ack(&self) -> u64 {
        self.last_ack
    }

    /// The outbox generation the last ack counts in.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// What a new (acked) notification is to the user: a mail to show, or
    /// one already shown.
    fn shown(&mut self, n: Notification) -> Event {
        if self.shown.first_time(n.url.as_deref()) {
            Event::Notification(n)
        } else {
            Event::AlreadyShown(n.seq)
        }
    }

    /// The server names the outbox's `generation` (0: it could not say): a
    /// cursor of another one counts for nothing in it.
    fn adopt(&mut self, generation: u64) {
        if generation != 0 && generation != self.generation {
            self.generation = generation;
            self.last_ack = 0;
        }
    }

    /// A resync: the cursor is where the server says from now on.
    fn resync(&mut self, generation: u64, from: Option<u64>) -> Event {
        if generation != 0 {
            self.generation = generation;
            self.last_ack = from.unwrap_or(0);
        }
        Event::Resync {
            generation: self.generation,
            from: self.last_ack,
        }
    }

    /// The interval the next hello proposes.
    pub fn heartbeat_proposal(&self) -> u32 {
        self.config.heartbeat.proposal()
    }

    /// Stays connected until `shutdown`, reconnecting as needed. Fails
    /// only when the token is refused (retrying cannot help).
    pub async fn run(
        &mut self,
        events: mpsc::Sender<Event>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let retry = Backoff::new(self.config.reconnect_initial, self.config.reconnect_max);
        let mut failures = 0;
        loop {
            let ended = self.connection(&events, &shutdown).await;
            let (after, reason) = match ended {
                Ok(Ended::Shutdown) => return Ok(()),
                Ok(Ended::Reconnect(after, reason)) => {
                    failures = 0;
                    (after, reason)
                }
                Err(e) if e.is_permanent() => {
                    return Err(
                        anyhow::Error::new(e).context("the session node refused the device")
                    );
                }
                Err(e) => {
                    failures += 1;
                    (retry.delay(failures), Report(&e).to_string())
                }
            };
            let _ = events.send(Event::Reconnecting { after, reason }).await;
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(after) => {}
            }
        }
    }

    /// Like [`Device::run`], over HTTP long poll (`POST /v1/ping`) in the
    /// style of ActiveSync: each ping carries the last ack and the proposed
    /// interval; an answer `expired` means the interval held.
    pub async fn run_long_poll(
        &mut self,
        events: mpsc::Sender<Event>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let base = self.config.server.trim_end_matches('/');
        let url = match base.split_once("://") {
            Some(("ws" | "http", rest)) => format!("http://{rest}/v1/ping"),
            _ => anyhow::bail!(
                "long poll needs an http:// or ws:// server address (TLS: at the ingress)"
            ),
        };
        let retry = Backoff::new(self.config.reconnect_initial, self.config.reconnect_max);
        let mut failures = 0;
        let mut announced = false;
        loop {
            let proposal = self.config.heartbeat.proposal();
            let mut body = serde_json::json!({
                "hb": proposal,
                "last_ack": self.last_ack,
                "net": self.config.network,
            });
            if self.generation != 0 {
                body["gen"] = self.generation.into();
            }
            let wait = Duration::from_secs(u64::from(proposal)) + self.config.answer_timeout;
            let answer = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                answer = crate::fetch::post_json(&url, &self.config.token, &body, wait) => answer,
            };
            let failure = match answer {
                Ok(r) if r.status == 401 => {
                    anyhow::bail!("the session node refused the device: 401")
                }
                Ok(r) if r.status == 200 => {
                    match serde_json::from_slice::<crate::frames::PingAnswer>(&r.body) {
                        Ok(ping) => {
                            failures = 0;
                            let granted = self.config.heartbeat.granted(ping.hb);
                            if !announced {
                                announced = true;
                                let connected = Event::Connected {
                                    heartbeat: granted,
                                    session: "long-poll".to_owned(),
                                };
                                let _ = events.send(connected).await;
                            }
                            self.answered(ping, &events).await;
                            None
                        }
                        Err(e) => Some(format!("unreadable ping answer: {e}")),
                    }
                }
                Ok(r) => Some(format!("HTTP {}", r.status)),
                Err(e) if e.is::<crate::fetch::TimedOut>() => {
                    let next_proposal = self.config.heartbeat.timed_out();
                    let _ = events.send(Event::TimedOut { next_proposal }).await;
                    None
                }
                Err(e) => Some(format!("ping: {e}")),
            };
            if let Some(reason) = failure {
                failures += 1;
                let after = retry.delay(failures);
                let _ = events.send(Event::Reconnecting { after, reason }).await;
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(after) => {}
                }
            }
        }
    }

    /// One ping answer: its notifications (acked by the next ping's
    /// `last_ack`), a held interval, a resync or a take-over.
    async fn answered(&mut self, ping: crate::frames::PingAnswer, events: &mpsc::Sender<Event>) {
        if ping.status != "resync" {
            self.adopt(ping.generation);
        }
        match ping.status.as_str() {
            "expired" => {
                let next_proposal = self.config.heartbeat.held();
                let _ = events.send(Event::HeartbeatHeld { next_proposal }).await;
            }
            "resync" => {
                let resync = self.resync(ping.generation, ping.from);
                let _ = events.send(resync).await;
            }
            "taken_over" => {
                let error = Event::Error {
                    code: "taken_over".to_owned(),
                    message: "another connection holds the device".to_owned(),
                };
                let _ = events.send(error).await;
            }
            _ => {}
        }
        for n in ping.notifications {
            if n.seq <= self.last_ack {
                let _ = events.send(Event::Duplicate(n.seq)).await;
            } else {
                self.last_ack = n.seq;
                let _ = events.send(self.shown(n)).await;
            }
        }
    }

    async fn connection(
        &mut self,
        events: &mpsc::Sender<Event>,
        shutdown: &CancellationToken,
    ) -> Result<Ended, ConnectError> {
        let url = format!("{}/v1/connect", self.config.server.trim_end_matches('/'));
        let mut request = url.into_client_request().map_err(ConnectError::Address)?;
        let bearer = format!("Bearer {}", self.config.token)
            .parse()
            .map_err(ConnectError::Token)?;
        request.headers_mut().insert("authorization", bearer);
        let answer = self.config.answer_timeout;
        // A node that accepts TCP but never answers (draining, overloaded)
        // must not hold the device, nor its shutdown.
        let connecting = tokio::time::timeout(answer, open(request, self.config.source));
        let connected = tokio::select! {
            () = shutdown.cancelled() => return Ok(Ended::Shutdown),
            connected = connecting => connected
                .map_err(|_| ConnectError::ConnectTimeout(answer))?,
        };
        let (ws, _) = connected.map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(r)
                if r.status() == http::StatusCode::UNAUTHORIZED =>
            {
                ConnectError::Unauthorized
            }
            other => ConnectError::Connect(other),
        })?;
        let (ws, interval) = self.handshake(ws, events).await?;
        self.held(ws, interval, events, shutdown).await
    }

    /// The hello with the device's cursor, the welcome with the granted
    /// heartbeat: the socket and the interval to beat at.
    async fn handshake(
        &mut self,
        mut ws: Socket,
        events: &mpsc::Sender<Event>,
    ) -> Result<(Socket, Duration), ConnectError> {
        let answer = self.config.answer_timeout;
        let hello = Outgoing::Hello {
            last_ack: self.last_ack,
            generation: self.generation,
            hb: self.config.heartbeat.proposal(),
            net: self.config.network.clone(),
        };
        send(&mut ws, &hello).await?;
        let welcome = tokio::time::timeout(answer, next(&mut ws))
            .await
            .map_err(|_| ConnectError::NoWelcome(answer))??;
        let Incoming::Welcome {
            hb,
            session,
            generation,
        } = welcome
        else {
            return Err(ConnectError::NotWelcome(Box::new(welcome)));
        };
        self.adopt(generation);
        let interval = Duration::from_secs(u64::from(self.config.heartbeat.granted(hb)));
        let _ = events
            .send(Event::Connected {
                heartbeat: hb,
                session,
            })
            .await;
        Ok((ws, interval))
    }

    /// The held connection: heartbeats at `interval`, an ack for each
    /// notification, until the server or the network ends it.
    async fn held(
        &mut self,
        mut ws: Socket,
        interval: Duration,
        events: &mpsc::Sender<Event>,
        shutdown: &CancellationToken,
    ) -> Result<Ended, ConnectError> {
        let answer = self.config.answer_timeout;
        let mut beat = tokio::time::Instant::now() + interval;
        let mut awaiting: Option<tokio::time::Instant> = None;
        loop {
            let deadline = awaiting.unwrap_or(beat);
            let frame = tokio::select! {
                () = shutdown.cancelled() => {
                    let _ = ws.close(None).await;
                    return Ok(Ended::Shutdown);
                }
                () = tokio::time::sleep_until(deadline) => {
                    if awaiting.is_some() {
                        let next_proposal = self.config.heartbeat.timed_out();
                        let _ = events.send(Event::TimedOut { next_proposal }).await;
                        return Ok(Ended::Reconnect(Duration::ZERO, "heartbeat unanswered".to_owned()));
                    }
                    send(&mut ws, &Outgoing::Heartbeat).await?;
                    awaiting = Some(tokio::time::Instant::now() + answer);
                    beat += interval;
                    continue;
                }
                frame = next(&mut ws) => frame?,
            };
            match frame {
                Incoming::Heartbeat => {
                    awaiting = None;
                    let next_proposal = self.config.heartbeat.held();
                    let _ = events.send(Event::HeartbeatHeld { next_proposal }).await;
                }
                Incoming::Notification(n) if n.seq <= self.last_ack => {
                    let _ = events.send(Event::Duplicate(n.seq)).await;
                }
                Incoming::Notification(n) => {
                    let ack = Outgoing::Ack {
                        seq: n.seq,
                        generation: self.generation,
                    };
                    send(&mut ws, &ack).await?;
                    self.last_ack = n.seq;
                    let _ = events.send(self.shown(n)).await;
                }
                Incoming::Resync { generation, from } => {
                    let resync = self.resync(generation, from);
                    let _ = events.send(resync).await;
                }
                Incoming::Reconnect { after_ms, reason } => {
                    return Ok(Ended::Reconnect(
                        Duration::from_millis(after_ms),
                        format!("server: {reason}"),
                    ));
                }
                Incoming::Error { code, message } => {
                    let _ = events.send(Event::Error { code, message }).await;
                }
                Incoming::Welcome { .. } | Incoming::Unknown => {}
            }
        }
    }
}

/// Why a connection could not be made or held.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error("bad server address")]
    Address(#[source] WsError),
    #[error("the token is not a valid header value")]
    Token(#[source] http::header::InvalidHeaderValue),
    #[error("401: the token is bad, expired or revoked")]
    Unauthorized,
    #[error("connect timed out after {0:?}")]
    ConnectTimeout(Duration),
    #[error("connect")]
    Connect(#[source] WsError),
    #[error("no welcome within {0:?}")]
    NoWelcome(Duration),
    #[error("expected welcome, got {0:?}")]
    NotWelcome(Box<Incoming>),
    #[error("encoding a frame")]
    Encode(#[source] serde_json::Error),
    #[error("send")]
    Send(#[source] WsError),
    #[error("read")]
    Read(#[source] WsError),
    #[error("closed by the server{}", .0.as_ref().map(|c| format!(" {} {}", c.code, c.reason)).unwrap_or_default())]
    Closed(Option<CloseFrame>),
    #[error("connection ended")]
    Ended,
}

impl ConnectError {
    /// Retrying cannot help: the address or the token is wrong. Everything
    /// else is retried with backoff.
    fn is_permanent(&self) -> bool {
        matches!(self, Self::Address(_) | Self::Token(_) | Self::Unauthorized)
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The WebSocket handshake over a TCP connection made from `source` when set.
async fn open(
    request: tokio_tungstenite::tungstenite::handshake::client::Request,
    source: Option<std::net::IpAddr>,
) -> Result<(Socket, http::Response<Option<Vec<u8>>>), tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::Error;
    let uri = request.uri();
    if uri.scheme_str() != Some("ws") {
        // TLS belongs to the ingress in front of the session nodes.
        return Err(Error::Url(
            tokio_tungstenite::tungstenite::error::UrlError::UnsupportedUrlScheme,
        ));
    }
    let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
    let port = uri.port_u16().unwrap_or(80);
    let tcp = match source {
        None => tokio::net::TcpStream::connect((host, port)).await?,
        Some(source) => {
            let server = tokio::net::lookup_host((host, port))
                .await?
                .find(|a| a.is_ipv4() == source.is_ipv4())
                .ok_or_else(|| {
                    Error::Io(std::io::Error::other(format!(
                        "{host} has no address reachable from {source}"
                    )))
                })?;
            let socket = if source.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            socket.bind(std::net::SocketAddr::new(source, 0))?;
            socket.connect(server).await?
        }
    };
    tcp.set_nodelay(true)?;
    tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(tcp)).await
}

async fn send(ws: &mut Socket, frame: &Outgoing) -> Result<(), ConnectError> {
    let text = serde_json::to_string(frame).map_err(ConnectError::Encode)?;
    ws.send(Message::text(text))
        .await
        .map_err(ConnectError::Send)
}

/// The next frame the device understands; pings and binary frames skipped.
async fn next(ws: &mut Socket) -> Result<Incoming, ConnectError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => match serde_json::from_str(&text) {
                Ok(frame) => return Ok(frame),
                Err(e) => tracing::warn!(error = %e, "unreadable frame from the server skipped"),
            },
            Some(Ok(Message::Close(close))) => return Err(ConnectError::Closed(close)),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(ConnectError::Read(e)),
            None => return Err(ConnectError::Ended),
        }
    }
}
