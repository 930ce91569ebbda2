//! Redis losing everything while mail flows: every key of the platform
//! (outboxes, the directory, dispatch's claims and held mail, ingest's
//! marks, binding's cache) is lost twice, deleted as a flush would, or
//! with the platform's own Redis (no persistence) killed and started
//! again, while mail flows to three phones of
//! one account: one on the WebSocket, one long-polling, one that connected
//! once and is offline until the end. Each phone then holds every accepted mail once, or was told to
//! resync (its outbox was lost, so it syncs the mailbox) and holds every
//! mail accepted after the last loss: counted as accepted, shown, resynced
//! and lost, and lost must be 0.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pushmail_device::Event;
use pushmail_integration_tests::platform::{ProcessPlatform, Wiring};
use pushmail_integration_tests::topics::TenantTopics;
use pushmail_integration_tests::{kafka_bus, kafka_config, unique};
use tokio_util::sync::CancellationToken;

use crate::{binaries, mail};

/// Mails per second while Redis loses its data.
const RATE: u64 = 10;

/// What one phone saw: subjects in order (duplicates kept), and the
/// number of mails accepted when it was last told to resync.
#[derive(Debug, Default)]
struct Seen {
    subjects: Vec<String>,
    resynced_at: Option<usize>,
}

/// Runs a phone (`long_poll` or WebSocket) and records what it shows;
/// `accepted` dates each resync.
fn phone(
    device: pushmail_device::Device,
    long_poll: bool,
    accepted: Arc<Mutex<Vec<usize>>>,
    stop: CancellationToken,
) -> (Arc<Mutex<Seen>>, tokio::task::JoinHandle<()>) {
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let (tx, mut events) = tokio::sync::mpsc::channel(1_024);
    tokio::spawn({
        let stop = stop.clone();
        let mut device = device;
        async move {
            let _ = if long_poll {
                device.run_long_poll(tx, stop).await
            } else {
                device.run(tx, stop).await
            };
        }
    });
    let task = tokio::spawn({
        let seen = seen.clone();
        async move {
            while let Some(event) = events.recv().await {
                let mut seen = seen.lock().unwrap();
                match event {
                    Event::Notification(n) => seen.subjects.push(n.subject.unwrap_or_default()),
                    Event::Resync { .. } => {
                        seen.resynced_at = Some(accepted.lock().unwrap().len());
                    }
                    _ => {}
                }
            }
        }
    });
    (seen, task)
}

fn device_config(devices: std::net::SocketAddr, token: &str) -> pushmail_device::DeviceConfig {
    let mut config = pushmail_device::DeviceConfig::new(format!("ws://{devices}"), token);
    config.reconnect_initial = Duration::from_millis(200);
    config.reconnect_max = Duration::from_secs(2);
    config.answer_timeout = Duration::from_secs(5);
    config
}

/// Connects once and goes offline: the cursor it keeps (generation and
/// last ack), as a phone switched off holds it.
async fn connect_once(devices: std::net::SocketAddr, token: &str) -> (u64, u64) {
    let mut device = pushmail_device::Device::new(device_config(devices, token));
    let (tx, mut events) = tokio::sync::mpsc::channel(64);
    let stop = CancellationToken::new();
    let run = tokio::spawn({
        let stop = stop.clone();
        async move {
            let _ = device.run(tx, stop).await;
            device
        }
    });
    while let Some(event) = events.recv().await {
        if matches!(event, Event::Connected { .. }) {
            break;
        }
    }
    stop.cancel();
    let device = run.await.unwrap();
    (device.generation(), device.last_ack())
}

/// Deletes every key under `prefixes`: the platform's whole Redis state.
async fn lose_everything(prefixes: &[String]) -> usize {
    let config = pushmail_integration_tests::redis_config();
    let mut redis = pushmail_common::redis::connect(&config).await.unwrap();
    let mut deleted = 0;
    for prefix in prefixes {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut redis)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: usize = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut redis)
                .await
                .unwrap();
        }
        deleted += keys.len();
    }
    deleted
}

/// A Redis of the test's own, without persistence: a restart loses all.
struct PrivateRedis {
    port: u16,
    dir: tempfile::TempDir,
    process: std::process::Child,
}

