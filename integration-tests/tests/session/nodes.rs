//! Two nodes on one Redis: take-over, routing, drain.

use pushmail_session::directory::Directory as _;

use super::*;

#[tokio::test]
async fn a_reconnect_on_another_node_takes_the_device_over() {
    let redis = pushmail_integration_tests::redis_config();
    let first = SessionNode::start(config(&redis)).await;
    let second = SessionNode::start(config(&redis)).await;
    let device = Device::new();
    let (mut old, _) = hello(&first, &device, 0, 60).await;
    assert_eq!(
        presence(&second, &device).await.node,
        first.address(),
        "the directory knows the holder"
    );
    let routed = second.deliver(&device, 1, 300).await;
    assert_eq!(
        (routed.status(), routed.redirect_node.as_str()),
        (
            pb::DeliverStatus::NotConnectedHere,
            first.address().as_str()
        ),
        "the other node points to the holder"
    );
    // (the first node delivered nothing: that call went to the second)

    let (mut new, _) = hello(&second, &device, 0, 60).await;
    let frame = next(&mut old).await.unwrap();
    assert_eq!(frame["code"], "taken_over", "{frame}");
    assert!(
        next(&mut old).await.is_none(),
        "the old connection is closed at once"
    );
    assert_eq!(presence(&first, &device).await.node, second.address());
    let stale = first.deliver(&device, 2, 300).await;
    assert_eq!(stale.redirect_node, second.address());

    let deliver = second.deliver_later(&device, 2);
    assert_eq!(next(&mut new).await.unwrap()["seq"], 2);
    send(&mut new, json!({"t": "ack", "seq": 2})).await;
    assert_eq!(deliver.await.unwrap().status(), pb::DeliverStatus::Acked);
    first.stop().await;
    second.stop().await;
}

#[tokio::test]
async fn a_heartbeat_that_finds_its_lease_lost_closes_the_connection() {
    let redis = pushmail_integration_tests::redis_config();
    let node = SessionNode::start(config(&redis)).await;
    let device = Device::new();
    let (mut ws, _) = hello(&node, &device, 0, 60).await;
    // Another node claimed the device and its take-over call never came.
    let directory = pushmail_session::directory::RedisDirectory::new(
        pushmail_common::redis::connect(&redis).await.unwrap(),
        &redis.key_prefix,
    );
    let elsewhere = "http://elsewhere.invalid:7102";
    directory
        .claim(&device.claims.device_id, elsewhere, Duration::from_secs(60))
        .await
        .unwrap();
    send(&mut ws, json!({"t": "hb"})).await;
    assert_eq!(next(&mut ws).await.unwrap()["t"], "hb");
    let frame = next(&mut ws).await.unwrap();
    assert_eq!(frame["code"], "taken_over", "{frame}");
    assert!(next(&mut ws).await.is_none(), "closed");
    assert_eq!(
        presence(&node, &device).await.node,
        elsewhere,
        "the other node keeps the lease"
    );
    node.stop().await;
}

#[tokio::test]
async fn a_draining_node_spreads_reconnects_and_leaves_the_directory() {
    let redis = pushmail_integration_tests::redis_config();
    let node = SessionNode::start(config(&redis)).await;
    let other = SessionNode::start(config(&redis)).await;
    let devices: Vec<Device> = (0..5).map(|_| Device::new()).collect();
    let mut sockets = Vec::new();
    for device in &devices {
        sockets.push(hello(&node, device, 0, 60).await.0);
    }
    node.shutdown.cancel();
    let mut delays = Vec::new();
    for ws in &mut sockets {
        let frame = next(ws).await.unwrap();
        assert_eq!(
            (frame["t"].as_str(), frame["reason"].as_str()),
            (Some("reconnect"), Some("drain")),
            "{frame}"
        );
        let after = frame["after_ms"].as_u64().unwrap();
        assert!(after < 1_000, "within the drain window: {after}");
        delays.push(after);
        assert!(next(ws).await.is_none(), "closed after the hint");
    }
    delays.dedup();
    assert!(delays.len() > 1, "jittered, not all at once: {delays:?}");
    for device in &devices {
        assert!(!presence(&other, device).await.connected, "deregistered");
    }
    node.task.await.unwrap().unwrap();
    other.stop().await;
}
