//! Outbox generations with a real node and real Redis: a phone's cursor
//! from before its outbox was lost never silences its next mail. Each way
//! the outbox goes is reproduced: its keys deleted (a flush, an eviction),
//! its TTL run out, a restarted node's memory outbox. After each the phone
//! gets the mail, or a resync and the replay, and a sequence counts as
//! acked only once the phone acked it in the new generation.

use pushmail_common::redis::{RedisConfig, StateStoreKind};
use pushmail_device::{Device as Simulator, Event};

use super::simulator::{next_matching, simulator_config, spawn};
use super::*;

/// How the device's outbox is lost.
#[derive(Debug, Clone, Copy)]
enum Loss {
    /// Its Redis keys deleted, as a flush or an eviction does.
    Flush,
    /// Its TTL run out (`outbox.ttl_seconds` short).
    Expiry,
    /// The node restarted with its outbox in memory.
    Restart,
}

impl Loss {
    fn config(self, redis: &RedisConfig) -> pushmail_session::Config {
        let mut config = config(redis);
        match self {
            Self::Flush => {}
            // Long enough for each step before the loss on a busy machine.
            Self::Expiry => config.outbox.ttl_seconds = 5,
            Self::Restart => config.outbox.kind = StateStoreKind::Memory,
        }
        config
    }

