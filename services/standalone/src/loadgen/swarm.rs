//! The phones: one helper process per source address (`pushmail
//! loadgen-devices`, hidden), each running [`pushmail_device::Device`]s
//! from that address. A helper prints one line per event, stamped with the
//! Unix time in ns when the notification reached it:
//! `c` connected, `n <ns> <subject>` a notification, `s <account>` a
//! mailbox sync requested (no mail: the server lost track of the mailbox),
//! `d <seq>` a duplicate dropped, `r` a resync (the phone's outbox was lost
//! or it fell behind), `e <reason>` a device that gave up; `ready` once
//! every device connected. The parent reads the lines as they come.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use pushmail_device::{Device, DeviceConfig, Event, Heartbeat};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// Arguments of the hidden `pushmail loadgen-devices`.
#[derive(Debug, clap::Args)]
pub(crate) struct SwarmArgs {
    /// The session node's device endpoint.
    #[arg(long)]
    server: String,
    /// The address the devices connect from.
    #[arg(long)]
    source: IpAddr,
    /// A file with one device token per line.
    #[arg(long)]
    tokens: PathBuf,
}

/// What reached the phones, by subject.
#[derive(Debug, Default)]
pub(crate) struct Arrivals {
    /// Subject → arrival times (ns); more than one is a duplicate shown.
    pub(crate) by_subject: HashMap<String, Vec<u64>>,
    /// Sequences the devices dropped as already seen.
    pub(crate) dropped_duplicates: usize,
    /// Connections made, the first ones included.
    pub(crate) connects: usize,
    /// Resyncs the phones were told of.
    pub(crate) resyncs: usize,
    /// Mailbox syncs requested (notifications that stand for no mail).
    pub(crate) mailbox_syncs: usize,
    /// Devices that gave up.
    pub(crate) failures: Vec<String>,
}

/// The helper processes and what they reported.
pub(crate) struct Swarm {
    children: Vec<Child>,
    seen: Arc<Mutex<Arrivals>>,
    _tokens: tempfile::TempDir,
}

