//! SMTP messages accepted per second with event publication, against
//! baselines in the same run. The same client load (concurrent sessions,
//! each sending messages back to back with pipelined MAIL/RCPT/DATA) goes
//! to, in turn:
//!
//! 1. a null SMTP sink that reads each message and answers 250 (the
//!    ceiling of the client and the transport on this machine);
//! 2. ingest's receiver publishing to the in-process bus (parse, fsynced
//!    blob, event);
//! 3. ingest's receiver publishing to the Kafka broker (what production
//!    does; 250 only after the broker acknowledged).
//!
//! Recipients resolve from a fixed directory (binding's answer is cached in
//! production). Writes a Markdown report to the path given as the first
//! argument. Run by `make bench`.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark that fails should stop loudly

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pushmail_common::blob::LocalBlobStore;
use pushmail_common::bus::{EventBus, MemoryBusConfig};
use pushmail_ingest::arrival::Announcer;
use pushmail_ingest::smtp::{Mode, Receiver, Recipients, ResolveError, Resolved, Settings};
use pushmail_integration_tests::kafka_bus;
use pushmail_proto::topics::MAIL_ARRIVED;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const SESSIONS: usize = 32;
const MESSAGES: usize = 20_000;
const ACCOUNTS: usize = 1_000;
const GOAL_RATE: f64 = 1_000.0;
const ROUNDS: usize = 2;

struct Directory;

#[async_trait]
impl Recipients for Directory {
    async fn resolve_in(
        &self,
        address: &str,
        _tenant: Option<&str>,
    ) -> Result<Resolved, ResolveError> {
        let account = address.split('@').next().unwrap_or_default();
        Ok(Resolved::Account {
            tenant: "bench".into(),
            account: account.to_owned(),
            kind: pushmail_proto::binding::v1::AccountKind::EnterpriseForwarded,
            policy: pushmail_ingest::smtp::RelayPolicy::default(),
        })
    }
}

fn message(session: usize, n: usize) -> String {
    format!(
        "From: Sender <sender@partner.example>\r\nTo: user{}@bench.example\r\n\
         Subject: load {session}-{n}\r\nMessage-ID: <{session}-{n}-{}@bench>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n",
        n % ACCOUNTS,
        std::process::id(),
        "The quarterly report is attached; please review it before Friday.\r\n".repeat(25)
    )
}

/// One sender session: EHLO, then `count` messages; returns those accepted.
async fn sender(addr: SocketAddr, session: usize, count: usize) -> usize {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (read, mut write) = stream.into_split();
    let mut replies = BufReader::new(read).lines();
    let mut reply = async || loop {
        let line = replies.next_line().await.unwrap().expect("a reply");
        if line.as_bytes().get(3) != Some(&b'-') {
            return line;
        }
    };
    reply().await;
    write.write_all(b"EHLO bench.example\r\n").await.unwrap();
    reply().await;
    let mut accepted = 0;
    for n in 0..count {
        let head = format!(
            "MAIL FROM:<sender@partner.example>\r\nRCPT TO:<user{}@bench.example>\r\nDATA\r\n",
            n % ACCOUNTS
        );
        write.write_all(head.as_bytes()).await.unwrap();
        for _ in 0..3 {
            reply().await;
        }
        write
            .write_all(format!("{}.\r\n", message(session, n)).as_bytes())
            .await
            .unwrap();
        if reply().await.starts_with("250") {
            accepted += 1;
        }
    }
    let _ = write.write_all(b"QUIT\r\n").await;
    accepted
}

/// Messages per second through `addr` (all must be accepted).
async fn load(addr: SocketAddr) -> f64 {
    let started = Instant::now();
    let per = MESSAGES / SESSIONS;
    let sessions: Vec<_> = (0..SESSIONS)
        .map(|s| tokio::spawn(sender(addr, s, per)))
        .collect();
    let mut accepted = 0;
    for session in sessions {
        accepted += session.await.unwrap();
    }
    assert_eq!(accepted, per * SESSIONS, "every message accepted");
    accepted as f64 / started.elapsed().as_secs_f64()
}

/// The null sink: the dialogue, each message read through, no work.
async fn null_sink(listener: TcpListener) {
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        stream.set_nodelay(true).unwrap();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            write.write_all(b"220 sink\r\n").await.unwrap();
            let mut in_data = false;
            while let Ok(Some(line)) = lines.next_line().await {
                let out: &[u8] = if in_data {
                    if line != "." {
                        continue;
                    }
                    in_data = false;
                    b"250 ok\r\n"
                } else if line.starts_with("DATA") {
                    in_data = true;
                    b"354 go\r\n"
                } else if line.starts_with("QUIT") {
                    break;
                } else {
                    b"250 ok\r\n"
                };
                if write.write_all(out).await.is_err() {
                    break;
                }
            }
        });
    }
}

