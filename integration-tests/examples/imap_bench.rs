//! IMAP IDLE watchers held by one process, and the memory each costs,
//! against a floor and the maintained `async-imap` client measured in the
//! same run. One process per role so each one's memory is its own:
//!
//! - a minimal IMAP server (this binary, `server` mode) that answers LOGIN,
//!   CAPABILITY, SELECT, UID SEARCH and IDLE for any number of connections
//!   and prints how many are idling (Dovecot would need a process or a
//!   multiplexed slot per session; the subject here is the client side);
//! - the floor (`floor` mode): plain tokio TCP clients that connect, read
//!   the greeting, send IDLE and hold the connection;
//! - the watchers (`watchers` mode): ingest's real `imap::watch_forever`
//!   per account (login, SELECT, first-sight mark, IDLE);
//! - `async-imap` (`async-imap` mode): the maintained crate's client over a
//!   plain tokio `TcpStream` doing what a watcher does before idling, less
//!   the marks (greeting, LOGIN, CAPABILITY, SELECT INBOX, IDLE), held in
//!   `Handle::wait_with_timeout` and re-issued as ours is, with our
//!   watcher's exchange deadline and reconnect backoff.
//!
//! Each measured mode gets a server process of its own, one after another.
//!
//! The measured process adds connections in steps (told on stdin); its RSS
//! is read after each step once the server counts all of them idle; the
//! cost per connection is the least-squares slope. Writes a Markdown report
//! to the path given as the first argument. Run by `make bench`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark that fails should stop loudly

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pushmail_common::backoff::Backoff;
use pushmail_common::blob::LocalBlobStore;
use pushmail_common::bus::{MemoryBus, MemoryBusConfig};
use pushmail_common::grpc::UpstreamConfig;
use pushmail_common::redact::Secret;
use pushmail_ingest::accounts::MailAccount;
use pushmail_ingest::arrival::Announcer;
use pushmail_ingest::config::ImapConfig;
use pushmail_ingest::imap::{Runner, watch_forever};
use pushmail_ingest::marks::MemoryMarks;
use pushmail_ingest::tls::{Security, Tls};
use pushmail_integration_tests::measure::{helper, rss_bytes, slope, wait_line};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const WATCHERS: usize = 10_000;
const STEPS: usize = 5;
const GOAL_BYTES: f64 = 16.0 * 1_024.0;

// ------------------------------------------------------------ fake server

async fn server(port: &str) {
    let listener = TcpListener::bind(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    let idling = Arc::new(AtomicUsize::new(0));
    println!("ready");
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        tokio::spawn(session(stream, idling.clone()));
    }
}

fn report_idle(n: usize) {
    if n.is_multiple_of(100) {
        println!("idle {n}");
    }
}

async fn session(stream: TcpStream, idling: Arc<AtomicUsize>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::with_capacity(512, read).lines();
    let greeting = b"* OK [CAPABILITY IMAP4rev1 IDLE SASL-IR] bench ready\r\n";
    if write.write_all(greeting).await.is_err() {
        return;
    }
    let mut idle_tag: Option<String> = None;
    while let Ok(Some(line)) = lines.next_line().await {
        if line.eq_ignore_ascii_case("DONE") {
            if let Some(tag) = idle_tag.take() {
                idling.fetch_sub(1, Ordering::SeqCst);
                let _ = write
                    .write_all(format!("{tag} OK idle done\r\n").as_bytes())
                    .await;
            }
            continue;
        }
        let (tag, command) = line.split_once(' ').unwrap_or((&line, ""));
        let verb = command.split(' ').next().unwrap_or("").to_ascii_uppercase();
        let reply = match verb.as_str() {
            "CAPABILITY" => format!("* CAPABILITY IMAP4rev1 IDLE\r\n{tag} OK\r\n"),
            "SELECT" => format!(
                "* 0 EXISTS\r\n* OK [UIDVALIDITY 1] ok\r\n* OK [UIDNEXT 1] ok\r\n{tag} OK [READ-WRITE] selected\r\n"
            ),
            "UID" => format!("* SEARCH\r\n{tag} OK\r\n"),
            "IDLE" => {
                idle_tag = Some(tag.to_owned());
                report_idle(idling.fetch_add(1, Ordering::SeqCst) + 1);
                "+ idling\r\n".to_owned()
            }
            "LOGOUT" => format!("* BYE\r\n{tag} OK\r\n"),
            _ => format!("{tag} OK\r\n"),
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            break;
        }
    }
    if idle_tag.is_some() {
        idling.fetch_sub(1, Ordering::SeqCst);
    }
}

