//! `pushmail standalone` as a newcomer runs it: every service ready within
//! 10 s with no external server, Ctrl-C (SIGINT) stops it cleanly within
//! the grace period, and `make run`'s demo device gets a mail sent over
//! SMTP with its attachment's preview.

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
    smtp: u16,
    _data: tempfile::TempDir,
}

/// Every port free, so tests run side by side; `demo` as `make run` sets it.
fn start(demo: bool) -> Platform {
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
    let child = command.spawn().expect("start pushmail standalone");
    Platform {
        child,
        admin_ports,
        smtp,
        _data: data,
    }
}

#[test]
fn standalone_is_ready_within_ten_seconds_and_stops_on_ctrl_c() {
    let mut platform = start(false);
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

/// The lines the platform prints, as they come.
fn lines(platform: &mut Platform) -> mpsc::Receiver<String> {
    let stdout = platform.child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Waits up to 60 s for a line containing `needle`; returns what was seen.
fn wait_for(rx: &mpsc::Receiver<String>, seen: &mut Vec<String>, needle: &str, child: &mut Child) {
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

#[test]
fn the_demo_device_gets_a_mail_sent_over_smtp_with_its_preview() {
    let mut platform = start(true);
    let rx = lines(&mut platform);
    let mut seen = Vec::new();
    wait_for(&rx, &mut seen, "device: connected", &mut platform.child);

    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("photo.jpg");
    let made = Command::new("/usr/bin/convert-im6.q16")
        .args(["-size", "1200x900", "gradient:orange-purple"])
        .arg(&photo)
        .status()
        .expect("ImageMagick (scripts/provision.sh installs it)");
    assert!(made.success());
    let sent = Command::new("swaks")
        .args(["--server", &format!("127.0.0.1:{}", platform.smtp)])
        .args([
            "--to",
            "demo@pushmail.local",
            "--header",
            "Subject: standalone demo",
        ])
        .arg("--attach")
        .arg(format!("@{}", photo.display()))
        .output()
        .expect("swaks (scripts/provision.sh installs it)");
    let transcript = String::from_utf8_lossy(&sent.stdout);
    assert!(
        sent.status.success() && transcript.contains("250 2.0.0"),
        "{transcript}"
    );

    wait_for(
        &rx,
        &mut seen,
        "subject: standalone demo",
        &mut platform.child,
    );
    wait_for(&rx, &mut seen, "preview: image/jpeg", &mut platform.child);
    assert!(seen.iter().any(|l| l.contains("photo.jpg")), "{seen:#?}");
    assert!(
        seen.iter().any(|l| l.contains("fetched summary")),
        "{seen:#?}"
    );

    let _ = Command::new("kill")
        .args(["-INT", &platform.child.id().to_string()])
        .status();
    let exit = platform.child.wait().unwrap();
    assert!(exit.success(), "clean exit, got {exit}");
    // Binding stops last: dispatch's final traffic flush still reaches it.
    seen.extend(rx.try_iter());
    assert!(
        !seen.iter().any(|l| l.contains("not recorded")),
        "{seen:#?}"
    );
}

#[test]
fn the_load_generator_refuses_arguments_no_run_can_use() {
    for args in [
        &["--rate", "0"][..],
        &["--devices", "0"],
        &["--connections", "0"],
        &["--sources", "127.0.0.2,nonsense"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_pushmail"))
            .arg("loadgen")
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("must be positive") || stderr.contains("invalid IP address"),
            "{args:?}: {stderr}"
        );
    }
}