async fn receiver(
    bus: Arc<dyn EventBus>,
    blobs: &std::path::Path,
) -> (SocketAddr, CancellationToken) {
    bus.ensure_topic(MAIL_ARRIVED.name(), 12).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = Receiver::new(
        Mode::Smtp,
        listener,
        Settings {
            hostname: "bench".into(),
            max_message_bytes: 1024 * 1024,
            max_recipients: 100,
            max_connections: 1_000,
            max_connections_per_peer: 1_000,
            timeout: Duration::from_secs(60),
            require_tls: false,
            require_auth: false,
        },
        Arc::new(Directory),
        Announcer::new(
            bus,
            Arc::new(LocalBlobStore::new(blobs)),
            pushmail_ingest::mail::Limits::default(),
        ),
        None,
    );
    let stop = CancellationToken::new();
    tokio::spawn(receiver.run(stop.clone()));
    (addr, stop)
}

/// Fsynced 2 KiB file writes per second, `SESSIONS` in parallel: the
/// disk's ceiling for a receiver that makes every message durable.
async fn fsync_rate(dir: &std::path::Path) -> f64 {
    let per = MESSAGES / SESSIONS / 4;
    let started = Instant::now();
    let writers: Vec<_> = (0..SESSIONS)
        .map(|w| {
            let dir = dir.to_path_buf();
            tokio::task::spawn_blocking(move || {
                use std::io::Write as _;
                for n in 0..per {
                    let mut file = std::fs::File::create(dir.join(format!("{w}-{n}"))).unwrap();
                    file.write_all(&[b'x'; 2_048]).unwrap();
                    file.sync_all().unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    (per * SESSIONS) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "bench/reports/smtp.md".into());

    let sink = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink_addr = sink.local_addr().unwrap();
    tokio::spawn(null_sink(sink));
    let sink_rate = load(sink_addr).await;

    // Two interleaved rounds, best of each: one fsync-heavy neighbour on
    // this shared machine can halve a single round.
    let (mut memory_rate, mut kafka_rate) = (0.0f64, 0.0f64);
    for _ in 0..ROUNDS {
        let blobs = tempfile::tempdir().unwrap();
        let memory: Arc<dyn EventBus> =
            Arc::new(pushmail_common::bus::MemoryBus::new(&MemoryBusConfig {
                partition_capacity: MESSAGES * 2,
                ..MemoryBusConfig::default()
            }));
        let (addr, stop) = receiver(memory, blobs.path()).await;
        memory_rate = memory_rate.max(load(addr).await);
        stop.cancel();

        let blobs = tempfile::tempdir().unwrap();
        let (addr, stop) = receiver(kafka_bus().await.unwrap(), blobs.path()).await;
        kafka_rate = kafka_rate.max(load(addr).await);
        stop.cancel();
    }

    let disk = tempfile::tempdir().unwrap();
    let disk_rate = fsync_rate(disk.path()).await;

    let storage = pushmail_integration_tests::broker::shared_storage();
    let mut report = String::new();
    writeln!(report, "# Ingest: SMTP messages accepted per second\n").unwrap();
    writeln!(
        report,
        "{MESSAGES} messages of ~2 KiB over {SESSIONS} concurrent SMTP sessions (pipelined MAIL/RCPT/DATA, one recipient each, {ACCOUNTS} accounts), client in the same process; best of {ROUNDS} interleaved rounds; each 250 only after the blob is fsynced and the event published; bench profile; the Kafka broker is the shared test tansu on this machine (storage `{storage}`, read from the running broker).\n"
    )
    .unwrap();
    report.push_str(pushmail_integration_tests::measure::TABLE_HEAD);
    writeln!(
        report,
        "| SMTP messages/s, published to Kafka | {kafka_rate:.0} | null SMTP sink, same client load | {sink_rate:.0} | {:.2} | ≥ {GOAL_RATE:.0}: {} |",
        kafka_rate / sink_rate,
        if kafka_rate >= GOAL_RATE { "met" } else { "NOT met" }
    )
    .unwrap();
    writeln!(
        report,
        "| SMTP messages/s, published to the in-process bus | {memory_rate:.0} | null SMTP sink | {sink_rate:.0} | {:.2} | |",
        memory_rate / sink_rate
    )
    .unwrap();
    writeln!(
        report,
        "| SMTP messages/s, published to Kafka | {kafka_rate:.0} | fsynced 2 KiB file writes/s, {SESSIONS} in parallel (this disk's ceiling for durable acceptance) | {disk_rate:.0} | {:.2} | |",
        kafka_rate / disk_rate
    )
    .unwrap();
    std::fs::write(&out, &report).unwrap();
    print!("{report}");
}
