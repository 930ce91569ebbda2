//! The SMTP and LMTP receivers' dialogue over real TCP, with the
//! in-process bus (whose bounded queue gives a real "broker full"), a local
//! blob store and a fixed recipient directory in place of binding (the
//! end-to-end test with binding, Kafka and swaks is in `integration-tests`).

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pushmail_common::blob::LocalBlobStore;
use pushmail_common::bus::{EventBus, MemoryBus, MemoryBusConfig, SubscribeOptions, Subscription};
use pushmail_ingest::arrival::Announcer;
use pushmail_ingest::mail::Limits;
use pushmail_ingest::smtp::{Mode, Receiver, Recipients, ResolveError, Resolved, Settings};
use pushmail_proto::binding::v1::AccountKind;
use pushmail_proto::events::v1::{IngestSource, MailArrived};
use pushmail_proto::topics::MAIL_ARRIVED;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Addresses → (tenant, account); `down@…` fails like an unreachable binding.
struct Directory(HashMap<&'static str, (&'static str, &'static str)>);

#[async_trait]
impl Recipients for Directory {
    async fn resolve_in(
        &self,
        address: &str,
        _tenant: Option<&str>,
    ) -> Result<Resolved, ResolveError> {
        let address = address.to_lowercase();
        if address.starts_with("down@") {
            return Err(ResolveError(Box::new(tonic::Status::unavailable(
                "binding unreachable",
            ))));
        }
        if !address.contains('@') {
            return Ok(Resolved::BadAddress);
        }
        Ok(match self.0.get(address.as_str()) {
            Some((tenant, account)) => Resolved::Account {
                tenant: (*tenant).into(),
                account: (*account).into(),
                kind: if address.starts_with("watched@") {
                    AccountKind::ExternalImap
                } else {
                    AccountKind::EnterpriseForwarded
                },
                policy: pushmail_ingest::smtp::RelayPolicy::default(),
            },
            None => Resolved::Unknown,
        })
    }
}

fn directory() -> Arc<dyn Recipients> {
    Arc::new(Directory(HashMap::from([
        ("alice@corp.example", ("t1", "acct-alice")),
        ("alias@corp.example", ("t1", "acct-alice")),
        ("bob@corp.example", ("t1", "acct-bob")),
        ("watched@corp.example", ("t1", "acct-imap")),
    ])))
}

fn settings() -> Settings {
    Settings {
        hostname: "mx.test".into(),
        max_message_bytes: 4_096,
        max_recipients: 3,
        max_connections: 8,
        max_connections_per_peer: 4,
        timeout: Duration::from_secs(10),
        require_tls: false,
        require_auth: false,
    }
}

struct Fixture {
    addr: SocketAddr,
    events: Box<dyn Subscription>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _blobs: tempfile::TempDir,
}

impl Fixture {
    async fn start(mode: Mode, settings: Settings, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        Self::start_with(mode, settings, tls, 1_000).await
    }

    async fn start_with(
        mode: Mode,
        settings: Settings,
        tls: Option<tokio_rustls::TlsAcceptor>,
        queue: usize,
    ) -> Self {
        let blobs = tempfile::tempdir().unwrap();
        let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::new(&MemoryBusConfig {
            partition_capacity: queue,
            partitions: 1,
            publish_timeout_ms: 200,
        }));
        bus.ensure_topic(MAIL_ARRIVED.name(), 1).await.unwrap();
        let events = bus
            .subscribe(SubscribeOptions {
                group: "test".into(),
                topics: vec![MAIL_ARRIVED.name().into()],
            })
            .await
            .unwrap();
        let announcer = Announcer::new(
            bus,
            Arc::new(LocalBlobStore::new(blobs.path())),
            Limits::default(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let receiver = Receiver::new(mode, listener, settings, directory(), announcer, tls);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(receiver.run(shutdown.clone()));
        Self {
            addr,
            events,
            shutdown,
            task,
            _blobs: blobs,
        }
    }

    async fn client(&self) -> Client<TcpStream> {
        let mut client = Client::new(TcpStream::connect(self.addr).await.unwrap());
        assert!(client.reply().await.starts_with("220 mx.test"));
        client
    }

    async fn event(&mut self) -> MailArrived {
        let record = tokio::time::timeout(Duration::from_secs(5), self.events.next())
            .await
            .expect("an event")
            .unwrap();
        self.events.commit(&record).await.unwrap();
        pushmail_common::bus::decode(MAIL_ARRIVED, &record).unwrap()
    }

    async fn no_event(&mut self) {
        let next = tokio::time::timeout(Duration::from_millis(300), self.events.next()).await;
        assert!(next.is_err(), "no event expected: {next:?}");
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap();
    }
}

struct Client<S> {
    io: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    fn new(stream: S) -> Self {
        Self {
            io: BufReader::new(stream),
        }
    }

    /// One reply, multi-line ones joined with `\n`.
    async fn reply(&mut self) -> String {
        let mut all = Vec::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(10), self.io.read_line(&mut line))
                .await
                .expect("a reply in time")
                .unwrap();
            if n == 0 {
                all.push("<closed>".to_owned());
                return all.join("\n");
            }
            let line = line.trim_end().to_owned();
            let last = line.as_bytes().get(3) != Some(&b'-');
            all.push(line);
            if last {
                return all.join("\n");
            }
        }
    }

    async fn send(&mut self, text: &str) {
        self.io.get_mut().write_all(text.as_bytes()).await.unwrap();
    }

    async fn cmd(&mut self, line: &str) -> String {
        self.send(&format!("{line}\r\n")).await;
        self.reply().await
    }

    async fn code(&mut self, line: &str) -> u16 {
        let reply = self.cmd(line).await;
        reply[..3]
            .parse()
            .unwrap_or_else(|_| panic!("{line}: {reply}"))
    }
}

