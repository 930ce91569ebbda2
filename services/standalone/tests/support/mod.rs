//! Starting `pushmail standalone` as `make run` does, on free ports and a
//! fresh data directory, and reading what it prints.

#![allow(dead_code)] // each test binary uses its own part of the helpers

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

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

/// A running `pushmail standalone`.
pub(crate) struct Platform {
    pub(crate) child: Child,
    pub(crate) admin_ports: Vec<u16>,
    pub(crate) smtp: u16,
    pub(crate) data: tempfile::TempDir,
}

/// Every port free, so tests run side by side; `demo` as `make run` sets it.
pub(crate) fn start(demo: bool) -> Platform {
    start_with(demo, &[])
}

/// [`start`] with more `PUSHMAIL_STANDALONE__<key>` settings (they win).
pub(crate) fn start_with(demo: bool, extra: &[(String, String)]) -> Platform {
    let data = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_pushmail"));
    command
        .arg("standalone")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("PUSHMAIL_")) {
        command.env_remove(key);
    }
    let mut admin_ports = Vec::new();
    let mut set = |key: &str, port: u16| {
        command.env(
            format!("PUSHMAIL_STANDALONE__{key}"),
            format!("127.0.0.1:{port}"),
        );
    };
    let grpc: Vec<u16> = (0..3).map(|_| free_port()).collect();
    for (service, grpc_port) in ["BINDING", "SESSION", "TRANSCODE"].iter().zip(&grpc) {
        set(&format!("{service}__SERVER__GRPC_ADDR"), *grpc_port);
    }
    for service in [
        "BINDING",
        "SESSION",
        "TRANSCODE",
        "INGEST",
        "DISPATCH",
        "GATEWAY",
    ] {
        let port = free_port();
        admin_ports.push(port);
        set(&format!("{service}__SERVER__ADMIN_ADDR"), port);
    }
    let http = free_port();
    set("GATEWAY__SERVER__HTTP_ADDR", http);
    set("SESSION__DEVICES__ADDR", free_port());
    let smtp = free_port();
    set("INGEST__SMTP__LISTEN", smtp);
    set("INGEST__SMTP__LMTP_LISTEN", free_port());
    set("INGEST__WEBHOOK__LISTEN", free_port());
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
            "PUSHMAIL_STANDALONE__BINDING__DATABASE__URL",
            format!("sqlite://{}/binding.db?mode=rwc", data.path().display()),
        )
        .env(
            "PUSHMAIL_STANDALONE__INGEST__BLOB__DIR",
            data.path().join("blobs"),
        )
        .env(
            "PUSHMAIL_STANDALONE__TRANSCODE__BLOB__DIR",
            data.path().join("blobs"),
        );
    for (key, value) in extra {
        command.env(format!("PUSHMAIL_STANDALONE__{key}"), value);
    }
    let child = command.spawn().expect("start pushmail standalone");
    Platform {
        child,
        admin_ports,
        smtp,
        data,
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
