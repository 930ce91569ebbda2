//! The binary's config surface: `--dump-config`, one-line errors, exit codes.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::process::{Command, Output};

/// Test-only secrets for `[security]`.
const KEYS: [(&str, &str); 5] = [
    (
        "PUSHMAIL_BINDING__SECURITY__CREDENTIALS_KEY",
        "1111111111111111111111111111111111111111111111111111111111111111",
    ),
    (
        "PUSHMAIL_BINDING__SECURITY__OTP_KEY",
        "2222222222222222222222222222222222222222222222222222222222222222",
    ),
    (
        "PUSHMAIL_BINDING__SECURITY__DEVICE_TOKEN_SEED",
        "3333333333333333333333333333333333333333333333333333333333333333",
    ),
    (
        "PUSHMAIL_BINDING__SECURITY__SERVICE_KEYS",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    ),
    (
        "PUSHMAIL_BINDING__SECURITY__OPERATOR_TOKEN",
        "5555555555555555555555555555555555555555555555555555555555555555",
    ),
];

fn binding(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pushmail-binding"));
    command.args(args);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("PUSHMAIL_")) {
        command.env_remove(key);
    }
    command
        .envs(env.iter().copied())
        .output()
        .expect("run pushmail-binding")
}

#[test]
fn dump_config_prints_the_effective_config_with_secrets_masked() {
    let out = binding(
        &["--dump-config"],
        &[(
            "PUSHMAIL_BINDING__DATABASE__URL",
            "postgres://app:s3cret-pw@db:5432/pushmail",
        )],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for section in [
        "[server]",
        "[telemetry]",
        "[shutdown]",
        "[bus.kafka]",
        "[database]",
    ] {
        assert!(text.contains(section), "{section} missing from:\n{text}");
    }
    assert!(
        text.contains("postgres://app:<redacted>@db:5432/pushmail"),
        "{text}"
    );
    assert!(!text.contains("s3cret-pw"), "secret leaked:\n{text}");
}

#[test]
fn file_layer_is_read_and_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("binding.toml");
    std::fs::write(
        &path,
        "[server]\ngrpc_addr = \"127.0.0.1:1111\"\nadmin_addr = \"127.0.0.1:2222\"\n",
    )
    .unwrap();
    let out = binding(
        &["--config", path.to_str().unwrap(), "--dump-config"],
        &[("PUSHMAIL_BINDING__SERVER__ADMIN_ADDR", "127.0.0.1:3333")],
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("grpc_addr = \"127.0.0.1:1111\""), "{text}");
    assert!(text.contains("admin_addr = \"127.0.0.1:3333\""), "{text}");
}

fn assert_one_line_error(out: &Output, key: &str) {
    assert_eq!(out.status.code(), Some(2), "exit code");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(key), "names {key}: {stderr}");
}

#[test]
fn unknown_key_fails_with_one_line_naming_it() {
    let out = binding(
        &["--dump-config"],
        &[("PUSHMAIL_BINDING__SERVER__GRPC_ADR", "x")],
    );
    assert_one_line_error(&out, "server.grpc_adr");
}

#[test]
fn bad_value_fails_with_one_line_naming_the_key() {
    let out = binding(&[], &[("PUSHMAIL_BINDING__SERVER__GRPC_ADDR", "nowhere")]);
    assert_one_line_error(&out, "server.grpc_addr");
    let out = binding(&[], &[("PUSHMAIL_BINDING__DATABASE__URL", "mysql://x")]);
    assert_one_line_error(&out, "database.url");
    let out = binding(&[], &[("PUSHMAIL_BINDING__BUS__KIND", "carrier-pigeon")]);
    assert_one_line_error(&out, "bus.kind");
}

#[test]
fn bad_config_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, "[server\n").unwrap();
    let out = binding(&["--config", path.to_str().unwrap()], &[]);
    assert_one_line_error(&out, "broken.toml");
}

