//! `pushmail device`: the demo device. Connects to a session node with a
//! device token, prints each notification as it arrives (and, with
//! `--fetch`, the message's summary and its first attachment's preview
//! from the gateway), until Ctrl-C. With a mailbox command (`ls`, `read`,
//! `reply`, `send`) it does that one thing through the gateway instead.

use std::time::Duration;

use pushmail_device::{Device, DeviceConfig, Event, Heartbeat, fetch};
use tokio_util::sync::CancellationToken;

/// Arguments of `pushmail device`.
#[derive(Debug, clap::Args)]
pub(crate) struct DeviceArgs {
    /// The session node's device endpoint.
    #[arg(long, default_value = "ws://127.0.0.1:8102")]
    server: String,
    /// The device token binding's RegisterDevice returned.
    #[arg(long, env = "PUSHMAIL_DEVICE_TOKEN", hide_env_values = true)]
    token: String,
    /// The first heartbeat interval to propose, seconds.
    #[arg(long, default_value_t = 60)]
    heartbeat: u32,
    /// The network to report (MCC-MNC and radio).
    #[arg(long, default_value = "46000-lte")]
    net: String,
    /// Resume after this sequence (what the device already holds).
    #[arg(long, default_value_t = 0)]
    last_ack: u64,
    /// The outbox generation `--last-ack` counts in, as the device printed
    /// it when it stopped (0: none, as a fresh device).
    #[arg(long, default_value_t = 0)]
    generation: u64,
    /// Fetch each message's summary and first attachment preview.
    #[arg(long)]
    fetch: bool,
    /// Use HTTP long poll (`/v1/ping`) instead of the WebSocket.
    #[arg(long)]
    long_poll: bool,
    /// The gateway, for the mailbox commands.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    gateway: String,
    /// A mailbox command instead of holding the connection.
    #[command(subcommand)]
    mail: Option<crate::mailbox_cli::MailCommand>,
}

pub(crate) fn run(args: DeviceArgs) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("pushmail device: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let done = match args.mail {
        Some(command) => {
            runtime.block_on(crate::mailbox_cli::run(command, &args.gateway, &args.token))
        }
        None => runtime.block_on(device(args)),
    };
    match done {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pushmail device: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn device(args: DeviceArgs) -> anyhow::Result<()> {
    let mut config = DeviceConfig::new(args.server.clone(), args.token.clone());
    config.network = args.net;
    config.heartbeat = Heartbeat::new(args.heartbeat, 60, 1_800, 5);
    let mut device = Device::resuming(config, args.generation, args.last_ack);
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.cancel();
        }
    });
    println!("device: connecting to {}", args.server);
    let token = args.token.clone();
    let fetching = args.fetch;
    let printer = tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            print(&event);
            if let (true, Event::Notification(n)) = (fetching, &event) {
                show_fetch(n, &token).await;
            }
        }
    });
    let result = if args.long_poll {
        device.run_long_poll(tx, shutdown).await
    } else {
        device.run(tx, shutdown).await
    };
    let _ = printer.await;
    println!(
        "device: stopped; last ack {} (--generation {} --last-ack {} resumes)",
        device.last_ack(),
        device.generation(),
        device.last_ack()
    );
    result
}

pub(crate) fn print(event: &Event) {
    match event {
        Event::Connected { heartbeat, session } => {
            println!("device: connected (session {session}), heartbeat every {heartbeat} s");
        }
        Event::Notification(n) if n.sync => match &n.changed {
            Some(change) => println!(
                "#{} {} of {} changed on another phone ({change}): list it again",
                n.seq, n.mailbox, n.account
            ),
            None => println!(
                "#{} mailbox sync requested for {} ({}): the server lost track of it; \
                 list it again rather than trust the notifications",
                n.seq, n.account, n.mailbox
            ),
        },
        Event::Notification(n) => {
            let digest = n
                .digest
                .filter(|d| *d > 1)
                .map(|d| format!(" [{d} mails]"))
                .unwrap_or_default();
            println!(
                "#{} {} | from: {} | subject: {}{}",
                n.seq,
                n.mailbox,
                n.from.as_deref().unwrap_or("(hidden)"),
                n.subject.as_deref().unwrap_or("(hidden)"),
                digest
            );
            if let Some(snippet) = &n.snippet {
                println!("    {snippet}");
            }
            for a in &n.attachments {
                println!("    📎 {} ({}, {} bytes)", a.name, a.content_type, a.size);
            }
        }
        Event::Duplicate(seq) => println!("device: #{seq} again (dropped)"),
        Event::AlreadyShown(seq) => println!("device: #{seq} is a mail already shown (acked)"),
        Event::HeartbeatHeld {
            next_proposal: Some(s),
        } => {
            println!("device: heartbeats hold; next connection proposes {s} s");
        }
        Event::HeartbeatHeld {
            next_proposal: None,
        } => {}
        Event::TimedOut { next_proposal } => {
            println!("device: heartbeat unanswered; reconnecting with {next_proposal} s");
        }
        Event::Resync { generation, from } => println!(
            "device: resync: what the server kept for this device is incomplete (fallen \
             behind, or its outbox was lost); a full mailbox sync is due; outbox generation \
             {generation}, replay after #{from}"
        ),
        Event::Reconnecting { after, reason } => {
            println!(
                "device: reconnecting in {} ms ({reason})",
                after.as_millis()
            );
        }
        Event::Error { code, message } => println!("device: server error {code}: {message}"),
    }
}

pub(crate) async fn show_fetch(n: &pushmail_device::frames::Notification, token: &str) {
    let Some(url) = &n.url else { return };
    match tokio::time::timeout(Duration::from_secs(10), fetch::get(url, token)).await {
        Ok(Ok(summary)) if summary.status == 200 => {
            println!("    fetched summary: {} bytes", summary.body.len());
        }
        Ok(Ok(other)) => println!("    fetch: HTTP {}", other.status),
        Ok(Err(e)) => println!("    fetch failed: {e}"),
        Err(_) => println!("    fetch timed out"),
    }
    let Some(preview) = n.attachments.first().map(|a| a.preview.clone()) else {
        return;
    };
    match tokio::time::timeout(Duration::from_secs(30), fetch::get(&preview, token)).await {
        Ok(Ok(p)) if p.status == 200 => {
            println!("    preview: {} ({} bytes)", p.content_type, p.body.len());
        }
        Ok(Ok(other)) => println!("    preview: HTTP {}", other.status),
        Ok(Err(e)) => println!("    preview failed: {e}"),
        Err(_) => println!("    preview timed out"),
    }
}
