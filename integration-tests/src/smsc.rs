//! An SMS centre for tests: `integration-tests/smsc/smsc.pl`, on Debian's
//! Net::SMPP (`libnet-smpp-perl`), so the SMPP on the wire is read and
//! written by code that shares nothing with the connector's (the smpp34
//! crate). It runs as a child process on an ephemeral port, is scripted
//! to refuse or throttle submits and to send receipts and unbinds, and
//! reports what it received as JSON lines (the script's header lists them).

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{Notify, oneshot};

/// The SMS centre's script, next to this crate's manifest.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/smsc/smsc.pl");

/// A submit the SMS centre accepted.
#[derive(Debug, Clone, Deserialize)]
pub struct Accepted {
    pub message_id: String,
    pub destination: String,
    pub esm_class: u8,
    pub data_coding: u8,
    pub registered_delivery: u8,
    pub validity_period: String,
    /// The user data, header included.
    #[serde(deserialize_with = "hex")]
    pub short_message: Vec<u8>,
}

/// Changes to what the SMS centre does next; `None` leaves a setting as it is.
#[derive(Debug, Default, Serialize)]
pub struct Script {
    /// Binds with another password are refused (ESME_RINVPASWD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Destinations ending so are refused with ESME_RINVDSTADR.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refuse_suffix: Option<String>,
    /// The next this many submits are answered ESME_RTHROTTLED.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_next: Option<u32>,
    /// Submits of a concatenated part 2 answered ESME_RMSGQFUL, this many times.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_full_on_part_two: Option<u32>,
}

/// What the SMS centre saw.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Submits accepted, in order.
    pub accepted: Vec<Accepted>,
    /// The statuses submits were refused with, in order.
    pub refused: Vec<u32>,
    /// Binds accepted.
    pub binds: u32,
    /// Why each connection ended.
    pub closed: Vec<String>,
}

/// One line of the SMS centre's stdout that is not an answer to a command.
#[derive(Debug, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Event {
    Listening { port: u16 },
    Bind { accepted: bool },
    Submit(Submitted),
    Closed { why: String },
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Submitted {
    Accepted(Accepted),
    Refused { status: u32 },
}

#[derive(Default)]
struct Shared {
    seen: Mutex<Seen>,
    changed: Notify,
    answers: Mutex<HashMap<u64, oneshot::Sender<Value>>>,
}

/// A running SMS centre on a loopback port.
pub struct Smsc {
    child: Child,
    stdin: tokio::sync::Mutex<ChildStdin>,
    shared: Arc<Shared>,
    next_ref: AtomicU64,
    /// `127.0.0.1:port`.
    pub address: String,
}

impl Smsc {
    /// Starts one accepting binds with `password`, closing connections
    /// silent for `inactivity_ms` (0: never). It never probes a link itself.
    pub async fn start(password: &str, inactivity_ms: u64) -> anyhow::Result<Self> {
        let mut child = Command::new("perl")
            .arg(SCRIPT)
            .args(["--password", password])
            .args(["--inactivity-ms", &inactivity_ms.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("perl (scripts/provision.sh installs it with libnet-smpp-perl)")?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .context("the SMS centre did not start within 10 s")??
            .context(
                "the SMS centre exited (is libnet-smpp-perl installed? scripts/provision.sh)",
            )?;
        let Event::Listening { port } = serde_json::from_str(&first)
            .with_context(|| format!("the SMS centre's first line: {first}"))?
        else {
            anyhow::bail!("the SMS centre began with {first}");
        };
        let shared = Arc::new(Shared::default());
        tokio::spawn(read_events(lines, shared.clone()));
        Ok(Self {
            child,
            stdin: tokio::sync::Mutex::new(stdin),
            shared,
            next_ref: AtomicU64::new(1),
            address: format!("127.0.0.1:{port}"),
        })
    }

    /// Sends `command` and waits for its answer.
    async fn call(&self, mut command: Value) -> anyhow::Result<Value> {
        let reference = self.next_ref.fetch_add(1, Ordering::Relaxed);
        command["ref"] = reference.into();
        let (tx, rx) = oneshot::channel();
        lock(&self.shared.answers).insert(reference, tx);
        let mut line = serde_json::to_vec(&command)?;
        line.push(b'\n');
        self.stdin.lock().await.write_all(&line).await?;
        let answer = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .with_context(|| format!("no answer to {command} within 30 s"))?
            .with_context(|| format!("the SMS centre exited before answering {command}"))?;
        if answer["event"] == "failed" {
            anyhow::bail!("{command} failed: {}", answer["why"]);
        }
        Ok(answer)
    }

    /// Changes what happens next; in force when this returns.
    pub async fn script(&self, script: Script) -> anyhow::Result<()> {
        let mut command = serde_json::to_value(script)?;
        command["cmd"] = "script".into();
        self.call(command).await.map(drop)
    }

    /// What the SMS centre saw up to now: every PDU it answered before
    /// this call is in it.
    pub async fn seen(&self) -> anyhow::Result<Seen> {
        self.call(json!({ "cmd": "sync" })).await?;
        Ok(lock(&self.shared.seen).clone())
    }

    /// Waits (up to `limit`) until `done` holds for what the SMS centre saw.
    pub async fn until(&self, limit: Duration, done: impl Fn(&Seen) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.shared.changed.notified();
            if done(&lock(&self.shared.seen)) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return done(&lock(&self.shared.seen));
            }
        }
    }