#[test]
fn version_is_printed() {
    let out = binding(&["--version"], &[]);
    assert!(out.status.success());
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains(env!("CARGO_PKG_VERSION"))
    );
}

use pushmail_common::listen::free_port;

fn readyz(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.write_all(b"GET /readyz HTTP/1.0\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

#[test]
fn binary_reports_ready_and_exits_cleanly_on_sigterm() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let admin = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_pushmail-binding"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("PUSHMAIL_")) {
        command.env_remove(key);
    }
    let mut child = command
        .env(
            "PUSHMAIL_BINDING__SERVER__GRPC_ADDR",
            format!("127.0.0.1:{}", free_port()),
        )
        .env(
            "PUSHMAIL_BINDING__SERVER__ADMIN_ADDR",
            format!("127.0.0.1:{admin}"),
        )
        .env("PUSHMAIL_BINDING__BUS__KIND", "memory")
        .env("PUSHMAIL_BINDING__CACHE__SHARED__KIND", "memory")
        .env(
            "PUSHMAIL_BINDING__DATABASE__URL",
            format!("sqlite://{}/b.db?mode=rwc", dir.path().display()),
        )
        .env("PUSHMAIL_BINDING__SHUTDOWN__GRACE_SECONDS", "5")
        .envs(KEYS)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !readyz(admin)
        .is_some_and(|r| r.starts_with("HTTP/1.0 200") || r.starts_with("HTTP/1.1 200"))
    {
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("not ready within 10 s: {:?}", readyz(admin));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let stop = Instant::now();
    loop {
        if let Some(exit) = child.try_wait().unwrap() {
            assert!(exit.success(), "clean exit after SIGTERM, got {exit}");
            break;
        }
        assert!(
            stop.elapsed() < Duration::from_secs(5),
            "did not stop within the grace period"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn unreachable_database_fails_start_with_a_json_log_line_naming_it() {
    let closed = free_port();
    let out = binding(
        &[],
        &[
            ("PUSHMAIL_BINDING__TELEMETRY__LOG_FORMAT", "json"),
            (
                "PUSHMAIL_BINDING__SERVER__GRPC_ADDR",
                &format!("127.0.0.1:{}", free_port()),
            ),
            (
                "PUSHMAIL_BINDING__SERVER__ADMIN_ADDR",
                &format!("127.0.0.1:{}", free_port()),
            ),
            ("PUSHMAIL_BINDING__BUS__KIND", "memory"),
            (
                "PUSHMAIL_BINDING__DATABASE__URL",
                &format!("postgres://app:pw@127.0.0.1:{closed}/pushmail"),
            ),
            ("PUSHMAIL_BINDING__DATABASE__ACQUIRE_TIMEOUT_MS", "1000"),
            KEYS[0],
            KEYS[1],
            KEYS[2],
            KEYS[3],
            KEYS[4],
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let failure = lines
        .iter()
        .find(|l| l["message"] == "service failed")
        .unwrap_or_else(|| panic!("no failure line in {stdout}"));
    assert_eq!(failure["level"], "ERROR");
    let error = failure["error"].as_str().unwrap();
    assert!(error.contains(&format!("127.0.0.1:{closed}")), "{error}");
    assert!(!stdout.contains(":pw@"), "password leaked: {stdout}");
}

#[test]
fn missing_secret_stops_start_naming_it_and_dump_masks_secrets() {
    let out = binding(&[], &[("PUSHMAIL_BINDING__BUS__KIND", "memory")]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("security.credentials_key"), "{stdout}");
    let out = binding(&["--dump-config"], &KEYS);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("[security]"), "{text}");
    assert!(!text.contains("1111111111"), "secret leaked: {text}");
    let out = binding(&[], &[("PUSHMAIL_BINDING__SECURITY__OTP_KEY", "not-hex")]);
    assert_one_line_error(&out, "security.otp_key");
}
