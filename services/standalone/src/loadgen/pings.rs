//! Phones as a stock mail app holds them (`pushmail loadgen --eas`): each
//! provisions over ActiveSync, finds its Inbox with FolderSync, holds a
//! Ping on it, and pings again as soon as one is answered; the time of
//! every answer that says the Inbox changed (status 2) is recorded. They
//! run on a thread of their own (one current-thread runtime), as the
//! WebSocket phones run in processes of their own, so the platform's
//! runtime does not schedule them.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use pushmail_wbxml::{Element, tag};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::smtp::now_ns;

/// The heartbeat each Ping asks for: longer than any run, so every answer
/// is a wake-up.
const HEARTBEAT: &str = "1800";

/// One phone: its account's address, its app password and its DeviceId.
#[derive(Debug, Clone)]
pub(crate) struct EasPhone {
    pub(crate) address: String,
    pub(crate) password: String,
    pub(crate) device: String,
}

/// What the phones saw, by phone (its index in the list started).
#[derive(Debug, Default)]
pub(crate) struct Answers {
    /// Unix ns of each status-2 answer.
    pub(crate) woken: HashMap<usize, Vec<u64>>,
    /// Phones that got as far as their first Ping.
    pub(crate) holding: usize,
    /// Why phones gave up.
    pub(crate) failures: Vec<String>,
}

/// The phones, running.
pub(crate) struct Pings {
    seen: Arc<Mutex<Answers>>,
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Pings {
    /// Starts `phones` against the front door at `server`, each from one
    /// of `sources` in turn; returns once every phone has sent its first
    /// Ping (or given up).
    pub(crate) async fn start(
        server: SocketAddr,
        sources: &[IpAddr],
        phones: Vec<EasPhone>,
    ) -> anyhow::Result<Self> {
        let seen = Arc::new(Mutex::new(Answers::default()));
        let stop = CancellationToken::new();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let thread = {
            let (seen, stop, sources) = (seen.clone(), stop.clone(), sources.to_vec());
            std::thread::Builder::new()
                .name("loadgen-eas".to_owned())
                .spawn(move || {
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(runtime) => runtime,
                        Err(e) => {
                            lock(&seen).failures.push(format!("runtime: {e}"));
                            return;
                        }
                    };
                    runtime.block_on(run_all(server, sources, phones, seen, stop, ready_tx));
                })
                .context("the EAS phones' thread")?
        };
        let _ = ready_rx.await;
        Ok(Self {
            seen,
            stop,
            thread: Some(thread),
        })
    }

    /// Phones that hold a Ping now or did.
    pub(crate) fn holding(&self) -> usize {
        lock(&self.seen).holding
    }

    /// Stops the phones once `expected` wake-ups came or `wait` passed.
    pub(crate) async fn collect(mut self, expected: usize, wait: Duration) -> Answers {
        let deadline = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < deadline {
            let woken: usize = lock(&self.seen).woken.values().map(Vec::len).sum();
            if woken >= expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        std::mem::take(&mut *lock(&self.seen))
    }
}

fn lock(seen: &Mutex<Answers>) -> std::sync::MutexGuard<'_, Answers> {
    seen.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn run_all(
    server: SocketAddr,
    sources: Vec<IpAddr>,
    phones: Vec<EasPhone>,
    seen: Arc<Mutex<Answers>>,
    stop: CancellationToken,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let count = phones.len();
    let (started_tx, mut started_rx) = tokio::sync::mpsc::channel::<()>(count.max(1));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, phone) in phones.into_iter().enumerate() {
        let source = sources[i % sources.len()];
        let (seen, stop, started) = (seen.clone(), stop.clone(), started_tx.clone());
        tasks.spawn(async move {
            let outcome = tokio::select! {
                outcome = one(server, source, &phone, i, &seen, started) => outcome,
                () = stop.cancelled() => Ok(()),
            };
            if let Err(e) = outcome {
                lock(&seen)
                    .failures
                    .push(format!("{}: {e:#}", phone.address));
            }
        });
    }
    drop(started_tx);
    for _ in 0..count {
        if started_rx.recv().await.is_none() {
            break;
        }
    }
    let _ = ready.send(());
    while tasks.join_next().await.is_some() {}
}