    /// Loses the device's outbox; returns the node to talk to after.
    async fn lose(self, node: SessionNode, device: &Device, redis: &RedisConfig) -> SessionNode {
        let mut connection = pushmail_common::redis::connect(redis).await.unwrap();
        let keys = outbox_keys(redis, device);
        match self {
            Self::Flush => {
                let deleted: u32 = redis::cmd("DEL")
                    .arg(&keys)
                    .query_async(&mut connection)
                    .await
                    .unwrap();
                assert!(deleted > 0, "the outbox was there: {keys:?}");
                node
            }
            Self::Expiry => {
                // Reading an expired key removes it: this sees the TTL end.
                let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
                loop {
                    let left: u32 = redis::cmd("EXISTS")
                        .arg(&keys)
                        .query_async(&mut connection)
                        .await
                        .unwrap();
                    if left == 0 {
                        break node;
                    }
                    assert!(tokio::time::Instant::now() < deadline, "never expired");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            Self::Restart => {
                node.stop().await;
                SessionNode::start(self.config(redis)).await
            }
        }
    }
}

/// The device's outbox keys (`RedisOutbox`'s layout).
fn outbox_keys(redis: &RedisConfig, device: &Device) -> Vec<String> {
    let base = format!(
        "{}outbox:{{{}/{}}}",
        redis.key_prefix, device.claims.tenant_id, device.claims.device_id
    );
    ["s", "m", "i", "c"]
        .iter()
        .map(|k| format!("{base}:{k}"))
        .collect()
}

/// The next notification the simulator shows or drops as seen.
async fn shown_or_dropped(events: &mut tokio::sync::mpsc::Receiver<Event>) -> Event {
    next_matching(events, |e| {
        matches!(e, Event::Notification(_) | Event::Duplicate(_))
    })
    .await
}

/// The demo device: it stops holding (G1, 2); the outbox is lost; one
/// mail waits in the new one. Back with its cursor it is told to resync,
/// shows the waiting mail, then a live one.
async fn the_demo_device_shows_the_next_mail(loss: Loss) {
    let redis = pushmail_integration_tests::redis_config();
    let node = SessionNode::start(loss.config(&redis)).await;
    let device = Device::new();
    let before = append(&node, &device).await;
    stash(&node, &device, 1).await;
    let (mut events, stop, task) = spawn(Simulator::new(simulator_config(&node, &device)));
    for seq in [1, 2] {
        let shown = shown_or_dropped(&mut events).await;
        assert!(
            matches!(&shown, Event::Notification(n) if n.seq == seq),
            "{shown:?}"
        );
    }
    stop.cancel();
    let (result, cursor) = task.await.unwrap();
    result.unwrap();
    assert_eq!(cursor, (before.generation, 2), "the phone's cursor");

    let node = loss.lose(node, &device, &redis).await;
    let waiting = append(&node, &device).await;
    assert_ne!(waiting.generation, before.generation, "a new outbox");
    assert_eq!(waiting.seq, 1, "below the phone's cursor");
    let (mut events, stop, task) = spawn(Simulator::resuming(
        simulator_config(&node, &device),
        cursor.0,
        cursor.1,
    ));
    let resync = next_matching(&mut events, |e| matches!(e, Event::Resync { .. })).await;
    assert_eq!(
        resync,
        Event::Resync {
            generation: waiting.generation,
            from: 0
        }
    );
    let shown = shown_or_dropped(&mut events).await;
    assert!(
        matches!(&shown, Event::Notification(n) if n.seq == 1),
        "{shown:?}"
    );
    let live = append(&node, &device).await;
    let delivered = node.deliver_appended(&device, live);
    let shown = shown_or_dropped(&mut events).await;
    assert!(
        matches!(&shown, Event::Notification(n) if n.seq == 2),
        "{shown:?}"
    );
    assert_eq!(delivered.await.unwrap().status(), pb::DeliverStatus::Acked);
    stop.cancel();
    assert_eq!(task.await.unwrap().1, (waiting.generation, 2));
    node.stop().await;
}

#[tokio::test]
async fn the_demo_device_shows_the_next_mail_after_its_outbox_was_flushed() {
    the_demo_device_shows_the_next_mail(Loss::Flush).await;
}

#[tokio::test]
async fn the_demo_device_shows_the_next_mail_after_its_outbox_expired() {
    the_demo_device_shows_the_next_mail(Loss::Expiry).await;
}

#[tokio::test]
async fn the_demo_device_shows_the_next_mail_after_a_memory_node_restarted() {
    the_demo_device_shows_the_next_mail(Loss::Restart).await;
}

/// A raw WebSocket phone holding (G1, 1) after the loss: welcome in a new
/// generation, a resync, and the next mail (sequence 1, below its old
/// cursor) is sent, not taken as acked; an ack naming the lost generation
/// trims nothing, one in the new generation does.
async fn a_websocket_cursor_from_before_the_loss_gets_a_resync(loss: Loss) {
    let redis = pushmail_integration_tests::redis_config();
    let node = SessionNode::start(loss.config(&redis)).await;
    let device = Device::new();
    let before = append(&node, &device).await;
    let (mut ws, _) = hello(&node, &device, 0, 60).await;
    assert_eq!(next(&mut ws).await.unwrap()["seq"], 1);
    send(
        &mut ws,
        json!({"t": "ack", "seq": 1, "gen": before.generation}),
    )
    .await;
    ws.close(None).await.unwrap();

    let node = loss.lose(node, &device, &redis).await;
    let cursor = Cursor {
        generation: before.generation,
        seq: 1,
    };
    let (mut ws, welcome) = hello_at(&node, &device, cursor, 60).await;
    let generation = welcome["gen"].as_u64().unwrap();
    assert_ne!(generation, before.generation);
    assert_eq!(
        next(&mut ws).await.unwrap(),
        json!({"t": "resync", "gen": generation, "from": 0})
    );
    let mail = append(&node, &device).await;
    assert_eq!((mail.generation, mail.seq), (generation, 1));
    assert_eq!(
        node.deliver_in(&device, mail, 500).await.status(),
        pb::DeliverStatus::AckTimeout,
        "the phone's old cursor acks nothing"
    );
    let n = next(&mut ws).await.unwrap();
    assert_eq!((n["t"].as_str(), n["seq"].as_u64()), (Some("n"), Some(1)));
    send(
        &mut ws,
        json!({"t": "ack", "seq": 1, "gen": before.generation}),
    )
    .await;
    send(&mut ws, json!({"t": "hb"})).await;
    assert_eq!(next(&mut ws).await.unwrap()["t"], "hb");
    let (tenant, id) = (&device.claims.tenant_id, &device.claims.device_id);
    let held = node.outbox.after(tenant, id, Cursor::default(), 10).await;
    assert_eq!(held.unwrap().notifications.len(), 1, "nothing trimmed");
    send(&mut ws, json!({"t": "ack", "seq": 1, "gen": generation})).await;
    send(&mut ws, json!({"t": "hb"})).await;
    assert_eq!(next(&mut ws).await.unwrap()["t"], "hb");
    let held = node.outbox.after(tenant, id, Cursor::default(), 10).await;
    assert!(held.unwrap().notifications.is_empty(), "trimmed on its ack");
    ws.close(None).await.unwrap();

    // The phone of the issue: no generation, a cursor past anything the
    // outbox assigned.
    let (mut ws, _) = hello(&node, &device, 1_000_000, 60).await;
    assert_eq!(
        next(&mut ws).await.unwrap(),
        json!({"t": "resync", "gen": generation, "from": 0})
    );
    let mail = append(&node, &device).await;
    let delivery = node.deliver_appended(&device, mail);
    assert_eq!(next(&mut ws).await.unwrap()["seq"], 2);
    send(&mut ws, json!({"t": "ack", "seq": 2})).await;
    assert_eq!(delivery.await.unwrap().status(), pb::DeliverStatus::Acked);
    ws.close(None).await.unwrap();
    node.stop().await;
}

#[tokio::test]
async fn a_websocket_cursor_from_before_a_flush_gets_a_resync() {
    a_websocket_cursor_from_before_the_loss_gets_a_resync(Loss::Flush).await;
}

#[tokio::test]
async fn a_websocket_cursor_from_before_an_expiry_gets_a_resync() {
    a_websocket_cursor_from_before_the_loss_gets_a_resync(Loss::Expiry).await;
}

#[tokio::test]
async fn a_websocket_cursor_from_before_a_restart_gets_a_resync() {
    a_websocket_cursor_from_before_the_loss_gets_a_resync(Loss::Restart).await;
}

/// The long poll holding (G1, 1) after the loss: answered at once with a
/// resync in the new generation; the next mail reaches the held poll and
/// counts as acked only with the ping that acks it there.
async fn a_long_poll_cursor_from_before_the_loss_gets_a_resync(loss: Loss) {
    let redis = pushmail_integration_tests::redis_config();
    let node = SessionNode::start(loss.config(&redis)).await;
    let device = Device::new();
    let before = append(&node, &device).await;
    let (_, answer) = longpoll::ping(&node, &device.token, json!({"hb": 1})).await;
    assert_eq!(answer["notifications"][0]["seq"], 1, "{answer}");
    assert_eq!(answer["gen"], before.generation);
    let cursor = json!({"hb": 1, "last_ack": 1, "gen": before.generation});
    let (_, answer) = longpoll::ping(&node, &device.token, cursor.clone()).await;
    assert_eq!(answer["status"], "expired", "{answer}");

    let node = loss.lose(node, &device, &redis).await;
    let (_, answer) = longpoll::ping(&node, &device.token, cursor).await;
    let generation = answer["gen"].as_u64().unwrap();
    assert_eq!(
        (answer["status"].as_str(), answer["from"].as_u64()),
        (Some("resync"), Some(0)),
        "{answer}"
    );
    assert_ne!(generation, before.generation);

    // The phone of the issue, over long poll.
    let (_, answer) = longpoll::ping(
        &node,
        &device.token,
        json!({"hb": 1, "last_ack": 1_000_000}),
    )
    .await;
    assert_eq!(answer["status"], "resync", "{answer}");

    let (mail, answer) = delivered_to_a_held_ping(&node, &device, generation, 0).await;
    assert_eq!(answer["notifications"][0]["seq"], mail.seq, "{answer}");
    assert_eq!(mail.seq, 1, "below the phone's old cursor");
    node.stop().await;
}

/// A ping of `body` (proposing 30 s), once the node holds it; its answer
/// comes from the handle.
async fn held_ping(
    node: &SessionNode,
    device: &Device,
    body: Value,
) -> tokio::task::JoinHandle<(u16, String, Value)> {
    let (addr, token) = (node.devices, device.token.clone());
    let held =
        tokio::spawn(async move { longpoll::ping_raw(addr, &token, &body.to_string()).await });
    // Its lease carries its interval; the pings before proposed 1 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while presence(node, device).await.heartbeat_seconds != 30 {
        assert!(tokio::time::Instant::now() < deadline, "never held");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    held
}

/// Holds a ping at (`generation`, `last_ack`), appends and delivers a mail
/// to it, acks it with the next ping and checks the delivery was acked;
/// returns the mail and the held ping's answer.
async fn delivered_to_a_held_ping(
    node: &SessionNode,
    device: &Device,
    generation: u64,
    last_ack: u64,
) -> (Appended, Value) {
    let held = held_ping(
        node,
        device,
        json!({"hb": 30, "last_ack": last_ack, "gen": generation}),
    )
    .await;
    let mail = append(node, device).await;
    let delivery = node.deliver_appended(device, mail);
    let (_, _, answer) = held.await.unwrap();
    let acking = json!({"hb": 1, "last_ack": mail.seq, "gen": mail.generation});
    let (_, after) = longpoll::ping(node, &device.token, acking).await;
    assert_eq!(after["status"], "expired", "{after}");
    assert_eq!(delivery.await.unwrap().status(), pb::DeliverStatus::Acked);
    (mail, answer)
}

#[tokio::test]
async fn a_long_poll_cursor_from_before_a_flush_gets_a_resync() {
    a_long_poll_cursor_from_before_the_loss_gets_a_resync(Loss::Flush).await;
}

#[tokio::test]
async fn a_long_poll_cursor_from_before_an_expiry_gets_a_resync() {
    a_long_poll_cursor_from_before_the_loss_gets_a_resync(Loss::Expiry).await;
}

#[tokio::test]
async fn a_long_poll_cursor_from_before_a_restart_gets_a_resync() {
    a_long_poll_cursor_from_before_the_loss_gets_a_resync(Loss::Restart).await;
}

/// The outbox recreated while the phone is connected: the first mail of
/// the new generation resyncs the live connection before it is shown.
#[tokio::test]
async fn an_outbox_recreated_under_a_live_connection_resyncs_it() {
    let redis = pushmail_integration_tests::redis_config();
    let node = SessionNode::start(config(&redis)).await;
    let device = Device::new();
    let before = append(&node, &device).await;
    let (mut events, stop, task) = spawn(Simulator::new(simulator_config(&node, &device)));
    let shown = shown_or_dropped(&mut events).await;
    assert!(
        matches!(&shown, Event::Notification(n) if n.seq == 1),
        "{shown:?}"
    );

    let node = Loss::Flush.lose(node, &device, &redis).await;
    let mail = append(&node, &device).await;
    assert_ne!(mail.generation, before.generation);
    let delivered = node.deliver_appended(&device, mail);
    let resync = next_matching(&mut events, |e| matches!(e, Event::Resync { .. })).await;
    assert_eq!(
        resync,
        Event::Resync {
            generation: mail.generation,
            from: 0
        }
    );
    let shown = shown_or_dropped(&mut events).await;
    assert!(
        matches!(&shown, Event::Notification(n) if n.seq == 1),
        "{shown:?}"
    );
    assert_eq!(delivered.await.unwrap().status(), pb::DeliverStatus::Acked);
    stop.cancel();
    assert_eq!(task.await.unwrap().1, (mail.generation, 1));
    node.stop().await;
}

/// The same under a held long poll: it is answered with the resync and
/// the new outbox's mail, acked by the next ping in the new generation.
#[tokio::test]
async fn an_outbox_recreated_under_a_held_long_poll_answers_it_with_a_resync() {
    let redis = pushmail_integration_tests::redis_config();
    let node = SessionNode::start(config(&redis)).await;
    let device = Device::new();
    let (_, answer) = longpoll::ping(&node, &device.token, json!({"hb": 1})).await;
    let before = answer["gen"].as_u64().unwrap();
    let held = held_ping(&node, &device, json!({"hb": 30, "gen": before})).await;
    let node = Loss::Flush.lose(node, &device, &redis).await;
    let mail = append(&node, &device).await;
    assert_ne!(mail.generation, before);
    let delivery = node.deliver_appended(&device, mail);
    let (_, _, answer) = held.await.unwrap();
    assert_eq!(
        (
            answer["status"].as_str(),
            answer["gen"].as_u64(),
            answer["from"].as_u64()
        ),
        (Some("resync"), Some(mail.generation), Some(0)),
        "{answer}"
    );
    assert_eq!(answer["notifications"][0]["seq"], 1);
    let acking = json!({"hb": 1, "last_ack": 1, "gen": mail.generation});
    longpoll::ping(&node, &device.token, acking).await;
    assert_eq!(delivery.await.unwrap().status(), pb::DeliverStatus::Acked);
    node.stop().await;
}

/// The connection's cursor (1, acked in the lost outbox) must not ack the
/// recreated outbox's 1: the raw phone does not ack, and Deliver says so.
#[tokio::test]
async fn a_live_connections_old_cursor_acks_nothing_in_the_recreated_outbox() {
    let redis = pushmail_integration_tests::redis_config();
    let node = SessionNode::start(config(&redis)).await;
    let device = Device::new();
    let before = append(&node, &device).await;
    let (mut ws, welcome) = hello(&node, &device, 0, 60).await;
    assert_eq!(welcome["gen"], before.generation);
    assert_eq!(next(&mut ws).await.unwrap()["seq"], 1);
    send(
        &mut ws,
        json!({"t": "ack", "seq": 1, "gen": before.generation}),
    )
    .await;
    send(&mut ws, json!({"t": "hb"})).await;
    assert_eq!(next(&mut ws).await.unwrap()["t"], "hb", "the ack is in");

    let node = Loss::Flush.lose(node, &device, &redis).await;
    let mail = append(&node, &device).await;
    assert_eq!(
        node.deliver_in(&device, mail, 500).await.status(),
        pb::DeliverStatus::AckTimeout
    );
    assert_eq!(
        next(&mut ws).await.unwrap(),
        json!({"t": "resync", "gen": mail.generation, "from": 0})
    );
    // The replay, and the delivery itself (a repeat the device drops).
    send(&mut ws, json!({"t": "hb"})).await;
    let mut shown = Vec::new();
    while let Some(frame) = next(&mut ws).await.filter(|f| f["t"] != "hb") {
        shown.push(frame["seq"].as_u64());
    }
    assert!(
        !shown.is_empty() && shown.iter().all(|seq| *seq == Some(1)),
        "{shown:?}"
    );
    send(
        &mut ws,
        json!({"t": "ack", "seq": 1, "gen": mail.generation}),
    )
    .await;
    send(&mut ws, json!({"t": "hb"})).await;
    assert_eq!(next(&mut ws).await.unwrap()["t"], "hb");
    let (tenant, id) = (&device.claims.tenant_id, &device.claims.device_id);
    let held = node.outbox.after(tenant, id, Cursor::default(), 10).await;
    assert!(held.unwrap().notifications.is_empty(), "trimmed on its ack");
    ws.close(None).await.unwrap();
    node.stop().await;
}
