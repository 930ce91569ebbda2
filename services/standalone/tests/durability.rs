//! `250` in standalone means on disk: `pushmail standalone` is killed
//! with SIGKILL while mail flows to a phone (a `pushmail device` process of
//! its own, which outlives the platform and keeps its cursor), started
//! again on the same data directory, and every mail whose SMTP transaction
//! was answered `250` reaches the phone, none twice.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

mod support;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Ports, lines, start_in, wait_for};

/// The demo tenant's API key, as the guide prints it.
fn api_key(seen: &[String]) -> String {
    let marker = "sign in with the demo tenant's key: ";
    let line = seen.iter().find(|l| l.contains(marker)).unwrap();
    let key = &line[line.find(marker).unwrap() + marker.len()..];
    key.split_whitespace().next().unwrap().to_owned()
}

/// A fresh token for the demo device, over the tenant's REST API.
fn device_token(ports: &Ports, data: &std::path::Path, key: &str) -> String {
    let demo: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("demo.json")).unwrap()).unwrap();
    let url = format!(
        "http://127.0.0.1:{}/api/v1/tenants/{}/devices/{}/token",
        ports.http,
        demo["tenant_id"].as_str().unwrap(),
        demo["device_id"].as_str().unwrap()
    );
    let out = Command::new("curl")
        .args(["-sf", "-X", "POST", "-H"])
        .arg(format!("Authorization: Bearer {key}"))
        .arg(&url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{url}: {out:?}");
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    body["token"].as_str().unwrap().to_owned()
}

/// Sends mail until `stop`, one at a time; the subjects answered `250`.
fn send_until(smtp: u16, stop: Arc<AtomicBool>, accepted: Arc<Mutex<Vec<String>>>) {
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let subject = format!("durable {n:04}");
        let sent = Command::new("swaks")
            .args(["--server", &format!("127.0.0.1:{smtp}")])
            .args(["--to", "demo@pushmail.local", "--timeout", "10"])
            .args(["--header", &format!("Subject: {subject}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .output()
            .unwrap();
        let transcript = String::from_utf8_lossy(&sent.stdout);
        if sent.status.success() && transcript.contains("<-  250 2.0.0") {
            accepted.lock().unwrap().push(subject);
        } else {
            // Down (being killed or starting): not accepted, not counted.
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn accepted_count(accepted: &Mutex<Vec<String>>) -> usize {
    accepted.lock().unwrap().len()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn interrupt(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// Each mail its own notification, so each can be counted (by default
/// unacked mail of one mailbox within 2 s becomes one with a count).
fn uncoalesced() -> Vec<(String, String)> {
    vec![("SESSION__OUTBOX__COALESCE_MS".to_owned(), "0".to_owned())]
}

#[test]
fn kill_9_while_mail_flows_loses_no_accepted_mail_and_shows_none_twice() {
    // The demo makes the tenant, account and bound phone once.
    let ports = Ports::free();
    let mut first = start_in(true, &[], tempfile::tempdir().unwrap(), ports.clone());
    let rx = lines(&mut first.child);
    let mut seen = Vec::new();
    wait_for(&rx, &mut seen, "device: connected", &mut first.child);
    let key = api_key(&seen);
    let token = device_token(&ports, first.data.path(), &key);
    interrupt(&mut first.child);
    let data = first.data;

    // From here the phone is a process of its own.
    let mut platform = start_in(false, &uncoalesced(), data, ports.clone());
    let rx = lines(&mut platform.child);
    let mut seen = Vec::new();
    wait_for(&rx, &mut seen, "is ready", &mut platform.child);
    let mut phone = Command::new(env!("CARGO_BIN_EXE_pushmail"))
        .args(["device", "--server"])
        .arg(format!("ws://127.0.0.1:{}", ports.devices))
        .args(["--token", &token])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let shown = lines(&mut phone);
    let mut printed = Vec::new();
    wait_for(&shown, &mut printed, "device: connected", &mut phone);

    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let sender = {
        let (stop, accepted) = (stop.clone(), accepted.clone());
        std::thread::spawn(move || send_until(ports.smtp, stop, accepted))
    };
    wait_until("mail before the kill", || accepted_count(&accepted) >= 15);
    platform.child.kill().unwrap();
    platform.child.wait().unwrap();
    let before = accepted_count(&accepted);
    let data = platform.data;
    let mut platform = start_in(false, &uncoalesced(), data, ports.clone());
    let rx = lines(&mut platform.child);
    let mut seen = Vec::new();
    wait_for(&rx, &mut seen, "is ready", &mut platform.child);
    wait_until("mail after the restart", || {
        accepted_count(&accepted) >= before + 15
    });
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();

    let accepted: BTreeSet<String> = accepted.lock().unwrap().iter().cloned().collect();
    let shown_subjects = |printed: &[String]| -> Vec<String> {
        printed
            .iter()
            .filter_map(|l| l.split("subject: ").nth(1))
            .map(|s| s.trim().to_owned())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        printed.extend(shown.try_iter());
        let on_phone: BTreeSet<String> = shown_subjects(&printed).into_iter().collect();
        let lost: Vec<_> = accepted.difference(&on_phone).collect();
        if lost.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let _ = phone.kill();
            interrupt(&mut platform.child);
            panic!(
                "accepted {}, lost {}: {lost:?}\nphone printed: {printed:#?}",
                accepted.len(),
                lost.len()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Anything redelivered after the restart has arrived by now.
    std::thread::sleep(Duration::from_secs(2));
    printed.extend(shown.try_iter());
    let all = shown_subjects(&printed);
    let twice: Vec<_> = all
        .iter()
        .filter(|s| all.iter().filter(|o| o == s).count() > 1)
        .collect();
    assert!(twice.is_empty(), "shown twice: {twice:?}\n{printed:#?}");
    println!(
        "accepted {} ({} before the kill), shown {}, lost 0, twice 0",
        accepted.len(),
        before,
        all.len()
    );
    let _ = phone.kill();
    let _ = phone.wait();
    interrupt(&mut platform.child);
    drop(rx);
}
