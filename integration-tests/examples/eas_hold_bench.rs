//! Held ActiveSync Pings in the front door's own process: the
//! `pushmail-activesync` binary (bench profile, a process of its own so
//! its RSS is the measurement) holding Pings from phones in helper
//! processes (this binary in client mode, one 127.0.0.x source each), next
//! to the floor for a held HTTP/1.1 request measured in the same run: a
//! bare axum server whose handler never answers, holding the same number
//! of the same requests. Binding (PostgreSQL) and the session service
//! that holds each Ping's `Hold` stream run in this process. Every phone
//! is an app password of one account's bound number, provisioned (both
//! Provision steps) and then Pinging with the longest heartbeat, so
//! nothing ends a hold during the bench. Writes a Markdown report to the
//! path given as the first argument; a second argument sets the number of
//! phones (a quick look; the report's figure is at 15,000). Run by `make
//! bench`.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark that fails should stop loudly

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use pushmail_common::service_identity::Service;
use pushmail_integration_tests::activesync::{Sessions, basic, provision_request, text_at};
use pushmail_integration_tests::measure::{helper, rss_bytes, slope, wait_line};
use pushmail_integration_tests::nodes::{BindingNode, bind_device};
use pushmail_integration_tests::topics::TenantTopics;
use pushmail_integration_tests::{authed, credential, free_port, kafka_bus};
use pushmail_proto::binding::v1 as pb;
use pushmail_wbxml::{Element, tag};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::process::{Child, Command};

/// Phones held at the end (each process stays under the file limit).
const PHONES: usize = 15_000;
const CLIENT_PROCESSES: usize = 4;
/// A Ping's longest heartbeat: nothing ends a hold during the bench.
const HEARTBEAT: u32 = 3_540;
/// The goal for a held Ping: at most 8 KiB.
const GOAL_BYTES: f64 = 8_192.0;
/// Logins (argon2 in binding) in flight per client process.
const LOGINS_IN_FLIGHT: usize = 4;
const ADDRESS: &str = "holder@corp.example";

// ---------------------------------------------------------------- phones

/// One HTTP/1.1 exchange on a kept-alive connection: the status and body.
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> (u16, Vec<u8>) {
    stream.write_all(request).await.unwrap();
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 4_096];
    let end = loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before an answer");
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..end]).to_string();
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .unwrap_or(0);
    while buffer.len() < end + length {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed inside an answer");
        buffer.extend_from_slice(&chunk[..n]);
    }
    (status, buffer[end..end + length].to_vec())
}

fn request(query: &str, auth: &str, key: Option<&str>, body: &[u8]) -> Vec<u8> {
    let key = key.map_or(String::new(), |k| format!("X-MS-PolicyKey: {k}\r\n"));
    let mut bytes = format!(
        "POST /Microsoft-Server-ActiveSync?{query} HTTP/1.1\r\nHost: eas\r\n\
         Authorization: {auth}\r\nMS-ASProtocolVersion: 16.1\r\n{key}\
         Content-Type: application/vnd.ms-sync.wbxml\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn ping() -> Vec<u8> {
    let inbox = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, "INBOX");
    let root = Element::of(tag("Ping", "Ping"))
        .with(Element::text_of(
            tag("Ping", "HeartbeatInterval"),
            HEARTBEAT.to_string(),
        ))
        .with(
            Element::of(tag("Ping", "Folders")).with(
                Element::of(tag("Ping", "Folder"))
                    .with(Element::text_of(tag("Ping", "Id"), inbox))
                    .with(Element::text_of(tag("Ping", "Class"), "Email")),
            ),
        );
    pushmail_wbxml::encode(&root).unwrap()
}

/// A phone's policy key after both Provision steps, or `None` when the
/// front door asked it to come back later (binding's argon2 is bounded).
async fn provision(stream: &mut TcpStream, query: &str, auth: &str) -> Option<String> {
    let key_at = [
        ("Provision", "Policies"),
        ("Provision", "Policy"),
        ("Provision", "PolicyKey"),
    ];
    let (status, body) = exchange(
        stream,
        &request(query, auth, None, &provision_request(None)),
    )
    .await;
    if status == 503 {
        return None;
    }
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let temporary = text_at(&pushmail_wbxml::decode(&body).unwrap(), &key_at).unwrap();
    let acknowledgement = provision_request(Some(&temporary));
    let (status, body) = exchange(
        stream,
        &request(query, auth, Some(&temporary), &acknowledgement),
    )
    .await;
    if status == 503 {
        return None;
    }
    assert_eq!(status, 200);
    Some(text_at(&pushmail_wbxml::decode(&body).unwrap(), &key_at).unwrap())
}