    /// Sends a delivery receipt with the optional parameters of SMPP 3.4
    /// (and the state in its text); the ESME's answer status.
    pub async fn receipt(&self, message_id: &str, state: u8) -> anyhow::Result<u32> {
        self.deliver(json!({
            "esm_class": 0x04,
            "text": format!("id:{message_id} stat:{state}"),
            "receipted_message_id": message_id,
            "message_state": state,
        }))
        .await
    }

    /// Sends a receipt written only as Appendix B text (older SMS centres).
    pub async fn text_receipt(&self, text: &str) -> anyhow::Result<u32> {
        self.deliver(json!({ "esm_class": 0x04, "text": text }))
            .await
    }

    /// Sends a message from a phone (not a receipt).
    pub async fn mobile_originated(&self, text: &str) -> anyhow::Result<u32> {
        self.deliver(json!({ "esm_class": 0x00, "text": text }))
            .await
    }

    /// Sends a deliver_sm to the bound ESME; its answer status.
    async fn deliver(&self, mut command: Value) -> anyhow::Result<u32> {
        command["cmd"] = "deliver".into();
        let answer = self.call(command).await?;
        let status = answer["status"]
            .as_u64()
            .context("deliver_sm_resp without a status")?;
        Ok(u32::try_from(status)?)
    }

    /// Unbinds the bound ESME (an SMS centre going for maintenance); the
    /// status of the ESME's unbind_resp.
    pub async fn unbind(&self) -> anyhow::Result<u32> {
        let answer = self.call(json!({ "cmd": "unbind" })).await?;
        let status = answer["status"]
            .as_u64()
            .context("unbind_resp without a status")?;
        Ok(u32::try_from(status)?)
    }

    /// Stops it: its stdin closes, and it exits.
    pub async fn stop(mut self) {
        drop(self.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// Records events and hands answers to the commands waiting for them,
/// until the SMS centre's stdout closes.
async fn read_events(
    mut lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    shared: Arc<Shared>,
) {
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(value) = serde_json::from_str::<Value>(&line) else {
            eprintln!("smsc: not JSON: {line}");
            continue;
        };
        if let Some(reference) = value["ref"].as_u64() {
            if let Some(tx) = lock(&shared.answers).remove(&reference) {
                let _ = tx.send(value);
            }
            continue;
        }
        match serde_json::from_value::<Event>(value) {
            Ok(event) => record(&shared, event),
            Err(err) => eprintln!("smsc: unknown event {line}: {err}"),
        }
    }
    // Whoever still waits learns that the SMS centre is gone.
    lock(&shared.answers).clear();
}

fn record(shared: &Shared, event: Event) {
    {
        let mut seen = lock(&shared.seen);
        match event {
            Event::Listening { .. } => {}
            Event::Bind { accepted } => seen.binds += u32::from(accepted),
            Event::Submit(Submitted::Accepted(accepted)) => seen.accepted.push(accepted),
            Event::Submit(Submitted::Refused { status }) => seen.refused.push(status),
            Event::Closed { why } => seen.closed.push(why),
        }
    }
    shared.changed.notify_waiters();
}

fn hex<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(deserializer)?;
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| serde::de::Error::custom(format!("not hex: {text}")))
        })
        .collect()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