fn message(subject: &str, body: &str) -> String {
    format!(
        "From: Sender <s@partner.example>\r\nTo: alice@corp.example\r\nSubject: {subject}\r\n\
         Message-ID: <{}@partner.example>\r\n\r\n{body}\r\n",
        rand_id()
    )
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[tokio::test]
async fn smtp_accepts_known_recipients_and_answers_after_publishing() {
    let mut fx = Fixture::start(Mode::Smtp, settings(), None).await;
    let mut c = fx.client().await;
    let ehlo = c.cmd("EHLO partner.example").await;
    for ext in ["SIZE 4096", "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"] {
        assert!(ehlo.contains(ext), "{ehlo}");
    }
    assert!(
        !ehlo.contains("STARTTLS"),
        "no certificate, no STARTTLS: {ehlo}"
    );
    assert_eq!(c.code("MAIL FROM:<s@partner.example>").await, 250);
    assert_eq!(c.code("RCPT TO:<Alice@Corp.Example>").await, 250);
    assert!(
        c.cmd("RCPT TO:<nobody@corp.example>")
            .await
            .starts_with("550 5.1.1")
    );
    let watched = c.cmd("RCPT TO:<watched@corp.example>").await;
    assert!(
        watched.starts_with("550 5.1.1 Recipient not accepted here"),
        "an IMAP-watched mailbox is announced by its watcher: {watched}"
    );
    assert_eq!(
        c.code("RCPT TO:<alias@corp.example>").await,
        250,
        "same account"
    );
    assert_eq!(c.code("RCPT TO:<bob@corp.example>").await, 250);
    assert_eq!(c.code("DATA").await, 354);
    let mail = message("=?GBK?B?xOO6w8rAvec=?=", "..leading dot\r\nline two");
    c.send(&format!("{mail}.\r\n")).await;
    assert!(c.reply().await.starts_with("250 2.0.0"));

    let mut by_account = HashMap::new();
    for _ in 0..2 {
        let event = fx.event().await;
        by_account.insert(event.account_id.clone(), event);
    }
    fx.no_event().await;
    let alice = &by_account["acct-alice"];
    assert_eq!(alice.summary.as_ref().unwrap().subject, "你好世界");
    assert!(
        alice
            .summary
            .as_ref()
            .unwrap()
            .snippet
            .starts_with(".leading dot")
    );
    assert_eq!(alice.source(), IngestSource::Smtp);
    assert_eq!(alice.mailbox, "INBOX");
    assert!(alice.idempotency_key.starts_with("mid:acct-alice:"));
    assert_eq!(
        by_account["acct-bob"].blob_ref, alice.blob_ref,
        "stored once"
    );

    assert_eq!(c.code("QUIT").await, 221);
    fx.stop().await;
}

#[tokio::test]
async fn pipelined_commands_get_their_replies_in_order() {
    let mut fx = Fixture::start(Mode::Smtp, settings(), None).await;
    let mut c = fx.client().await;
    c.send("EHLO p\r\nMAIL FROM:<>\r\nRCPT TO:<x@nowhere.example>\r\nRCPT TO:<bob@corp.example>\r\nDATA\r\n")
        .await;
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(c.reply().await[..3].to_owned());
    }
    assert_eq!(codes, ["250", "250", "550", "250", "354"]);
    c.send(&format!(
        "{}.\r\nRSET\r\nNOOP\r\n",
        message("pipelined", "x")
    ))
    .await;
    assert!(c.reply().await.starts_with("250 2.0.0 Ok: published"));
    assert_eq!(&c.reply().await[..3], "250");
    assert_eq!(&c.reply().await[..3], "250");
    assert_eq!(fx.event().await.account_id, "acct-bob");
    fx.stop().await;
}