impl Swarm {
    /// Starts a helper per source address with its share of `tokens` and
    /// waits until every device connected.
    pub(crate) async fn start<'a>(
        server: &str,
        sources: &[IpAddr],
        tokens: impl Iterator<Item = &'a str>,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut shares = vec![Vec::new(); sources.len()];
        for (i, token) in tokens.enumerate() {
            shares[i % sources.len()].push(token);
        }
        let seen = Arc::new(Mutex::new(Arrivals::default()));
        let exe = std::env::current_exe().context("this executable")?;
        let mut children = Vec::new();
        let mut ready = Vec::new();
        for (source, share) in sources.iter().zip(shares) {
            if share.is_empty() {
                continue;
            }
            let file = dir.path().join(format!("{source}.tokens"));
            std::fs::write(&file, share.join("\n"))?;
            let mut child = Command::new(&exe)
                .arg("loadgen-devices")
                .args(["--server", server, "--source", &source.to_string()])
                .arg("--tokens")
                .arg(&file)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .context("a device helper process")?;
            let stdout = child.stdout.take().context("helper stdout")?;
            let (tx, rx) = tokio::sync::oneshot::channel();
            tokio::spawn(read_lines(BufReader::new(stdout), seen.clone(), tx));
            ready.push((source, rx));
            children.push(child);
        }
        for (source, rx) in ready {
            tokio::time::timeout(Duration::from_secs(120), rx)
                .await
                .with_context(|| format!("the devices on {source} did not all connect"))?
                .with_context(|| format!("the device helper on {source} ended"))?;
        }
        Ok(Self {
            children,
            seen,
            _tokens: dir,
        })
    }

    /// Waits until `expected` notifications of subjects starting with
    /// `tag` arrived, or `wait` passed (then a moment for late
    /// duplicates), and hands over what arrived.
    pub(crate) async fn collect(
        mut self,
        tag: &str,
        expected: usize,
        wait: Duration,
    ) -> anyhow::Result<Arrivals> {
        let count = |seen: &Arrivals| {
            seen.by_subject
                .keys()
                .filter(|s| s.starts_with(tag))
                .count()
        };
        let deadline = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < deadline {
            if count(&self.lock()) >= expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        for child in &mut self.children {
            let _ = child.kill().await;
        }
        Ok(std::mem::take(&mut *self.lock()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Arrivals> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn read_lines(
    mut stdout: BufReader<tokio::process::ChildStdout>,
    seen: Arc<Mutex<Arrivals>>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut line = String::new();
    while stdout.read_line(&mut line).await.is_ok_and(|n| n > 0) {
        let text = line.trim_end();
        let mut seen = seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match text.split_once(' ') {
            Some(("n", rest)) => {
                if let Some((ns, subject)) = rest.split_once(' ')
                    && let Ok(ns) = ns.parse()
                {
                    seen.by_subject
                        .entry(subject.to_owned())
                        .or_default()
                        .push(ns);
                }
            }
            Some(("s", _)) => seen.mailbox_syncs += 1,
            Some(("d", _)) => seen.dropped_duplicates += 1,
            Some(("e", reason)) => seen.failures.push(reason.to_owned()),
            _ if text == "c" => seen.connects += 1,
            _ if text == "r" => seen.resyncs += 1,
            _ if text == "ready" => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
            }
            _ => {}
        }
        drop(seen);
        line.clear();
    }
}

/// The helper's side: runs the devices until stdin closes (the parent
/// ended) and prints what they see.
pub(crate) fn run(args: SwarmArgs) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("loadgen-devices: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(devices(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen-devices: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn devices(args: SwarmArgs) -> anyhow::Result<()> {
    let tokens = std::fs::read_to_string(&args.tokens)
        .with_context(|| format!("{}", args.tokens.display()))?;
    let shutdown = CancellationToken::new();
    let (tx, mut rx) = tokio::sync::mpsc::channel(4_096);
    let mut expected = 0;
    for token in tokens.lines().filter(|t| !t.is_empty()) {
        let mut config = DeviceConfig::new(args.server.clone(), token.to_owned());
        config.source = Some(args.source);
        config.heartbeat = Heartbeat::new(60, 60, 1_800, 5);
        let (tx, stop) = (tx.clone(), shutdown.clone());
        tokio::spawn(async move {
            if let Err(e) = Device::new(config).run(tx.clone(), stop).await {
                let _ = tx
                    .send(Event::Error {
                        code: "gave-up".to_owned(),
                        message: format!("{e:#}"),
                    })
                    .await;
            }
        });
        expected += 1;
    }
    drop(tx);
    // The parent holds our stdin; its end is ours.
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            let mut stdin = tokio::io::stdin();
            let mut buf = [0u8; 64];
            while tokio::io::AsyncReadExt::read(&mut stdin, &mut buf)
                .await
                .is_ok_and(|n| n > 0)
            {}
            shutdown.cancel();
        }
    });
    let mut out = tokio::io::BufWriter::new(tokio::io::stdout());
    let mut connected = 0;
    while let Some(event) = rx.recv().await {
        let line = match event {
            Event::Notification(n) if n.sync => format!("s {}\n", n.account),
            Event::Notification(n) => format!(
                "n {} {}\n",
                super::smtp::now_ns(),
                n.subject.unwrap_or_default().replace('\n', " ")
            ),
            Event::Duplicate(seq) | Event::AlreadyShown(seq) => format!("d {seq}\n"),
            Event::Resync { .. } => "r\n".to_owned(),
            Event::Connected { .. } => {
                connected += 1;
                if connected == expected {
                    "c\nready\n".to_owned()
                } else {
                    "c\n".to_owned()
                }
            }
            Event::Error { message, .. } => format!("e {}\n", message.replace('\n', " ")),
            _ => continue,
        };
        out.write_all(line.as_bytes()).await?;
        if rx.is_empty() {
            out.flush().await?;
        }
    }
    out.flush().await?;
    Ok(())
}
