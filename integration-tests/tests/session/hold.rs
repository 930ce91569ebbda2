//! `Hold`: a phone's held EAS Ping, kept by the node as a connection of
//! the device, ended by what comes for a watched mailbox, the interval, a
//! newer hold elsewhere or the drain; with activesync's own client.

use super::*;

use pushmail_common::service_identity::Service;

fn hold_request(device: &Device, seconds: u32, mailboxes: &[&str]) -> pb::HoldRequest {
    pb::HoldRequest {
        tenant_id: device.claims.tenant_id.clone(),
        device_id: device.claims.device_id.clone(),
        heartbeat_seconds: seconds,
        mailboxes: mailboxes.iter().map(|&m| m.to_owned()).collect(),
    }
}

/// Starts a hold as activesync does; its end (or the refusal).
fn hold_later(
    node: &SessionNode,
    request: pb::HoldRequest,
) -> tokio::task::JoinHandle<Result<pb::HoldEnd, tonic::Status>> {
    let address = node.address();
    tokio::spawn(async move {
        let mut client =
            pushmail_integration_tests::session_client_as(address, Service::ActiveSync).await;
        let mut stream = client.hold(request).await?.into_inner();
        let end = stream.message().await?.expect("one message");
        assert!(stream.message().await?.is_none(), "one message only");
        Ok(end)
    })
}

