//! A stock mail app's push, end to end: pyactivesync (PyPI, an independent
//! EAS 16.1 client) holds a Ping for the Inbox of a forwarded
//! (local-store) account, mail is sent to the platform's SMTP receiver by
//! swaks, and ingest, dispatch (over the broker) and the session node
//! that holds the Ping answer it with the Inbox. The latency from the end
//! of swaks's DATA to the answer is printed, not asserted (`make bench`
//! measures it).

use std::time::{Duration, Instant};

use pushmail_integration_tests::activesync::{
    Front, Upstreams, phone_of, pyactivesync_at, wait_held,
};
use pushmail_integration_tests::platform::{ProcessPlatform, Wiring};
use pushmail_integration_tests::{kafka_config, unique};

use crate::{binaries, mail};

/// Provisions, then holds one Ping on the Inbox (its id as the mailbox
/// service gives it: base64url of `INBOX`); prints its status, folders and
/// the wall clock when answered.
const PING: &str = r#"
import sys, json, time
from pyactivesync import Client
server, user, password, device = sys.argv[1:5]
with Client(server=server, username=user, password=password, device_id=device) as c:
    c.provision()
    result = c.ping(["SU5CT1g"], heartbeat=120, timeout=150)
    print(json.dumps({"status": result.status, "folders": result.changed_folder_ids,
                      "at": time.time()}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stock_mail_apps_held_ping_is_answered_by_mail_sent_over_smtp() {
    let mut platform = ProcessPlatform::start(
        &binaries(),
        &Wiring {
            kafka: kafka_config(),
            require_auth: false,
            tight_listeners: false,
            redis_url: None,
            otlp: None,
            coalesce_ms: pushmail_outbox::OutboxSettings::default().coalesce_ms,
        },
    )
    .await
    .unwrap();
    let tenant = platform.api.tenant().await.unwrap();
    let address = format!("{}@corp.example", unique("eas"));
    let account = platform.api.forwarded(&tenant, &address).await.unwrap();
    let phone = phone_of(&mut platform.api, tenant, account, address.clone()).await;
    let certs = tempfile::tempdir().unwrap();
    let front = Front::with_upstreams(
        platform.grpc.binding,
        Upstreams {
            mailbox: None,
            session: Some(platform.grpc.session),
        },
        Some(certs.path()),
    )
    .await;

    let ping = {
        let script_front = front.addr;
        let certs = certs.path().to_owned();
        let phone = phone.clone();
        tokio::spawn(async move {
            pyactivesync_at(script_front, &certs, &phone, PING, &["easping01"]).await
        })
    };
    // Mail sent before the Ping is held would answer it too (from the
    // outbox), but then the test would not show a held Ping woken.
    let held = wait_held(
        platform.grpc.session,
        &phone.tenant.tenant_id,
        &phone.app_password.device_id,
    )
    .await;
    assert_eq!(held, 120);
    pushmail_integration_tests::smtp::swaks(
        platform.smtp,
        &address,
        mail(&address, "Push me").as_bytes(),
    )
    .await
    .unwrap();
    // swaks has ended DATA and QUIT by now.
    let sent = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = Instant::now();
    let answered = tokio::time::timeout(Duration::from_secs(120), ping)
        .await
        .unwrap_or_else(|_| panic!("the Ping was never answered\n{}", platform.logs()))
        .unwrap();
    let answer: serde_json::Value = serde_json::from_str(answered.trim()).unwrap();
    assert_eq!(answer["status"], "2", "{answer}");
    assert_eq!(answer["folders"], serde_json::json!(["SU5CT1g"]));
    eprintln!(
        "Ping answered {:.0} ms after swaks returned (waited {:?})",
        (answer["at"].as_f64().unwrap() - sent) * 1_000.0,
        started.elapsed()
    );
    front.stop().await;
    platform.stop().await.unwrap();
}
