//! The IMAP watcher's loop against a scripted server over TCP: NOOP
//! polling where the server has no IDLE, IDLE re-issued on its interval,
//! and a reconnect (with backoff) after the server drops the session,
//! catching up on mail that arrived meanwhile.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pushmail_common::blob::LocalBlobStore;
use pushmail_common::bus::{EventBus, MemoryBus, MemoryBusConfig, SubscribeOptions, Subscription};
use pushmail_common::grpc::UpstreamConfig;
use pushmail_common::redact::Secret;
use pushmail_ingest::accounts::MailAccount;
use pushmail_ingest::arrival::Announcer;
use pushmail_ingest::checkpoints::MemoryCheckpoints;
use pushmail_ingest::config::ImapConfig;
use pushmail_ingest::imap::{Runner, watch_forever};
use pushmail_ingest::leases::Leases;
use pushmail_ingest::marks::MemoryMarks;
use pushmail_ingest::tls::{Security, Tls};
use pushmail_proto::events::v1::MailArrived;
use pushmail_proto::topics::MAIL_ARRIVED;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What the scripted server holds and counts.
#[derive(Default)]
struct Mailbox {
    messages: Mutex<Vec<Vec<u8>>>,
    arrived: Notify,
    connections: AtomicUsize,
    idles: AtomicUsize,
    dones: AtomicUsize,
    noops: AtomicUsize,
}

impl Mailbox {
    fn add(&self, subject: &str) {
        let raw = format!(
            "From: a@b.example\r\nSubject: {subject}\r\nMessage-ID: <{subject}@x>\r\n\r\nhi\r\n"
        );
        self.messages.lock().unwrap().push(raw.into_bytes());
        self.arrived.notify_waiters();
    }

    fn count(&self) -> usize {
        self.messages.lock().unwrap().len()
    }
}

struct Script {
    idle: bool,
    /// The first session is dropped as soon as it starts to IDLE.
    drop_first_idle: bool,
}

async fn serve(listener: TcpListener, mailbox: Arc<Mailbox>, script: Arc<Script>) {
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        let n = mailbox.connections.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(session(stream, mailbox.clone(), script.clone(), n == 0));
    }
}

async fn session(stream: TcpStream, mailbox: Arc<Mailbox>, script: Arc<Script>, first: bool) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let caps = if script.idle {
        "IMAP4rev1 IDLE"
    } else {
        "IMAP4rev1"
    };
    write
        .write_all(format!("* OK [CAPABILITY {caps}] hi\r\n").as_bytes())
        .await
        .unwrap();
    let mut reported = 0;
    while let Ok(Some(line)) = lines.next_line().await {
        let (tag, command) = line.split_once(' ').unwrap_or((&line, ""));
        let upper = command.to_ascii_uppercase();
        let count = mailbox.count();
        let mut out = String::new();
        if upper.starts_with("CAPABILITY") {
            out = format!("* CAPABILITY {caps}\r\n");
        } else if upper.starts_with("SELECT") {
            reported = count;
            out = format!(
                "* {count} EXISTS\r\n* OK [UIDVALIDITY 5] v\r\n* OK [UIDNEXT {}] n\r\n",
                count + 1
            );
        } else if let Some(range) = upper.strip_prefix("UID SEARCH UID ") {
            let from: usize = range.trim_end_matches(":*").parse().unwrap();
            let uids: Vec<String> = (from.max(1)..=count)
                .chain((count > 0).then_some(count))
                .map(|u| u.to_string())
                .collect();
            out = format!("* SEARCH {}\r\n", uids.join(" "));
        } else if upper.starts_with("UID SEARCH") {
            let uids: Vec<String> = (1..=count).map(|u| u.to_string()).collect();
            out = format!("* SEARCH {}\r\n", uids.join(" "));
        } else if upper.starts_with("UID FETCH") {
            let uid: usize = upper.split(' ').nth(2).unwrap().parse().unwrap();
            let raw = mailbox.messages.lock().unwrap()[uid - 1].clone();
            if upper.contains("RFC822.SIZE") {
                out = format!("* {uid} FETCH (UID {uid} RFC822.SIZE {})\r\n", raw.len());
            } else {
                write
                    .write_all(
                        format!("* {uid} FETCH (UID {uid} BODY[] {{{}}}\r\n", raw.len()).as_bytes(),
                    )
                    .await
                    .unwrap();
                write.write_all(&raw).await.unwrap();
                out = ")\r\n".to_owned();
            }
        } else if upper.starts_with("NOOP") {
            mailbox.noops.fetch_add(1, Ordering::SeqCst);
            if count > reported {
                reported = count;
                out = format!("* {count} EXISTS\r\n");
            }
        } else if upper.starts_with("IDLE") {
            mailbox.idles.fetch_add(1, Ordering::SeqCst);
            write.write_all(b"+ idling\r\n").await.unwrap();
            if first && script.drop_first_idle {
                return;
            }
            let arrived = mailbox.arrived.notified();
            tokio::select! {
                () = arrived => {
                    let count = mailbox.count();
                    write.write_all(format!("* {count} EXISTS\r\n").as_bytes()).await.unwrap();
                    let done = lines.next_line().await.unwrap().unwrap();
                    assert_eq!(done, "DONE");
                }
                done = lines.next_line() => assert_eq!(done.unwrap().unwrap(), "DONE"),
            }
            mailbox.dones.fetch_add(1, Ordering::SeqCst);
        }
        out.push_str(&format!("{tag} OK done\r\n"));
        if write.write_all(out.as_bytes()).await.is_err() {
            return;
        }
    }
}

struct Fixture {
    mailbox: Arc<Mailbox>,
    events: Box<dyn Subscription>,
    stop: CancellationToken,
    _blobs: tempfile::TempDir,
}

