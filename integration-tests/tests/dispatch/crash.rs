//! kill -9 of dispatch while mail flows: the phone sees every mail once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pushmail_integration_tests::device::DeviceClient;

use crate::Platform;

/// `pushmail-dispatch` as a process of its own, killed with SIGKILL.
struct DispatchProcess {
    child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl DispatchProcess {
    fn start(config: &pushmail_dispatch::Config) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dispatch.toml");
        std::fs::write(&file, toml::to_string(config).unwrap()).unwrap();
        let log = std::fs::File::create(dir.path().join("dispatch.log")).unwrap();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_dispatch-node"))
            .arg("--config")
            .arg(&file)
            .stdout(log)
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Self { child, _dir: dir }
    }

    async fn kill(&mut self) {
        self.child.kill().await.unwrap();
    }
}

const MAILS: usize = 120;

#[tokio::test]
async fn killing_dispatch_mid_stream_loses_and_duplicates_nothing() {
    let mut platform = Platform::without_dispatch().await;
    let config = platform.dispatch_config(|c| {
        // Every mail its own notification, so each can be counted.
        c.outbox.coalesce_ms = 0;
        c.server.admin_addr = ([127, 0, 0, 1], 0).into();
        c.telemetry.log_level = "warn".to_owned();
    });
    let (_, registered) = platform.device(true).await;
    let (mut phone, _) = DeviceClient::connect(platform.devices, &registered.device_token, 0)
        .await
        .unwrap();
    // The phone acks everything and keeps subject → sequences seen.
    let seen: Arc<Mutex<HashMap<String, Vec<u64>>>> = Arc::default();
    let reader = tokio::spawn({
        let seen = seen.clone();
        async move {
            let mut last = 0;
            while let Some(n) = phone.notification_within(Duration::from_secs(120)).await {
                let seq = n["seq"].as_u64().unwrap();
                // The protocol lets a sequence arrive twice (delivery racing
                // replay); the phone drops what it has.
                if seq > last {
                    seen.lock()
                        .unwrap()
                        .entry(n["subject"].as_str().unwrap().to_owned())
                        .or_default()
                        .push(seq);
                    last = seq;
                }
                phone.ack(seq).await.unwrap();
            }
        }
    });

    // A third of the mail while dispatch runs, a third while it is dead
    // (killed with records in flight), a third after a replacement joined.
    // The replacement joins once the dead member's session expired (6 s in
    // tests): tansu 0.6 stalls a group that a member joins while another
    // still holds partitions (docs/architecture.md).
    let mut dispatch = DispatchProcess::start(&config);
    for i in 0..MAILS {
        platform
            .mail("boss@corp.example", &format!("mail {i}"))
            .await;
        if i == MAILS / 3 {
            dispatch.kill().await;
        }
        if i == 2 * MAILS / 3 {
            dispatch = DispatchProcess::start(&config);
        }
        let outage = (MAILS / 3..2 * MAILS / 3).contains(&i);
        tokio::time::sleep(Duration::from_millis(if outage { 200 } else { 15 })).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while seen.lock().unwrap().len() < MAILS && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A little longer, for any duplicate still on its way.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = seen.lock().unwrap().clone();
    let missing: Vec<usize> = (0..MAILS)
        .filter(|i| !seen.contains_key(&format!("mail {i}")))
        .collect();
    let doubled: Vec<_> = seen.iter().filter(|(_, seqs)| seqs.len() > 1).collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    assert!(doubled.is_empty(), "seen twice: {doubled:?}");
    dispatch.kill().await;
    reader.abort();
    platform.stop().await;
}