#[tokio::test]
async fn lmtp_answers_per_recipient() {
    let mut fx = Fixture::start(Mode::Lmtp, settings(), None).await;
    let mut c = Client::new(TcpStream::connect(fx.addr).await.unwrap());
    assert!(c.reply().await.contains("LMTP"));
    assert!(c.cmd("EHLO x").await.starts_with("500"), "LMTP wants LHLO");
    assert_eq!(c.code("LHLO x").await, 250);
    assert_eq!(c.code("MAIL FROM:<s@p.example>").await, 250);
    assert_eq!(c.code("RCPT TO:<alice@corp.example>").await, 250);
    assert_eq!(c.code("RCPT TO:<ghost@corp.example>").await, 550);
    assert_eq!(c.code("RCPT TO:<bob@corp.example>").await, 250);
    assert_eq!(c.code("DATA").await, 354);
    c.send(&format!("{}.\r\n", message("lmtp", "hi"))).await;
    assert!(c.reply().await.starts_with("250"), "alice");
    assert!(c.reply().await.starts_with("250"), "bob");
    let events = [fx.event().await, fx.event().await];
    assert!(events.iter().all(|e| e.source() == IngestSource::Lmtp));
    let mut accounts = events.map(|e| e.account_id);
    accounts.sort();
    assert_eq!(accounts, ["acct-alice", "acct-bob"]);
    fx.stop().await;
}

#[tokio::test]
async fn size_limits_are_announced_and_enforced_without_losing_the_session() {
    let mut fx = Fixture::start(Mode::Lmtp, settings(), None).await;
    let mut c = fx.client().await;
    c.cmd("LHLO x").await;
    assert!(
        c.cmd("MAIL FROM:<s@p.example> SIZE=5000")
            .await
            .starts_with("552 5.3.4")
    );
    assert_eq!(c.code("MAIL FROM:<s@p.example> SIZE=100").await, 250);
    assert_eq!(c.code("RCPT TO:<alice@corp.example>").await, 250);
    assert_eq!(c.code("RCPT TO:<bob@corp.example>").await, 250);
    assert_eq!(c.code("DATA").await, 354);
    let big = message("big", &"x".repeat(5_000));
    c.send(&format!("{big}.\r\n")).await;
    assert!(c.reply().await.starts_with("552 5.3.4"), "per recipient");
    assert!(c.reply().await.starts_with("552 5.3.4"));
    fx.no_event().await;
    // The conversation goes on.
    assert_eq!(c.code("MAIL FROM:<s@p.example>").await, 250);
    assert_eq!(c.code("RCPT TO:<alice@corp.example>").await, 250);
    assert_eq!(c.code("DATA").await, 354);
    c.send(&format!("{}.\r\n", message("small", "fits"))).await;
    assert_eq!(&c.reply().await[..3], "250");
    assert_eq!(fx.event().await.summary.unwrap().subject, "small");
    fx.stop().await;
}