/// Waits until the node holds the device with a `seconds` interval.
async fn held(node: &SessionNode, device: &Device, seconds: u32) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while presence(node, device).await.heartbeat_seconds != seconds {
        assert!(tokio::time::Instant::now() < deadline, "never held");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Appends a notification for `mailbox`, as dispatch does.
async fn append_for(node: &SessionNode, device: &Device, mailbox: &str) -> Appended {
    node.outbox
        .append(&pb::Notification {
            tenant_id: device.claims.tenant_id.clone(),
            device_id: device.claims.device_id.clone(),
            account_id: "acct".to_owned(),
            mailbox: mailbox.to_owned(),
            idempotency_key: pushmail_integration_tests::unique("mail"),
            ..Default::default()
        })
        .await
        .unwrap()
}

/// Delivers what was appended for `mailbox`, as dispatch does.
async fn deliver_for(
    node: &SessionNode,
    device: &Device,
    appended: Appended,
    mailbox: &str,
) -> pb::DeliverStatus {
    node.client()
        .await
        .deliver(pb::DeliverRequest {
            notification: Some(pb::Notification {
                tenant_id: device.claims.tenant_id.clone(),
                device_id: device.claims.device_id.clone(),
                sequence: appended.seq,
                outbox_generation: appended.generation,
                account_id: "acct".to_owned(),
                mailbox: mailbox.to_owned(),
                ..Default::default()
            }),
            ack_timeout_ms: 5_000,
        })
        .await
        .unwrap()
        .into_inner()
        .status()
}

async fn unacked(node: &SessionNode, device: &Device) -> usize {
    node.outbox
        .after(
            &device.claims.tenant_id,
            &device.claims.device_id,
            Cursor::default(),
            100,
        )
        .await
        .unwrap()
        .notifications
        .len()
}

#[tokio::test]
async fn a_hold_ends_for_a_watched_mailbox_acks_what_it_told_and_replays_what_it_missed() {
    let redis = pushmail_integration_tests::redis_config();
    let mut config = config(&redis);
    // Holds outlive the server's request deadline: it bounds answering
    // the call, not the stream that follows.
    config.listeners.grpc.request_timeout_ms = 1_000;
    let node = SessionNode::start(config).await;
    let device = Device::new();

    let hold = hold_later(&node, hold_request(&device, 30, &["INBOX", "Work"]));
    held(&node, &device, 30).await;
    // A mailbox the phone does not watch is acked, and the hold goes on.
    let archive = append_for(&node, &device, "Archive").await;
    assert_eq!(
        deliver_for(&node, &device, archive, "Archive").await,
        pb::DeliverStatus::Acked
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!hold.is_finished(), "an unwatched mailbox ended the hold");
    let inbox = append_for(&node, &device, "INBOX").await;
    assert_eq!(
        deliver_for(&node, &device, inbox, "INBOX").await,
        pb::DeliverStatus::Acked
    );
    let end = hold.await.unwrap().unwrap();
    assert_eq!(end.reason(), pb::HoldReason::Changed);
    assert_eq!(
        (end.mailboxes, end.resync),
        (vec!["INBOX".to_owned()], false)
    );
    assert_eq!(unacked(&node, &device).await, 0, "what ended it is acked");

    // Between two Pings the phone is not held: what came then is in the
    // outbox, and the next hold ends with it at once.
    append_for(&node, &device, "Work").await;
    append_for(&node, &device, "Archive").await;
    let end = hold_later(&node, hold_request(&device, 30, &["INBOX", "Work"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(end.reason(), pb::HoldReason::Changed);
    assert_eq!(end.mailboxes, ["Work"]);
    assert_eq!(unacked(&node, &device).await, 0);

    // Watching nothing named watches everything; a notification naming
    // no mailbox wakes any hold.
    let hold = hold_later(&node, hold_request(&device, 30, &["INBOX"]));
    held(&node, &device, 30).await;
    let any = append_for(&node, &device, "").await;
    assert_eq!(
        deliver_for(&node, &device, any, "").await,
        pb::DeliverStatus::Acked
    );
    assert_eq!(
        hold.await.unwrap().unwrap().reason(),
        pb::HoldReason::Changed
    );

    // The interval ends it, through activesync's own client, whose
    // request timeout (1 s here, as the server's) bounds starting the
    // hold, not holding it.
    let mut upstream = pushmail_common::grpc::UpstreamConfig::at(node.address());
    upstream.timeout_ms = 1_000;
    upstream.token = pushmail_integration_tests::credential_secret(Service::ActiveSync);
    let push = pushmail_activesync::push::Push::new(upstream.channel().unwrap());
    let login = pushmail_activesync::login::Login {
        tenant: device.claims.tenant_id.clone(),
        account: "acct".to_owned(),
        device: device.claims.device_id.clone(),
        msisdn: device.claims.msisdn.clone(),
        app_password: String::new(),
        address: "user@example.com".to_owned(),
        policy_key: None,
        policy_digest: String::new(),
        preferences: pushmail_activesync::login::Preferences::default(),
        wipe: None,
    };
    let started = tokio::time::Instant::now();
    let woken = push
        .hold(&login, Duration::from_secs(3), vec!["INBOX".to_owned()])
        .await
        .unwrap();
    assert_eq!(woken, pushmail_activesync::push::Woken::Expired);
    assert!(started.elapsed() >= Duration::from_secs(3));

    node.stop().await;
}

#[tokio::test]
async fn a_newer_hold_elsewhere_takes_over_a_drain_ends_holds_and_bad_holds_are_refused() {
    let redis = pushmail_integration_tests::redis_config();
    let first = SessionNode::start(config(&redis)).await;
    let second = SessionNode::start(config(&redis)).await;
    let device = Device::new();

    let old = hold_later(&first, hold_request(&device, 40, &["INBOX"]));
    held(&first, &device, 40).await;
    // The phone's next Ping reached another activesync replica, which
    // asked another node.
    let new = hold_later(&second, hold_request(&device, 41, &["INBOX"]));
    let end = tokio::time::timeout(Duration::from_secs(10), old)
        .await
        .expect("the old hold ends at once")
        .unwrap()
        .unwrap();
    assert_eq!(end.reason(), pb::HoldReason::TakenOver);
    held(&second, &device, 41).await;

    // A drain answers every hold before the node goes, and a hold asked
    // of a draining node is told to go elsewhere.
    second.shutdown.cancel();
    let end = tokio::time::timeout(Duration::from_secs(10), new)
        .await
        .expect("the drain ends the hold")
        .unwrap()
        .unwrap();
    assert_eq!(end.reason(), pb::HoldReason::Draining);
    second.task.await.unwrap().unwrap();

    // Only activesync holds; bounds are checked.
    let mut dispatch = first.client().await;
    let refused = dispatch
        .hold(hold_request(&device, 30, &[]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    for request in [
        hold_request(&device, 0, &[]),
        hold_request(&device, 3_601, &[]),
        pb::HoldRequest {
            device_id: String::new(),
            ..hold_request(&device, 30, &[])
        },
        pb::HoldRequest {
            mailboxes: vec!["INBOX".to_owned(); 1_001],
            ..hold_request(&device, 30, &[])
        },
    ] {
        let refused = hold_later(&first, request).await.unwrap().unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused}");
    }
    first.stop().await;
}