// ------------------------------------------------------- measured clients

/// Reads `add N` lines from stdin and opens N more connections each time.
async fn measured(kind: &str, server: SocketAddr) {
    let blobs = tempfile::tempdir().unwrap();
    let runner = Arc::new(Runner {
        binding: UpstreamConfig::at("http://127.0.0.1:9").channel().unwrap(),
        tls: Tls::new(&[]).unwrap().with_egress(
            pushmail_common::egress::EgressConfig::loopback()
                .policy()
                .unwrap(),
        ),
        marks: Arc::new(MemoryMarks::default()),
        checkpoints: Arc::new(pushmail_ingest::checkpoints::MemoryCheckpoints::default()),
        announcer: Announcer::new(
            Arc::new(MemoryBus::new(&MemoryBusConfig::default())),
            Arc::new(LocalBlobStore::new(blobs.path())),
            pushmail_ingest::mail::Limits::default(),
        ),
        config: ImapConfig::default(),
        leases: pushmail_ingest::leases::Leases::new(None, "", Duration::from_secs(30)),
    });
    let stop = CancellationToken::new();
    let mut opened = 0usize;
    println!("ready");
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = stdin.next_line().await {
        let Some(n) = line
            .strip_prefix("add ")
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        for i in opened..opened + n {
            match kind {
                "watchers" => {
                    let account = MailAccount {
                        tenant: "bench".into(),
                        account: format!("account-{i}"),
                        host: server.ip().to_string(),
                        port: server.port(),
                        security: Security::None,
                        username: format!("user{i}"),
                        password: Secret::new("secret"),
                        folders: Vec::new(),
                    };
                    tokio::spawn(watch_forever(runner.clone(), account, stop.clone()));
                }
                "async-imap" => {
                    tokio::spawn(async_imap_client(server, i));
                }
                _ => {
                    tokio::spawn(floor_client(server));
                }
            }
            if i % 200 == 199 {
                // Spread the connects: a burst overflows the accept queue.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        opened += n;
        println!("added {opened}");
    }
}

async fn floor_client(server: SocketAddr) {
    let Ok(stream) = TcpStream::connect(server).await else {
        return;
    };
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::with_capacity(512, read).lines();
    let _ = lines.next_line().await;
    let _ = write.write_all(b"p1 IDLE\r\n").await;
    while let Ok(Some(_)) = lines.next_line().await {}
}

/// One account watched with `async-imap`, kept as `watch_forever` keeps
/// ours: a failed session is retried after the same backoff (a connect
/// the server's full accept queue dropped ends in the greeting's deadline).
async fn async_imap_client(server: SocketAddr, i: usize) {
    let config = ImapConfig::default();
    let backoff = Backoff::new(
        Duration::from_secs(2),
        Duration::from_secs(config.max_backoff_seconds),
    );
    let mut failures = 0u32;
    loop {
        let started = Instant::now();
        async_imap_session(server, i, &config).await;
        if started.elapsed() >= Duration::from_secs(60) {
            failures = 0;
        }
        failures = failures.saturating_add(1);
        tokio::time::sleep(backoff.delay(failures)).await;
    }
}

/// One session until it fails: what a watcher does before idling (no
/// marks), every exchange under our watcher's deadline, then IDLE as long as
/// ours does, re-issued after.
async fn async_imap_session(server: SocketAddr, i: usize, config: &ImapConfig) -> Option<()> {
    let deadline = Duration::from_secs(config.timeout_seconds);
    let stream = within(deadline, TcpStream::connect(server)).await?;
    let _ = stream.set_nodelay(true);
    let mut client = async_imap::Client::new(stream);
    within(deadline, client.read_response()).await??;
    let mut session = within(deadline, client.login(format!("user{i}"), "secret")).await?;
    // The crate's rule (and ours): IDLE only where the server offers it.
    if !within(deadline, session.capabilities())
        .await?
        .has_str("IDLE")
    {
        return None;
    }
    within(deadline, session.select("INBOX")).await?;
    let wait = Duration::from_secs(config.idle_seconds);
    loop {
        let mut idle = session.idle();
        within(deadline, idle.init()).await?;
        // The stop source ends the wait when dropped: held while waiting.
        let (woken, _stop) = idle.wait_with_timeout(wait);
        woken.await.ok()?;
        session = within(deadline, idle.done()).await?;
    }
}

/// `exchange`'s value, unless it failed or took longer than `deadline`.
async fn within<T, E>(
    deadline: Duration,
    exchange: impl Future<Output = Result<T, E>>,
) -> Option<T> {
    tokio::time::timeout(deadline, exchange).await.ok()?.ok()
}

// --------------------------------------------------------------- driver

async fn measure(
    kind: &str,
    server: &mut tokio::process::Child,
    addr: SocketAddr,
) -> (Vec<(f64, f64)>, usize) {
    let mut client = helper(&[kind, &addr.to_string()]);
    wait_line(&mut client, "ready").await;
    let pid = client.id().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut points = vec![(0.0, rss_bytes(pid))];
    let step = WATCHERS / STEPS;
    let mut stdin = client.stdin.take().unwrap();
    // As the server counts them: connections logged in, selected and idle.
    let mut held = 0;
    for s in 1..=STEPS {
        stdin
            .write_all(format!("add {step}\n").as_bytes())
            .await
            .unwrap();
        let total = s * step;
        tokio::time::timeout(
            Duration::from_secs(180),
            wait_line(server, &format!("idle {total}")),
        )
        .await
        .unwrap_or_else(|_| panic!("{kind}: {total} connections never all idled"));
        held = total;
        tokio::time::sleep(Duration::from_secs(1)).await;
        points.push((total as f64, rss_bytes(pid)));
    }
    drop(stdin);
    drop(client);
    (points, held)
}

/// `kind` measured against a server process of its own, ended after.
async fn measure_alone(kind: &str) -> (Vec<(f64, f64)>, usize) {
    let port = pushmail_integration_tests::free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut server = helper(&["server", &port.to_string()]);
    wait_line(&mut server, "ready").await;
    let measured = measure(kind, &mut server, addr).await;
    drop(server);
    measured
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("server") => return server(&args[1]).await,
        Some(kind @ ("watchers" | "floor" | "async-imap")) => {
            return measured(kind, args[1].parse().unwrap()).await;
        }
        _ => {}
    }
    let out = args
        .first()
        .cloned()
        .unwrap_or_else(|| "bench/reports/imap.md".into());
    // Each kind against a server of its own, one after another.
    let (floor, floor_held) = measure_alone("floor").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (watchers, held) = measure_alone("watchers").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (crate_points, _) = measure_alone("async-imap").await;

    let floor_bytes = slope(&floor);
    let watcher_bytes = slope(&watchers);
    let crate_bytes = slope(&crate_points);
    let mut report = String::new();
    writeln!(report, "# Ingest: IMAP IDLE watchers per process\n").unwrap();
    writeln!(
        report,
        "{WATCHERS} accounts added in {STEPS} steps to one process, plain TCP to a minimal IMAP server in its own process (login, SELECT, first-sight mark, IDLE), then the same count of async-imap 0.12 clients (runtime-tokio, plain TCP; greeting, LOGIN, CAPABILITY, SELECT, IDLE; no marks), each kind in its own process against its own server; RSS read from /proc once the server counts every connection idle (slope by least squares); bench profile; memory marks (Redis in production, so the marks' bytes here are an overestimate).\n"
    )
    .unwrap();
    report.push_str(pushmail_integration_tests::measure::TABLE_HEAD);
    writeln!(
        report,
        "| bytes per idle IMAP watcher (RSS slope) | {watcher_bytes:.0} | plain tokio TCP client holding an IDLE connection | {floor_bytes:.0} | {:.2} | ≤ {GOAL_BYTES:.0}: {} |",
        watcher_bytes / floor_bytes,
        if watcher_bytes <= GOAL_BYTES { "met" } else { "NOT met" }
    )
    .unwrap();
    writeln!(
        report,
        "| IDLE watchers held by one process (counted idle by the server) | {held} | plain tokio TCP clients, same server | {floor_held} | {:.2} | ≥ 10000: {} |",
        held as f64 / floor_held.max(1) as f64,
        if held >= 10_000 { "met" } else { "NOT met" }
    )
    .unwrap();
    writeln!(
        report,
        "| bytes per idle IMAP connection with async-imap (RSS slope) | {crate_bytes:.0} | ingest's own IMAP watcher (row 1) | {watcher_bytes:.0} | {:.2} | |",
        crate_bytes / watcher_bytes
    )
    .unwrap();
    writeln!(
        report,
        "\nRSS points (connections, bytes): floor {floor:?}; watchers {watchers:?}; async-imap {crate_points:?}"
    )
    .unwrap();
    std::fs::write(&out, &report).unwrap();
    print!("{report}");
}
