//! `pushmail standalone` as a newcomer runs it: every service ready within
//! 10 s with no external server, and Ctrl-C (SIGINT) stops it cleanly
//! within the grace period.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

struct Platform {
    child: Child,
    admin_ports: Vec<u16>,
    _data: tempfile::TempDir,
}

fn start() -> Platform {
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
    set("GATEWAY__SERVER__HTTP_ADDR", free_port());
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
    let child = command.spawn().expect("start pushmail standalone");
    Platform {
        child,
        admin_ports,
        _data: data,
    }
}

#[test]
fn standalone_is_ready_within_ten_seconds_and_stops_on_ctrl_c() {
    let mut platform = start();
    let started = Instant::now();
    let stdout = platform.child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut banner = Vec::new();
    loop {
        let line = rx.recv_timeout(Duration::from_secs(10).saturating_sub(started.elapsed()));
        match line {
            Ok(line) if line.contains("Ctrl-C") => break,
            Ok(line) => banner.push(line),
            Err(err) => {
                let _ = platform.child.kill();
                panic!("not ready within 10 s ({err}); printed so far: {banner:?}");
            }
        }
    }
    assert!(banner.iter().any(|l| l.contains("gateway")), "{banner:?}");
    for port in &platform.admin_ports {
        assert_eq!(
            http_status(*port, "/readyz"),
            Some(200),
            "admin port {port}"
        );
    }

    let stop_sent = Instant::now();
    let status = Command::new("kill")
        .args(["-INT", &platform.child.id().to_string()])
        .status()
        .expect("send SIGINT");
    assert!(status.success());
    let exit = loop {
        if let Some(exit) = platform.child.try_wait().unwrap() {
            break exit;
        }
        if stop_sent.elapsed() > Duration::from_secs(10) {
            let _ = platform.child.kill();
            panic!("did not stop within the 10 s grace period");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "clean exit, got {exit}");
    eprintln!(
        "standalone: ready after {:?}, stopped {:?} after SIGINT",
        stop_sent.duration_since(started),
        stop_sent.elapsed()
    );
}