/// One phone's life: provision, find the Inbox, ping for ever.
async fn one(
    server: SocketAddr,
    source: IpAddr,
    phone: &EasPhone,
    index: usize,
    seen: &Mutex<Answers>,
    started: tokio::sync::mpsc::Sender<()>,
) -> anyhow::Result<()> {
    let mut conn = Conn {
        stream: BufReader::new(connect(server, source).await?),
        server,
        source,
        auth: format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", phone.address, phone.password))
        ),
        phone,
        key: None,
    };
    let key = conn.provision().await?;
    conn.key = Some(key);
    let inbox = conn.inbox().await?;
    let ping = ping(&inbox)?;
    let mut first = Some(started);
    loop {
        if let Some(started) = first.take() {
            lock(seen).holding += 1;
            let _ = started.send(()).await;
        }
        let answer = conn.exchange("Ping", &ping).await?;
        let status = status_of(&answer, "Ping");
        match status.as_deref() {
            Some("2") => lock(seen).woken.entry(index).or_default().push(now_ns()),
            Some("1") => {}
            other => anyhow::bail!("Ping answered status {other:?}"),
        }
    }
}

/// A connection to `server` from `source`.
async fn connect(server: SocketAddr, source: IpAddr) -> anyhow::Result<TcpStream> {
    let socket = match source {
        IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(source, 0))?;
    Ok(socket.connect(server).await?)
}

fn ping(inbox: &str) -> anyhow::Result<Vec<u8>> {
    let folder = Element::of(tag("Ping", "Folder"))
        .with(Element::text_of(tag("Ping", "Id"), inbox))
        .with(Element::text_of(tag("Ping", "Class"), "Email"));
    Ok(pushmail_wbxml::encode(
        &Element::of(tag("Ping", "Ping"))
            .with(Element::text_of(
                tag("Ping", "HeartbeatInterval"),
                HEARTBEAT,
            ))
            .with(Element::of(tag("Ping", "Folders")).with(folder)),
    )?)
}

fn status_of(answer: &Element, page: &str) -> Option<String> {
    answer.get(tag(page, "Status")).map(Element::text)
}

/// Most times one request is sent again after a 503.
const MAX_RETRIES: usize = 30;

/// What the front door answered.
enum Answer {
    Wbxml(Element),
    /// 503, with its `Retry-After` in seconds.
    Busy(u64),
}

/// One kept-alive HTTP/1.1 connection of a phone.
struct Conn<'a> {
    stream: BufReader<TcpStream>,
    server: SocketAddr,
    source: IpAddr,
    auth: String,
    phone: &'a EasPhone,
    key: Option<String>,
}

