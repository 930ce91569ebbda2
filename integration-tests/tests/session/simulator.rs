//! The demo device (`pushmail-device`) against a real session node: it
//! negotiates its heartbeat, receives and acks deliveries, resumes from
//! its last ack after a reconnect, obeys drain hints, and stops at once
//! when its token is refused.

use std::time::Duration;

use pushmail_device::{Device as Simulator, DeviceConfig, Event, Heartbeat};
use pushmail_proto::session::v1 as pb;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{Device, SessionNode, config, stash};

pub(crate) fn simulator_config(node: &SessionNode, device: &Device) -> DeviceConfig {
    let mut config = DeviceConfig::new(format!("ws://{}", node.devices), device.token.clone());
    // The test node allows 1 s heartbeats; step up after two held.
    config.heartbeat = Heartbeat::new(1, 1, 8, 2);
    config.answer_timeout = Duration::from_secs(5);
    config.reconnect_initial = Duration::from_millis(100);
    config
}

/// A simulator running in the background: its events, its stop, and at
/// the end its result with its cursor (generation, last ack).
pub(crate) type Running = (
    mpsc::Receiver<Event>,
    CancellationToken,
    tokio::task::JoinHandle<(anyhow::Result<()>, (u64, u64))>,
);

/// Runs `simulator` in the background over the WebSocket.
pub(crate) fn spawn(simulator: Simulator) -> Running {
    spawn_over(simulator, false)
}

/// Runs `simulator` in the background, over long poll when `long_poll`.
fn spawn_over(mut simulator: Simulator, long_poll: bool) -> Running {
    let (tx, rx) = mpsc::channel(64);
    let stop = CancellationToken::new();
    let token = stop.clone();
    let task = tokio::spawn(async move {
        let result = if long_poll {
            simulator.run_long_poll(tx, token).await
        } else {
            simulator.run(tx, token).await
        };
        (result, (simulator.generation(), simulator.last_ack()))
    });
    (rx, stop, task)
}

/// The first event `wanted` picks within 20 s (others are skipped).
pub(crate) async fn next_matching(
    events: &mut mpsc::Receiver<Event>,
    wanted: impl Fn(&Event) -> bool,
) -> Event {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("the event within 20 s")
            .expect("the device still runs");
        if wanted(&event) {
            return event;
        }
    }
}

#[tokio::test]
async fn the_demo_device_acks_deliveries_adapts_its_heartbeat_and_resumes() {
    let redis = pushmail_integration_tests::redis_config();
    let node = SessionNode::start(config(&redis)).await;
    let device = Device::new();

    // Offline: two notifications wait in the outbox.
    let waiting = stash(&node, &device, 2).await;
    let (mut events, stop, task) = spawn(Simulator::new(simulator_config(&node, &device)));
    let connected = next_matching(&mut events, |e| matches!(e, Event::Connected { .. })).await;
    assert!(
        matches!(connected, Event::Connected { heartbeat: 1, .. }),
        "{connected:?}"
    );
    for seq in &waiting {
        let Event::Notification(n) =
            next_matching(&mut events, |e| matches!(e, Event::Notification(_))).await
        else {
            unreachable!()
        };
        assert_eq!(n.seq, *seq, "replayed in order");
    }

    // Live, as dispatch does it: into the outbox, then Deliver, which
    // returns once the device acked.
    let live = stash(&node, &device, 1).await[0];
    let delivered = node.deliver_later(&device, live);
    let Event::Notification(n) =
        next_matching(&mut events, |e| matches!(e, Event::Notification(_))).await
    else {
        unreachable!()
    };
    assert_eq!(
        n.subject.as_deref(),
        Some(format!("mail {}", waiting[1] + 1).as_str())
    );
    assert_eq!(delivered.await.unwrap().status(), pb::DeliverStatus::Acked);

    // Two heartbeats held: the next hello proposes a longer interval.
    let stepped = next_matching(&mut events, |e| {
        matches!(
            e,
            Event::HeartbeatHeld {
                next_proposal: Some(_)
            }
        )
    })
    .await;
    assert_eq!(
        stepped,
        Event::HeartbeatHeld {
            next_proposal: Some(2)
        }
    );

    stop.cancel();
    let (result, (generation, last_ack)) = task.await.unwrap();
    result.unwrap();
    assert_eq!(last_ack, live);

    // Back with its last ack: only what came since.
    let later = stash(&node, &device, 1).await;
    let (mut events, stop, task) = spawn(Simulator::resuming(
        simulator_config(&node, &device),
        generation,
        last_ack,
    ));
    let Event::Notification(n) =
        next_matching(&mut events, |e| matches!(e, Event::Notification(_))).await
    else {
        unreachable!()
    };
    assert_eq!(n.seq, later[0], "nothing acked is sent again");

    // The node drains: the device is told to come back, and tries to.
    node.stop().await;
    let hint = next_matching(&mut events, |e| matches!(e, Event::Reconnecting { .. })).await;
    assert!(
        matches!(&hint, Event::Reconnecting { reason, .. } if reason.contains("drain")),
        "{hint:?}"
    );
    stop.cancel();
    task.await.unwrap().0.unwrap();
}

