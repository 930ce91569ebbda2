//! Starting `pushmail standalone` as `make run` does, on free ports and a
//! fresh data directory, and reading what it prints.

#![allow(dead_code)] // each test binary uses its own part of the helpers

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub(crate) use pushmail_common::listen::free_port;

pub(crate) fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

/// The ports a platform listens on, chosen once so a restart keeps them.
#[derive(Debug, Clone)]
pub(crate) struct Ports {
    grpc: [u16; 4],
    admin: [u16; 8],
    pub(crate) http: u16,
    pub(crate) activesync: u16,
    pub(crate) devices: u16,
    pub(crate) smtp: u16,
    lmtp: u16,
    webhook: u16,
}

impl Ports {
    /// Every port free, so tests run side by side.
    pub(crate) fn free() -> Self {
        Self {
            grpc: [free_port(), free_port(), free_port(), free_port()],
            admin: [
                free_port(),
                free_port(),
                free_port(),
                free_port(),
                free_port(),
                free_port(),
                free_port(),
                free_port(),
            ],
            http: free_port(),
            activesync: free_port(),
            devices: free_port(),
            smtp: free_port(),
            lmtp: free_port(),
            webhook: free_port(),
        }
    }
}

/// A running `pushmail standalone`.
pub(crate) struct Platform {
    pub(crate) child: Child,
    pub(crate) admin_ports: Vec<u16>,
    pub(crate) smtp: u16,
    pub(crate) ports: Ports,
    pub(crate) data: tempfile::TempDir,
    /// The working directory it runs in: nothing may be written here.
    pub(crate) cwd: tempfile::TempDir,
}

/// Every port free, so tests run side by side; `demo` as `make run` sets it.
pub(crate) fn start(demo: bool) -> Platform {
    start_with(demo, &[])
}

/// [`start`] with more `PUSHMAIL_STANDALONE__<key>` settings (they win).
pub(crate) fn start_with(demo: bool, extra: &[(String, String)]) -> Platform {
    start_in(demo, extra, tempfile::tempdir().unwrap(), Ports::free())
}

/// [`start_with`] on the data directory `data` and `ports` (a restart
/// finds both as the last run left them).
pub(crate) fn start_in(
    demo: bool,
    extra: &[(String, String)],
    data: tempfile::TempDir,
    ports: Ports,
) -> Platform {
    let cwd = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_pushmail"));
    command
        .current_dir(cwd.path())
        .arg("standalone")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("PUSHMAIL_")) {
        command.env_remove(key);
    }
    let mut set = |key: &str, port: u16| {
        command.env(
            format!("PUSHMAIL_STANDALONE__{key}"),
            format!("127.0.0.1:{port}"),
        );
    };
    let grpc = ports.grpc;
    for (service, grpc_port) in ["BINDING", "SESSION", "TRANSCODE", "MAILBOX"]
        .iter()
        .zip(&grpc)
    {
        set(&format!("{service}__SERVER__GRPC_ADDR"), *grpc_port);
    }
    let services = [
        "BINDING",
        "SESSION",
        "TRANSCODE",
        "INGEST",
        "DISPATCH",
        "GATEWAY",
        "MAILBOX",
        "ACTIVESYNC",
    ];
    for (service, port) in services.iter().zip(ports.admin) {
        set(&format!("{service}__SERVER__ADMIN_ADDR"), port);
    }
    let http = ports.http;
    set("GATEWAY__SERVER__HTTP_ADDR", http);
    set("ACTIVESYNC__SERVER__HTTP_ADDR", ports.activesync);
    set("SESSION__DEVICES__ADDR", ports.devices);
    set("INGEST__SMTP__LISTEN", ports.smtp);
    set("INGEST__SMTP__LMTP_LISTEN", ports.lmtp);
    set("INGEST__WEBHOOK__LISTEN", ports.webhook);
    command
        .env("PUSHMAIL_STANDALONE__DATA_DIR", data.path())
        .env("PUSHMAIL_STANDALONE__DEMO", demo.to_string())
        .env(
            "PUSHMAIL_STANDALONE__DISPATCH__DELIVERY__PUBLIC_URL",
            format!("http://127.0.0.1:{http}"),
        )
        .env(
            "PUSHMAIL_STANDALONE__SESSION__DEVICES__ADVERTISE",
            format!("http://127.0.0.1:{}", grpc[1]),
        );
    let upstream = |port: u16| format!("http://127.0.0.1:{port}");
    command
        .env(
            "PUSHMAIL_STANDALONE__INGEST__BINDING__ENDPOINT",
            upstream(grpc[0]),
        )
        .env(
            "PUSHMAIL_STANDALONE__DISPATCH__BINDING__ENDPOINT",
            upstream(grpc[0]),
        )
        .env(
            "PUSHMAIL_STANDALONE__GATEWAY__BINDING__ENDPOINT",
            upstream(grpc[0]),
        )
        .env(
            "PUSHMAIL_STANDALONE__DISPATCH__SESSION__ENDPOINT",
            upstream(grpc[1]),
        )
        .env(
            "PUSHMAIL_STANDALONE__GATEWAY__TRANSCODE__ENDPOINT",
            upstream(grpc[2]),
        )
        .env(
            "PUSHMAIL_STANDALONE__GATEWAY__SESSION__ENDPOINT",
            upstream(grpc[1]),
        )
        .env(
            "PUSHMAIL_STANDALONE__GATEWAY__MAILBOX__ENDPOINT",
            upstream(grpc[3]),
        )
        .env(
            "PUSHMAIL_STANDALONE__MAILBOX__BINDING__ENDPOINT",
            upstream(grpc[0]),
        )
        .env(
            "PUSHMAIL_STANDALONE__ACTIVESYNC__BINDING__ENDPOINT",
            upstream(grpc[0]),
        );
    for (key, value) in extra {
        command.env(format!("PUSHMAIL_STANDALONE__{key}"), value);
    }
    let child = command.spawn().expect("start pushmail standalone");
    Platform {
        child,
        admin_ports: ports.admin.to_vec(),
        smtp: ports.smtp,
        ports,
        data,
        cwd,
    }
}

/// The lines a child prints, as they come.
pub(crate) fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Waits up to 60 s for a line containing `needle`; returns what was seen.
pub(crate) fn wait_for(
    rx: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    needle: &str,
    child: &mut Child,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen.iter().any(|l| l.contains(needle)) {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("no line with {needle:?}; printed: {seen:#?}");
            }
        }
    }
}