impl Conn<'_> {
    async fn send(&mut self, command: &str, body: &[u8]) -> anyhow::Result<()> {
        let key = self
            .key
            .as_ref()
            .map(|k| format!("X-MS-PolicyKey: {k}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "POST /Microsoft-Server-ActiveSync?Cmd={command}&User={}&DeviceId={}&DeviceType=loadgen HTTP/1.1\r\n\
             Host: loadgen\r\nAuthorization: {}\r\nMS-ASProtocolVersion: 16.1\r\n{key}\
             Content-Type: application/vnd.ms-sync.wbxml\r\nContent-Length: {}\r\n\r\n",
            self.phone.address,
            self.phone.device,
            self.auth,
            body.len()
        );
        let stream = self.stream.get_mut();
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        Ok(())
    }

    /// The answer to `command` with `body`, sent (again, on a new
    /// connection) as a phone would: after a 503 (binding busy checking
    /// passwords) once its `Retry-After` has passed (at most 10 s; the
    /// front door does not keep an idle connection that long), and after
    /// the connection broke. An HTTP status other than 200 is an error.
    async fn exchange(&mut self, command: &str, body: &[u8]) -> anyhow::Result<Element> {
        let mut last = None;
        for attempt in 0..MAX_RETRIES {
            if attempt > 0 {
                self.stream = BufReader::new(connect(self.server, self.source).await?);
            }
            let answered = match self.send(command, body).await {
                Ok(()) => self.read().await,
                Err(e) => Err(e),
            };
            match answered {
                Ok(Answer::Wbxml(answer)) => return Ok(answer),
                Ok(Answer::Busy(seconds)) => {
                    tokio::time::sleep(Duration::from_secs(seconds.clamp(1, 10))).await;
                    last = Some(anyhow::anyhow!("503"));
                }
                Err(e) if e.downcast_ref::<std::io::Error>().is_some() => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last
            .unwrap_or_else(|| anyhow::anyhow!("no answer"))
            .context(format!("{command}: {MAX_RETRIES} tries")))
    }

    /// The next answer: its WBXML, or 503's `Retry-After`.
    async fn read(&mut self) -> anyhow::Result<Answer> {
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let mut length = 0usize;
        let mut retry_after = 1;
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                // An I/O error, so the exchange connects again.
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the front door closed the connection",
                )
                .into());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().context("Content-Length")?;
                } else if name.eq_ignore_ascii_case("retry-after") {
                    retry_after = value.trim().parse().unwrap_or(1);
                }
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await?;
        match status.as_str() {
            "200" => Ok(Answer::Wbxml(pushmail_wbxml::decode(&body)?)),
            "503" => Ok(Answer::Busy(retry_after)),
            _ => anyhow::bail!("HTTP {status}: {}", String::from_utf8_lossy(&body)),
        }
    }

    async fn ask(&mut self, command: &str, body: &Element) -> anyhow::Result<Element> {
        let body = pushmail_wbxml::encode(body)?;
        self.exchange(command, &body).await
    }

    /// Both Provision steps: the phone's policy key.
    async fn provision(&mut self) -> anyhow::Result<String> {
        let p = |name| tag("Provision", name);
        let policy = || {
            Element::of(p("Policy")).with(Element::text_of(
                p("PolicyType"),
                "MS-EAS-Provisioning-WBXML",
            ))
        };
        let said = Element::of(tag("Settings", "DeviceInformation")).with(
            Element::of(tag("Settings", "Set"))
                .with(Element::text_of(tag("Settings", "Model"), "loadgen")),
        );
        let first = Element::of(p("Provision"))
            .with(said)
            .with(Element::of(p("Policies")).with(policy()));
        let key_of = |answer: &Element| {
            answer
                .get(p("Policies"))
                .and_then(|e| e.get(p("Policy")))
                .and_then(|e| e.get(p("PolicyKey")))
                .map(Element::text)
        };
        let offered = self.ask("Provision", &first).await?;
        let temporary = key_of(&offered).context("no policy key offered")?;
        let second = Element::of(p("Provision")).with(
            Element::of(p("Policies")).with(
                policy()
                    .with(Element::text_of(p("PolicyKey"), temporary))
                    .with(Element::text_of(p("Status"), "1")),
            ),
        );
        let given = self.ask("Provision", &second).await?;
        key_of(&given).context("no policy key given")
    }

    /// The Inbox's ServerId, from a FolderSync.
    async fn inbox(&mut self) -> anyhow::Result<String> {
        let f = |name| tag("FolderHierarchy", name);
        let tree = self
            .ask(
                "FolderSync",
                &Element::of(f("FolderSync")).with(Element::text_of(f("SyncKey"), "0")),
            )
            .await?;
        tree.get(f("Changes"))
            .into_iter()
            .flat_map(|c| c.all(f("Add")))
            .find(|add| add.get(f("Type")).map(Element::text).as_deref() == Some("2"))
            .and_then(|add| add.get(f("ServerId")).map(Element::text))
            .context("FolderSync listed no Inbox")
    }
}