/// One phone: provisioned (unless `floor`), then a Ping left waiting on
/// its connection, which is returned to be kept open.
async fn phone(
    server: SocketAddr,
    source: &str,
    i: usize,
    password: &str,
    floor: bool,
) -> TcpStream {
    let query = format!("Cmd=Ping&User={ADDRESS}&DeviceId=hold{source}x{i}&DeviceType=iPhone")
        .replace('.', "");
    let auth = basic(ADDRESS, password);
    loop {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        let mut stream = socket.connect(server).await.unwrap();
        let key = if floor {
            None
        } else {
            let provisioning = query.replace("Cmd=Ping", "Cmd=Provision");
            match provision(&mut stream, &provisioning, &auth).await {
                Some(key) => Some(key),
                None => {
                    // Asked to come back: a phone reconnects after a while.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            }
        };
        stream
            .write_all(&request(&query, &auth, key.as_deref(), &ping()))
            .await
            .unwrap();
        return stream;
    }
}

/// Client mode: `client <eas|floor> <server> <source ip> <passwords file>
/// <first line> <count>`; prints `ready` once every phone's Ping is
/// sent, then holds them until killed.
async fn client(args: &[String]) {
    let floor = args[0] == "floor";
    let server: SocketAddr = args[1].parse().unwrap();
    let source = args[2].clone();
    let passwords = std::fs::read_to_string(&args[3]).unwrap();
    let first: usize = args[4].parse().unwrap();
    let count: usize = args[5].parse().unwrap();
    let mine: Vec<String> = passwords
        .lines()
        .skip(first)
        .take(count)
        .map(str::to_owned)
        .collect();
    let held: Vec<TcpStream> = futures::stream::iter(mine.into_iter().enumerate())
        .map(|(i, password)| {
            let source = source.clone();
            async move { phone(server, &source, i, &password, floor).await }
        })
        .buffer_unordered(if floor { 64 } else { LOGINS_IN_FLIGHT })
        .collect()
        .await;
    println!("ready {}", held.len());
    std::future::pending::<()>().await;
}

/// Floor mode: `floor <addr>`: a bare axum server whose every request
/// waits for ever.
async fn floor(args: &[String]) {
    let listener = tokio::net::TcpListener::bind(&args[0]).await.unwrap();
    let app = axum::Router::new().fallback(std::future::pending::<&'static str>);
    println!("ready");
    axum::serve(listener, app).await.unwrap();
}

// ---------------------------------------------------------------- measuring

/// Sends the phones' Pings in steps (one client process each), reading
/// `pid`'s RSS after each.
async fn fill(
    server: SocketAddr,
    pid: u32,
    kind: &str,
    passwords: &str,
    phones: usize,
) -> (Vec<Child>, Vec<(f64, f64)>) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut points = vec![(0.0, rss_bytes(pid))];
    let mut clients = Vec::new();
    let per = phones / CLIENT_PROCESSES;
    for p in 0..CLIENT_PROCESSES {
        let source = format!("127.0.0.{}", p + 2);
        let mut child = helper(&[
            "client",
            kind,
            &server.to_string(),
            &source,
            passwords,
            &(p * per).to_string(),
            &per.to_string(),
        ]);
        wait_line(&mut child, "ready").await;
        clients.push(child);
        // The last Pings reach their hold after their request is sent.
        tokio::time::sleep(Duration::from_secs(2)).await;
        points.push((((p + 1) * per) as f64, rss_bytes(pid)));
        eprintln!("{kind}: {} held", (p + 1) * per);
    }
    (clients, points)
}

/// The account's app passwords, one per phone, written one per line.
async fn phones(binding: &mut BindingNode, path: &std::path::Path, count: usize) -> f64 {
    let tenant = binding.tenant().await.unwrap();
    let account = binding.forwarded(&tenant, ADDRESS).await.unwrap();
    let bus = kafka_bus().await.unwrap();
    let mut watch = TenantTopics::sms(&bus, &tenant.tenant_id).await.unwrap();
    let (msisdn, _) = bind_device(&mut binding.api.admin, &tenant, &account, true, &mut watch)
        .await
        .unwrap();
    let started = Instant::now();
    let admin = binding.api.admin.clone();
    let passwords: Vec<String> = futures::stream::iter(0..count)
        .map(|i| {
            let (mut admin, tenant, account, msisdn) = (
                admin.clone(),
                tenant.clone(),
                account.clone(),
                msisdn.clone(),
            );
            async move {
                admin
                    .create_app_password(authed(
                        &tenant.api_key,
                        pb::CreateAppPasswordRequest {
                            tenant_id: tenant.tenant_id.clone(),
                            account_id: account.account_id.clone(),
                            msisdn,
                            label: format!("phone {i}"),
                        },
                    ))
                    .await
                    .unwrap()
                    .into_inner()
                    .password
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    std::fs::write(path, passwords.join("\n")).unwrap();
    started.elapsed().as_secs_f64()
}

/// Starts the bench-built `pushmail-activesync` towards `binding` and
/// `session`; returns it and its phones' address once it is ready.
async fn start_front(binding: SocketAddr, session: SocketAddr) -> (Child, SocketAddr) {
    let exe = std::env::current_exe().unwrap();
    let front_exe = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("pushmail-activesync");
    let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let token = credential(Service::ActiveSync);
    let front = Command::new(&front_exe)
        .env_clear()
        .env("PUSHMAIL_ACTIVESYNC__SERVER__HTTP_ADDR", http.to_string())
        .env("PUSHMAIL_ACTIVESYNC__SERVER__ADMIN_ADDR", admin.to_string())
        .env(
            "PUSHMAIL_ACTIVESYNC__BINDING__ENDPOINT",
            format!("http://{binding}"),
        )
        .env("PUSHMAIL_ACTIVESYNC__BINDING__TOKEN", &token)
        .env(
            "PUSHMAIL_ACTIVESYNC__SESSION__ENDPOINT",
            format!("http://{session}"),
        )
        .env("PUSHMAIL_ACTIVESYNC__SESSION__TOKEN", &token)
        // Never called: a Ping needs no mailbox.
        .env(
            "PUSHMAIL_ACTIVESYNC__MAILBOX__ENDPOINT",
            "http://127.0.0.1:9",
        )
        .env("PUSHMAIL_ACTIVESYNC__MAILBOX__TOKEN", &token)
        .env(
            "PUSHMAIL_ACTIVESYNC__PUBLIC_URL",
            "https://eas.carrier.example/Microsoft-Server-ActiveSync",
        )
        .env("PUSHMAIL_ACTIVESYNC__TELEMETRY__LOG_LEVEL", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (build it with cargo build --profile bench -p pushmail-activesync)",
                front_exe.display()
            )
        });
    pushmail_integration_tests::wait_ready(admin, Duration::from_secs(30))
        .await
        .unwrap();
    (front, http)
}

// ---------------------------------------------------------------- main

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The floor runs as the front door does (one worker per core); the
    // phones on one thread each, as they compete with what is measured.
    let mut builder = match args.first().map(String::as_str) {
        Some("client") => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all().build().unwrap().block_on(run(args));
}

async fn run(args: Vec<String>) {
    match args.first().map(String::as_str) {
        Some("client") => return client(&args[1..]).await,
        Some("floor") => return floor(&args[1..]).await,
        _ => {}
    }
    let out = args.first().expect("report path").clone();
    let count: usize = args.get(1).map_or(PHONES, |n| n.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let passwords = dir.path().join("passwords");
    let passwords_arg = passwords.to_str().unwrap().to_owned();

    let mut binding = BindingNode::start().await.unwrap();
    let issuing = phones(&mut binding, &passwords, count).await;
    eprintln!("{count} app passwords issued in {issuing:.0} s");
    let sessions = Sessions::start().await;

    // 1. The floor: a bare axum server, the same requests left waiting.
    let floor_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut floor = helper(&["floor", &floor_addr.to_string()]);
    wait_line(&mut floor, "ready").await;
    let (clients, floor_points) = fill(
        floor_addr,
        floor.id().unwrap(),
        "floor",
        &passwords_arg,
        count,
    )
    .await;
    let floor_bytes = slope(&floor_points);
    eprintln!("floor: {floor_bytes:.0} B/held request {floor_points:?}");
    drop(clients);
    drop(floor);

    // 2. The front door, each phone provisioned and Pinging.
    let (front, http) = start_front(binding.addr, sessions.grpc).await;
    let started = Instant::now();
    let (clients, points) = fill(http, front.id().unwrap(), "eas", &passwords_arg, count).await;
    let filling = started.elapsed().as_secs_f64();
    let bytes = slope(&points);
    eprintln!("front door: {bytes:.0} B/held Ping {points:?}");

    let mut report = String::new();
    writeln!(report, "# ActiveSync front door: held Pings\n").unwrap();
    writeln!(
        report,
        "{count} phones from {CLIENT_PROCESSES} client processes on 127.0.0.2–{}, each an app password of one account's bound number, provisioned (both Provision steps, binding's argon2 check at the first login) and then holding a Ping on its Inbox with a {HEARTBEAT} s heartbeat over its kept-alive HTTP/1.1 connection; `pushmail-activesync` built with the bench profile in a process of its own (one worker thread per core, as it ships), plain HTTP on loopback, binding (PostgreSQL) and the session service (which holds each Ping's `Hold` stream; its side is in `session.md`) in the driver's process. RSS read from /proc after each {} phones (slope by least squares). The floor, in the same run: a bare axum server (the same runtime) whose handler never answers, holding the same Ping requests on the same connections. Issuing the {count} app passwords (argon2id each) took {issuing:.0} s; provisioning and pinging every phone {filling:.0} s.\n",
        CLIENT_PROCESSES + 1,
        count / CLIENT_PROCESSES,
    )
    .unwrap();
    report.push_str(pushmail_integration_tests::measure::TABLE_HEAD);
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    writeln!(
        report,
        "| user-space bytes per held Ping in the activesync front door (RSS slope: its connection, request and `Hold` stream) | {bytes:.0} | a bare axum server holding the same request | {floor_bytes:.0} | {:.2} | ≤ {GOAL_BYTES:.0}: {} |",
        bytes / floor_bytes,
        met(bytes <= GOAL_BYTES)
    )
    .unwrap();
    writeln!(
        report,
        "\nRSS points (phones, bytes): floor {floor_points:?}; front door {points:?}"
    )
    .unwrap();
    std::fs::write(&out, &report).unwrap();
    println!("{report}");
    drop(clients);
    drop(front);
    sessions.stop().await;
    binding.stop().await.unwrap();
}