#[tokio::test]
async fn a_full_queue_or_a_lookup_outage_answers_4xx_and_a_retry_gets_through() {
    // One record of room, taken by the first mail and never consumed.
    let mut fx = Fixture::start_with(Mode::Smtp, settings(), None, 1).await;
    let mut c = fx.client().await;
    c.cmd("EHLO x").await;
    assert!(c.cmd("MAIL FROM:<s@p.example>").await.starts_with("250"));
    assert!(
        c.cmd("RCPT TO:<down@corp.example>")
            .await
            .starts_with("451 4.3.0"),
        "binding unreachable: try later"
    );
    let send = async |c: &mut Client<TcpStream>, mail: &str| {
        assert_eq!(c.code("MAIL FROM:<s@p.example>").await, 250);
        assert_eq!(c.code("RCPT TO:<bob@corp.example>").await, 250);
        assert_eq!(c.code("DATA").await, 354);
        c.send(&format!("{mail}.\r\n")).await;
        c.reply().await
    };
    assert_eq!(c.code("RSET").await, 250);
    let first = message("first", "1");
    assert!(send(&mut c, &first).await.starts_with("250"));
    let second = message("second", "2");
    let refused = send(&mut c, &second).await;
    assert!(refused.starts_with("451 4.3.0"), "queue full: {refused}");
    // The queue drains; the sender's retry of the same message lands.
    assert_eq!(fx.event().await.summary.unwrap().subject, "first");
    let again = send(&mut c, &second).await;
    assert!(again.starts_with("250"), "{again}");
    assert_eq!(fx.event().await.summary.unwrap().subject, "second");
    fx.stop().await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_reply_and_floods_are_cut_off() {
    let fx = Fixture::start(Mode::Smtp, settings(), None).await;
    let mut c = fx.client().await;
    assert!(
        c.cmd("MAIL FROM:<a@b.example>").await.starts_with("503"),
        "hello first"
    );
    c.cmd("EHLO x").await;
    assert!(c.cmd("RCPT TO:<bob@corp.example>").await.starts_with("503"));
    assert!(c.cmd("DATA").await.starts_with("503"));
    assert!(c.cmd("MAIL FROM:bob").await.starts_with("501"));
    assert!(
        c.cmd("MAIL FROM:<a@b.example> XFORWARD=1")
            .await
            .starts_with("555")
    );
    assert_eq!(c.code("MAIL FROM:<a@b.example>").await, 250);
    assert!(
        c.cmd("MAIL FROM:<a@b.example>").await.starts_with("503"),
        "nested"
    );
    // A path that is no mailbox is a syntax error to the parser
    // (smtp-proto), 501 5.5.4, before any lookup (whose bad address is
    // 501 5.1.3): RFC 5321's 501 either way.
    assert!(
        c.cmd("RCPT TO:<not-an-address>")
            .await
            .starts_with("501 5.5.4")
    );
    for n in 0..3 {
        let address = format!("RCPT TO:<{}@corp.example>", ["alice", "bob", "alias"][n]);
        assert_eq!(c.code(&address).await, 250);
    }
    assert!(
        c.cmd("RCPT TO:<bob@corp.example>").await.starts_with("452"),
        "max 3"
    );
    assert_eq!(c.code("DATA").await, 354);
    c.send("this is not a mail message at all\r\n.\r\n").await;
    let refused = c.reply().await;
    assert!(refused.starts_with("554 5.6.0"), "{refused}");
    assert!(
        c.cmd("VRFY alice").await.starts_with("252"),
        "reveals nothing"
    );
    assert!(
        c.cmd(&"X".repeat(5_000))
            .await
            .starts_with("500 5.5.2 Line too long")
    );
    assert!(c.cmd("STARTTLS").await.starts_with("454"), "no certificate");
    let mut last = String::new();
    for _ in 0..12 {
        last = c.cmd("BOGUS").await;
        if last.starts_with("421") {
            break;
        }
    }
    assert!(last.starts_with("421 4.7.0"), "{last}");
    assert_eq!(c.reply().await, "<closed>");
    fx.stop().await;
}

#[tokio::test]
async fn idle_connections_are_told_to_come_back_on_shutdown_and_extra_ones_are_turned_away() {
    let fx = Fixture::start(
        Mode::Smtp,
        Settings {
            max_connections: 1,
            ..settings()
        },
        None,
    )
    .await;
    let mut c = fx.client().await;
    let mut extra = Client::new(TcpStream::connect(fx.addr).await.unwrap());
    assert!(extra.reply().await.starts_with("421 4.3.2"));
    fx.shutdown.cancel();
    assert!(c.reply().await.starts_with("421 4.3.2"));
    fx.task.await.unwrap();
}

#[tokio::test]
async fn one_address_gets_its_share_of_connections_and_no_more() {
    let fx = Fixture::start(
        Mode::Smtp,
        Settings {
            max_connections: 8,
            max_connections_per_peer: 2,
            ..settings()
        },
        None,
    )
    .await;
    let mut first = fx.client().await;
    let _second = fx.client().await;
    let mut third = Client::new(TcpStream::connect(fx.addr).await.unwrap());
    assert!(third.reply().await.starts_with("421 4.7.0"));
    // The slot comes back when a connection ends.
    assert!(first.cmd("QUIT").await.starts_with("221"));
    drop(first);
    let mut again = None;
    for _ in 0..50 {
        let mut c = Client::new(TcpStream::connect(fx.addr).await.unwrap());
        let greeting = c.reply().await;
        if greeting.starts_with("220") {
            again = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "a freed slot is taken again");
    fx.shutdown.cancel();
    fx.task.await.unwrap();
}

fn tls_pair() -> (
    tokio_rustls::TlsAcceptor,
    tokio_rustls::TlsConnector,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["mx.test".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
    let acceptor = pushmail_common::tls::ServerTlsConfig {
        enabled: true,
        cert_path: dir.path().join("cert.pem"),
        key_path: dir.path().join("key.pem"),
        ..Default::default()
    }
    .acceptor("smtp.tls.")
    .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (
        acceptor,
        tokio_rustls::TlsConnector::from(Arc::new(client)),
        dir,
    )
}

#[tokio::test]
async fn starttls_upgrades_and_can_be_required() {
    let (acceptor, connector, _dir) = tls_pair();
    let mut fx = Fixture::start(
        Mode::Smtp,
        Settings {
            require_tls: true,
            ..settings()
        },
        Some(acceptor),
    )
    .await;
    let mut c = fx.client().await;
    assert!(c.cmd("EHLO x").await.contains("STARTTLS"));
    assert!(
        c.cmd("MAIL FROM:<s@p.example>")
            .await
            .starts_with("530 5.7.0")
    );
    // A command pipelined behind STARTTLS in plain text is dropped, not run
    // inside the TLS session.
    c.send("STARTTLS\r\nRSET\r\n").await;
    assert!(c.reply().await.starts_with("220 2.0.0"));
    let tcp = c.io.into_inner();
    let tls = connector
        .connect("mx.test".try_into().unwrap(), tcp)
        .await
        .expect("handshake");
    let mut c = Client::new(tls);
    assert!(
        c.cmd("MAIL FROM:<s@p.example>").await.starts_with("503"),
        "EHLO again after TLS"
    );
    let ehlo = c.cmd("EHLO x").await;
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert_eq!(c.code("MAIL FROM:<s@p.example>").await, 250);
    assert_eq!(c.code("RCPT TO:<alice@corp.example>").await, 250);
    assert_eq!(c.code("DATA").await, 354);
    c.send(&format!("{}.\r\n", message("over tls", "secret")))
        .await;
    assert_eq!(&c.reply().await[..3], "250");
    assert_eq!(fx.event().await.summary.unwrap().subject, "over tls");
    fx.stop().await;
}