#[tokio::test]
async fn a_refused_token_stops_the_device() {
    let redis = pushmail_integration_tests::redis_config();
    let node = SessionNode::start(config(&redis)).await;
    let device = Device::new();
    let mut config = simulator_config(&node, &device);
    config.token = "pmd1.forged.token".to_owned();
    let (_events, _stop, task) = spawn(Simulator::new(config));
    let (result, _) = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .unwrap()
        .unwrap();
    let error = result.unwrap_err().to_string();
    assert!(error.contains("refused"), "{error}");
    node.stop().await;
}

#[tokio::test]
async fn the_demo_device_over_long_poll_gets_what_waits_and_acks_with_its_next_ping() {
    let redis = pushmail_integration_tests::redis_config();
    let node = SessionNode::start(config(&redis)).await;
    let device = Device::new();
    let waiting = stash(&node, &device, 3).await;

    let (mut events, stop, task) =
        spawn_over(Simulator::new(simulator_config(&node, &device)), true);
    let connected = next_matching(&mut events, |e| matches!(e, Event::Connected { .. })).await;
    assert!(
        matches!(connected, Event::Connected { heartbeat: 1, .. }),
        "{connected:?}"
    );
    let mut got = Vec::new();
    while got.len() < waiting.len() {
        if let Event::Notification(n) =
            next_matching(&mut events, |e| matches!(e, Event::Notification(_))).await
        {
            got.push(n.seq);
        }
    }
    assert_eq!(got, waiting, "in order, once");
    // Quiet pings expire: the interval held, and steps up after two.
    let stepped = next_matching(&mut events, |e| {
        matches!(
            e,
            Event::HeartbeatHeld {
                next_proposal: Some(_)
            }
        )
    })
    .await;
    assert_eq!(
        stepped,
        Event::HeartbeatHeld {
            next_proposal: Some(2)
        }
    );
    stop.cancel();
    let (result, (generation, last_ack)) = task.await.unwrap();
    result.unwrap();
    assert_eq!(last_ack, waiting[2]);
    // The next ping's last_ack acked them: nothing is replayed again.
    let again = stash(&node, &device, 1).await;
    let (mut events, stop, task) = spawn_over(
        Simulator::resuming(simulator_config(&node, &device), generation, last_ack),
        true,
    );
    let Event::Notification(n) =
        next_matching(&mut events, |e| matches!(e, Event::Notification(_))).await
    else {
        unreachable!()
    };
    assert_eq!(n.seq, again[0]);
    stop.cancel();
    task.await.unwrap().0.unwrap();
    node.stop().await;
}
