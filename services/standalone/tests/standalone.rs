//! `pushmail standalone` as a newcomer runs it: every service ready within
//! 10 s with no external server, Ctrl-C (SIGINT) stops it cleanly within
//! the grace period, and `make run`'s demo device gets a mail sent over
//! SMTP with its attachment's preview (a second phone on its number lists
//! it from the platform's own store and reads it, and the demo phone is
//! told its inbox changed); keys it would ignore stop the start
//! (exit code 2, named) and `--dump-config` shows none of them, while the
//! per-service PostgreSQL and Redis settings are honoured.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

mod support;

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{http_status, lines, start, start_with, wait_for};

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
    // The ActiveSync front door answers on its own port.
    let options = {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", platform.ports.activesync))
            .expect("the activesync port");
        stream
            .write_all(b"OPTIONS /Microsoft-Server-ActiveSync HTTP/1.0\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer.to_ascii_lowercase()
    };
    assert!(
        options.contains("ms-asprotocolversions: 14.1,16.0,16.1"),
        "{options}"
    );

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

#[test]
fn the_demo_device_gets_a_mail_sent_over_smtp_with_its_preview() {
    let mut platform = start(true);
    let rx = lines(&mut platform.child);
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
    // As the README writes it (Debian's swaks 20201014 names an `@file`
    // part after the argument and types it application/octet-stream
    // unless told otherwise).
    let sent = Command::new("swaks")
        .current_dir(dir.path())
        .args(["--server", &format!("127.0.0.1:{}", platform.smtp)])
        .args([
            "--to",
            "demo@pushmail.local",
            "--header",
            "Subject: standalone demo",
        ])
        .args(["--attach-type", "image/jpeg", "--attach-name", "photo.jpg"])
        .args(["--attach", "@photo.jpg"])
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
    assert!(
        seen.iter()
            .any(|l| l.contains("📎 photo.jpg (image/jpeg, ")),
        "{seen:#?}"
    );
    // No SMS centre: the demo phone's code was printed, and the guide
    // says what to sign in with.
    assert!(
        seen.iter()
            .any(|l| l.starts_with("sms → +8613800000001 [verification code]")),
        "{seen:#?}"
    );
    assert!(
        seen.iter()
            .any(|l| l.contains("sign in with the demo tenant's key: pmk_")),
        "{seen:#?}"
    );
    assert!(
        seen.iter().any(|l| l.contains("fetched summary")),
        "{seen:#?}"
    );
    // The demo account's mail is kept by the platform itself: a second
    // phone on its number lists it.
    let second = demo_inbox(&platform);
    let line = second
        .listed
        .lines()
        .find(|l| l.starts_with('*') && l.contains("standalone demo"))
        .unwrap_or_else(|| panic!("{}", second.listed));
    // It reads it there (so marks it read): the demo phone is told to
    // sync its inbox, through dispatch and session like any push.
    let id = line.split_whitespace().nth(1).unwrap();
    let read = second.run(&["read", "--account", &second.account, id]);
    assert!(read.status.success(), "{read:?}");
    wait_for(
        &rx,
        &mut seen,
        "changed on another phone (flags)",
        &mut platform.child,
    );
    // Everything it wrote is under its data directory, none in the
    // directory it was started from.
    let written: Vec<_> = std::fs::read_dir(platform.cwd.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(written.is_empty(), "written outside data_dir: {written:?}");
    for kept in [
        "bus.db",
        "binding.db",
        "outbox.db",
        "dispatch.db",
        "marks.db",
        "blobs",
        "secrets",
        "demo.json",
    ] {
        assert!(
            platform.data.path().join(kept).exists(),
            "{kept} is not in data_dir"
        );
    }

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

/// A second phone on the demo number, and what its `ls` listed.
struct Second {
    gateway: String,
    account: String,
    token: String,
    listed: String,
}

impl Second {
    /// `pushmail device … <args>` as this phone.
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_pushmail"))
            .args(["device", "--gateway", &self.gateway, "--token", &self.token])
            .args(args)
            .env_remove("PUSHMAIL_DEVICE_TOKEN")
            .output()
            .unwrap()
    }
}

/// `pushmail device ls` on the demo account, as a phone registered on
/// the demo number with the demo tenant's key (from `demo.json`).
fn demo_inbox(platform: &support::Platform) -> Second {
    use pushmail_integration_tests::http;
    let demo: serde_json::Value =
        serde_json::from_slice(&std::fs::read(platform.data.path().join("demo.json")).unwrap())
            .unwrap();
    let (key, tenant) = (
        demo["api_key"].as_str().unwrap(),
        demo["tenant_id"].as_str().unwrap(),
    );
    let gateway: std::net::SocketAddr = ([127, 0, 0, 1], platform.ports.http).into();
    let auth = format!("Bearer {key}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (account, token) = runtime.block_on(async {
        let accounts = http::call(
            gateway,
            "GET",
            &format!("/api/v1/tenants/{tenant}/accounts"),
            &headers[..1],
            b"",
        )
        .await
        .unwrap()
        .json();
        let account = accounts["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["address"] == "demo@pushmail.local")
            .unwrap_or_else(|| panic!("the demo account in {accounts}"))["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let body = serde_json::json!({"msisdn": "+8613800000001", "label": "second phone"});
        let registered = http::call(
            gateway,
            "POST",
            &format!("/api/v1/tenants/{tenant}/devices"),
            &headers,
            body.to_string().as_bytes(),
        )
        .await
        .unwrap();
        assert_eq!(registered.status, 201, "{}", registered.text());
        let token = registered.json()["token"].as_str().unwrap().to_owned();
        (account, token)
    });
    let mut second = Second {
        gateway: format!("http://{gateway}"),
        account,
        token,
        listed: String::new(),
    };
    // Filed from the bus a moment after the push went out.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let output = second.run(&["ls", "--account", &second.account]);
        second.listed = String::from_utf8_lossy(&output.stdout).into_owned();
        if (output.status.success() && second.listed.contains("standalone demo"))
            || Instant::now() > deadline
        {
            assert!(
                output.status.success(),
                "{}\n{}",
                second.listed,
                String::from_utf8_lossy(&output.stderr)
            );
            return second;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
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

/// `pushmail standalone` with `env` set, its exit code and stderr.
fn refused_with(env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String) {
    let data = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_pushmail"));
    command.arg("standalone").args(args);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("PUSHMAIL_")) {
        command.env_remove(key);
    }
    command.env("PUSHMAIL_STANDALONE__DATA_DIR", data.path());
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_key_standalone_would_ignore_stops_the_start_with_exit_2_naming_it() {
    for (variable, value, key) in [
        (
            "PUSHMAIL_STANDALONE__BINDING__BUS__KIND",
            "kafka",
            "binding.bus.kind",
        ),
        (
            "PUSHMAIL_STANDALONE__DISPATCH__BUS__KAFKA__BROKERS",
            "kafka:9092",
            "dispatch.bus.kafka.brokers",
        ),
        (
            "PUSHMAIL_STANDALONE__DISPATCH__OUTBOX__KIND",
            "redis",
            "dispatch.outbox.kind",
        ),
        (
            "PUSHMAIL_STANDALONE__SESSION__RUNTIME__WORKER_THREADS",
            "4",
            "session.runtime.worker_threads",
        ),
        (
            "PUSHMAIL_STANDALONE__GATEWAY__TELEMETRY__LOG_LEVEL",
            "debug",
            "gateway.telemetry.log_level",
        ),
        (
            "PUSHMAIL_STANDALONE__INGEST__BINDING__TOKEN",
            "pms1.forged",
            "ingest.binding.token",
        ),
    ] {
        let (code, stderr) = refused_with(&[(variable, value)], &[]);
        assert_eq!(code, Some(2), "{variable}: {stderr}");
        assert!(
            stderr.contains(&format!("key `{key}`")) && stderr.contains(variable),
            "{variable}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    }
    // The same from a config file; a key standalone honours starts nothing
    // here (--dump-config) and passes.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("standalone.toml");
    std::fs::write(&file, "[session.bus]\nkind = \"kafka\"\n").unwrap();
    let (code, stderr) = refused_with(&[], &["--config", file.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("key `session.bus.kind`"), "{stderr}");
    let (code, stderr) = refused_with(
        &[("PUSHMAIL_STANDALONE__SESSION__OUTBOX__MAX_PER_DEVICE", "50")],
        &["--dump-config"],
    );
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn dump_config_shows_no_key_that_does_nothing_and_names_the_refused_ones() {
    let output = Command::new(env!("CARGO_BIN_EXE_pushmail"))
        .args(["standalone", "--dump-config"])
        .env_remove("PUSHMAIL_CONFIG")
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let (header, body) = text.split_once("\n\n").unwrap();
    let dump: toml::Value = toml::from_str(body).unwrap();
    for service in [
        "binding",
        "session",
        "transcode",
        "ingest",
        "dispatch",
        "gateway",
        "mailbox",
    ] {
        for section in ["bus", "telemetry", "shutdown"] {
            assert!(
                dump[service].get(section).is_none(),
                "{service}.{section} is shown"
            );
        }
    }
    for (service, section) in [
        ("dispatch", "outbox"),
        ("session", "runtime"),
        ("session", "tokens"),
    ] {
        assert!(dump[service].get(section).is_none(), "{service}.{section}");
        assert!(header.contains(&format!("{service}.{section}")), "{header}");
    }
    // What standalone honours is there: the database, Redis-capable stores.
    assert!(dump["binding"]["database"]["url"].is_str());
    assert!(dump["session"]["directory"]["kind"].is_str());
    assert!(dump["binding"]["sms_outbox"]["enabled"].as_bool().unwrap());
}

/// Runs `program` with `args`; its stdout.
fn output_of(program: &str, args: &[&str]) -> String {
    let output = Command::new(program).args(args).output().unwrap();
    assert!(output.status.success(), "{program} {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn standalone_honours_postgresql_and_redis_for_the_services_that_take_them() {
    let database = pushmail_integration_tests::TestDatabase::create()
        .await
        .unwrap();
    let redis = pushmail_integration_tests::redis_config();
    let prefix = redis.key_prefix.clone();
    let mut extra = vec![("BINDING__DATABASE__URL".to_owned(), database.url.clone())];
    for store in [
        "SESSION__DIRECTORY",
        "SESSION__OUTBOX",
        "DISPATCH__STATE",
        "INGEST__MARKS",
        "BINDING__CACHE__SHARED",
    ] {
        extra.push((format!("{store}__KIND"), "redis".to_owned()));
        extra.push((
            format!("{store}__REDIS__URL"),
            redis.url.expose().to_owned(),
        ));
        extra.push((format!("{store}__REDIS__KEY_PREFIX"), prefix.clone()));
        // The test machine's Redis keeps nothing on disk on purpose; the
        // durability refusal itself is proven in tests/redis_durability.rs.
        extra.push((format!("{store}__REDIS__ALLOW_VOLATILE"), "true".to_owned()));
    }
    let mut platform = start_with(true, &extra);
    let rx = lines(&mut platform.child);
    let mut seen = Vec::new();
    wait_for(&rx, &mut seen, "device: connected", &mut platform.child);
    let sent = Command::new("swaks")
        .args(["--server", &format!("127.0.0.1:{}", platform.smtp)])
        .args([
            "--to",
            "demo@pushmail.local",
            "--header",
            "Subject: on redis",
        ])
        .output()
        .unwrap();
    assert!(sent.status.success(), "{sent:?}");
    wait_for(&rx, &mut seen, "subject: on redis", &mut platform.child);

    // The demo's rows are in PostgreSQL; the directory, outbox, state and
    // marks are under the Redis prefix.
    let tenants = output_of(
        "psql",
        &[&database.url, "-tAc", "SELECT count(*) FROM tenants"],
    );
    assert_eq!(tenants.trim(), "1");
    let keys = output_of(
        "redis-cli",
        &[
            "-u",
            redis.url.expose(),
            "--scan",
            "--pattern",
            &format!("{prefix}*"),
        ],
    );
    assert!(keys.lines().count() >= 2, "keys under {prefix}: {keys}");

    let _ = Command::new("kill")
        .args(["-INT", &platform.child.id().to_string()])
        .status();
    assert!(platform.child.wait().unwrap().success());
    database.drop_database().await.unwrap();
}