impl PrivateRedis {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = pushmail_integration_tests::free_port();
        let process = Self::spawn(port, dir.path()).await;
        Self { port, dir, process }
    }

    async fn spawn(port: u16, dir: &std::path::Path) -> std::process::Child {
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (installed by scripts/provision.sh)");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        child
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// kill -9 and start again on the same port: every key is gone.
    /// Returns how many keys there were.
    async fn restart(&mut self) -> usize {
        let client = redis::Client::open(self.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let keys: usize = redis::cmd("DBSIZE")
            .query_async(&mut connection)
            .await
            .unwrap();
        self.process.kill().unwrap();
        self.process.wait().unwrap();
        self.process = Self::spawn(self.port, self.dir.path()).await;
        keys
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// How Redis loses its data.
enum Loss {
    /// Every key of the platform deleted (a FLUSHALL of the shared Redis
    /// would take other tests' keys with it).
    Keys,
    /// The platform's own Redis, without persistence, killed and started.
    Restart(PrivateRedis),
}

impl Loss {
    async fn lose(&mut self, prefixes: &[String]) -> usize {
        match self {
            Self::Keys => lose_everything(prefixes).await,
            Self::Restart(redis) => redis.restart().await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_losing_everything_while_mail_flows_leaves_no_phone_without_its_mail() {
    survives(Loss::Keys).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarting_without_persistence_leaves_no_phone_without_its_mail() {
    survives(Loss::Restart(PrivateRedis::start().await)).await;
}

async fn survives(mut loss: Loss) {
    let redis_url = match &loss {
        Loss::Keys => None,
        Loss::Restart(redis) => Some(redis.url()),
    };
    // A mail in flight when Redis dies is retried by dispatch into an
    // outbox that forgot its idempotency keys, so it is notified again in
    // the new generation; the phone acks it and, knowing the mail by its
    // URL, shows it once. Nothing may double on any phone.
    let mut platform = ProcessPlatform::start(
        &binaries(),
        &Wiring {
            kafka: kafka_config(),
            require_auth: false,
            otlp: None,
            // Each mail its own notification, so each can be counted.
            coalesce_ms: 0,
            tight_listeners: false,
            redis_url,
        },
    )
    .await
    .unwrap();
    let prefixes = [
        platform.redis_prefix.clone(),
        platform.ingest_config.marks.redis.key_prefix.clone(),
    ];
    let bus = kafka_bus().await.unwrap();
    let api = &mut platform.api;
    let tenant = api.tenant().await.unwrap();
    let mut watch = TenantTopics::sms(&bus, &tenant.tenant_id).await.unwrap();
    let address = format!("{}@corp.example", unique("redisloss"));
    let account = api.forwarded(&tenant, &address).await.unwrap();
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let (_, device) = api
            .device(&tenant, &account, true, &mut watch)
            .await
            .unwrap();
        tokens.push(device.device_token);
    }
    drop(watch);

    let accepted: Arc<Mutex<Vec<usize>>> = Arc::default();
    let stop_phones = CancellationToken::new();
    let devices = platform.devices;
    let fresh = |token: &str| pushmail_device::Device::new(device_config(devices, token));
    let mut phones = vec![
        (
            "websocket",
            phone(
                fresh(&tokens[0]),
                false,
                accepted.clone(),
                stop_phones.clone(),
            ),
        ),
        (
            "long poll",
            phone(
                fresh(&tokens[1]),
                true,
                accepted.clone(),
                stop_phones.clone(),
            ),
        ),
    ];
    let (generation, last_ack) = connect_once(devices, &tokens[2]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let stop_sending = CancellationToken::new();
    let sender = tokio::spawn({
        let (accepted, stop) = (accepted.clone(), stop_sending.clone());
        let (smtp, to) = (platform.smtp, address.clone());
        async move {
            let mut tick = tokio::time::interval(Duration::from_millis(1_000 / RATE));
            let mut n = 0;
            while !stop.is_cancelled() {
                tick.tick().await;
                let raw = mail(&to, &format!("redis mail {n}"));
                if pushmail_integration_tests::smtp::send(smtp, "boss@example.net", &to, &raw)
                    .await
                    .is_ok()
                {
                    accepted.lock().unwrap().push(n);
                }
                n += 1;
            }
            n
        }
    });
    let flow = || tokio::time::sleep(Duration::from_secs(4));
    flow().await;
    let first = loss.lose(&prefixes).await;
    flow().await;
    let second = loss.lose(&prefixes).await;
    let after_last_loss = accepted.lock().unwrap().len();
    flow().await;
    stop_sending.cancel();
    let offered = sender.await.unwrap();
    // The offline phone comes online only now.
    let offline =
        pushmail_device::Device::resuming(device_config(devices, &tokens[2]), generation, last_ack);
    phones.push((
        "offline",
        phone(offline, false, accepted.clone(), stop_phones.clone()),
    ));

    let accepted = accepted.lock().unwrap().clone();
    let subject = |n: &usize| format!("redis mail {n}");
    // What a phone must show: everything, or after a resync what was
    // accepted after the last loss (what came before it is the mailbox
    // sync's, which the resync asked for).
    let owed = |seen: &Seen| -> BTreeSet<String> {
        let from = if seen.resynced_at.is_some() {
            after_last_loss
        } else {
            0
        };
        accepted[from..].iter().map(subject).collect()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let complete = phones.iter().all(|(_, (seen, _))| {
            let seen = seen.lock().unwrap();
            let shown: BTreeSet<String> = seen.subjects.iter().cloned().collect();
            owed(&seen).is_subset(&shown)
        });
        if complete || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_phones.cancel();

    let mut report = Vec::new();
    let mut failures = Vec::new();
    for (name, (seen, task)) in &phones {
        task.abort();
        let seen = seen.lock().unwrap();
        let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
        for s in &seen.subjects {
            *counts.entry(s).or_default() += 1;
        }
        let owed = owed(&seen);
        let lost: Vec<&String> = owed.iter().filter(|s| !counts.contains_key(s)).collect();
        let doubled: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
        let resynced = accepted.len() - owed.len();
        report.push(format!(
            "{name}: accepted {}, shown {}, resynced {resynced}, lost {}, doubled {}",
            accepted.len(),
            counts.len(),
            lost.len(),
            doubled.len()
        ));
        if !lost.is_empty() || !doubled.is_empty() {
            failures.push(format!("{name}: lost {lost:?}, doubled {doubled:?}"));
        }
    }
    eprintln!(
        "redis loss: {offered} mails offered, {} accepted, keys deleted {first} then {second}; {}",
        accepted.len(),
        report.join("; ")
    );
    assert!(
        failures.is_empty(),
        "{}\n{}\n{}",
        failures.join("\n"),
        report.join("\n"),
        platform.logs()
    );
    assert!(
        accepted.len() > 50,
        "too little mail got through: {}",
        accepted.len()
    );
    platform.stop().await.unwrap();
}