async fn start(script: Script) -> Fixture {
    start_with(script, MemoryBusConfig::default()).await
}

async fn start_with(script: Script, queue: MemoryBusConfig) -> Fixture {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let mailbox = Arc::new(Mailbox::default());
    tokio::spawn(serve(listener, mailbox.clone(), Arc::new(script)));
    let blobs = tempfile::tempdir().unwrap();
    let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::new(&queue));
    bus.ensure_topic(MAIL_ARRIVED.name(), 1).await.unwrap();
    let events = bus
        .subscribe(SubscribeOptions {
            group: "t".into(),
            topics: vec![MAIL_ARRIVED.name().into()],
        })
        .await
        .unwrap();
    let runner = Arc::new(Runner {
        binding: UpstreamConfig::at("http://127.0.0.1:9").channel().unwrap(),
        tls: Tls::new(&[]).unwrap().with_egress(
            pushmail_common::egress::EgressConfig::loopback()
                .policy()
                .unwrap(),
        ),
        marks: Arc::new(MemoryMarks::default()),
        checkpoints: Arc::new(MemoryCheckpoints::default()),
        announcer: Announcer::new(
            bus,
            Arc::new(LocalBlobStore::new(blobs.path())),
            pushmail_ingest::mail::Limits::default(),
        ),
        config: ImapConfig {
            idle_seconds: 1,
            noop_seconds: 1,
            ..ImapConfig::default()
        },
        leases: Leases::new(None, "", Duration::from_secs(30)),
    });
    let account = MailAccount {
        tenant: "t".into(),
        account: "a".into(),
        host: "127.0.0.1".into(),
        port: addr.port(),
        security: Security::None,
        username: "u".into(),
        password: Secret::new("p"),
        folders: Vec::new(),
    };
    let stop = CancellationToken::new();
    tokio::spawn(watch_forever(runner, account, stop.clone()));
    Fixture {
        mailbox,
        events,
        stop,
        _blobs: blobs,
    }
}

impl Fixture {
    async fn subject(&mut self) -> String {
        let record = tokio::time::timeout(Duration::from_secs(15), self.events.next())
            .await
            .expect("an event")
            .unwrap();
        self.events.commit(&record).await.unwrap();
        let event: MailArrived = pushmail_common::bus::decode(MAIL_ARRIVED, &record).unwrap();
        event.summary.unwrap().subject
    }

    /// Waits until the server has counted `n` of something.
    async fn until(&self, what: impl Fn(&Mailbox) -> usize, n: usize) {
        tokio::time::timeout(Duration::from_secs(15), async {
            while what(&self.mailbox) < n {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the server saw it in time");
    }
}

#[tokio::test]
async fn without_idle_the_watcher_polls_with_noop() {
    let mut fx = start(Script {
        idle: false,
        drop_first_idle: false,
    })
    .await;
    fx.until(|m| m.noops.load(Ordering::SeqCst), 1).await;
    fx.mailbox.add("polled");
    assert_eq!(fx.subject().await, "polled");
    assert_eq!(fx.mailbox.idles.load(Ordering::SeqCst), 0);
    fx.stop.cancel();
}

#[tokio::test]
async fn idle_is_reissued_on_its_interval_and_wakes_on_new_mail() {
    let mut fx = start(Script {
        idle: true,
        drop_first_idle: false,
    })
    .await;
    // idle_seconds = 1: each IDLE ends with DONE and a new one follows.
    fx.until(|m| m.dones.load(Ordering::SeqCst), 2).await;
    // The third IDLE follows the second DONE: waited for, not assumed
    // (under load the assertion raced the watcher).
    fx.until(|m| m.idles.load(Ordering::SeqCst), 3).await;
    fx.mailbox.add("woken");
    assert_eq!(fx.subject().await, "woken");
    assert_eq!(
        fx.mailbox.connections.load(Ordering::SeqCst),
        1,
        "one session throughout"
    );
    fx.stop.cancel();
}

#[tokio::test]
async fn a_dropped_session_is_reopened_and_catches_up() {
    let mut fx = start(Script {
        idle: true,
        drop_first_idle: true,
    })
    .await;
    fx.until(|m| m.idles.load(Ordering::SeqCst), 1).await;
    // The server dropped the session; mail arrives before the watcher is back.
    fx.mailbox.add("while away");
    assert_eq!(fx.subject().await, "while away");
    assert_eq!(fx.mailbox.connections.load(Ordering::SeqCst), 2);
    fx.stop.cancel();
}

#[tokio::test]
async fn a_failed_publish_leaves_the_mark_so_the_mail_is_announced_later_once() {
    // Room for one unconsumed event; a second publish fails (queue full).
    let queue = MemoryBusConfig {
        partition_capacity: 1,
        partitions: 1,
        publish_timeout_ms: 100,
    };
    let mut fx = start_with(
        Script {
            idle: true,
            drop_first_idle: false,
        },
        queue,
    )
    .await;
    fx.until(|m| m.idles.load(Ordering::SeqCst), 1).await;
    fx.mailbox.add("one");
    fx.until(|m| m.dones.load(Ordering::SeqCst), 1).await;
    fx.mailbox.add("two");
    // The watcher fails on "two" and reconnects after a backoff; reading
    // "one" makes room.
    fx.until(|m| m.connections.load(Ordering::SeqCst), 2).await;
    assert_eq!(fx.subject().await, "one");
    assert_eq!(fx.subject().await, "two");
    let extra = tokio::time::timeout(Duration::from_secs(3), fx.events.next()).await;
    assert!(extra.is_err(), "nothing announced twice: {extra:?}");
    fx.stop.cancel();
}
