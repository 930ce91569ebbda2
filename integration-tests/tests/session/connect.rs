//! Connect, deliver with ack, replay on reconnect, heartbeats.

use super::*;

#[tokio::test]
async fn a_connected_device_gets_and_acks_a_delivery() {
    let redis = pushmail_integration_tests::redis_config();
    let node = SessionNode::start(config(&redis)).await;
    let device = Device::new();
    assert_eq!(
        node.deliver(&device, 1, 500).await.status(),
        pb::DeliverStatus::NotConnectedHere,
        "not connected yet"
    );

    let (mut ws, welcome) = hello(&node, &device, 0, 99_999).await;
    assert_eq!(welcome["hb"], 3_540, "clamped to the maximum and said so");
    let here = presence(&node, &device).await;
    assert!(here.connected);
    assert_eq!(
        (here.node.as_str(), here.heartbeat_seconds),
        (node.address().as_str(), 3_540)
    );

    // Deliver returns once the device acks.
    let deliver = {
        let node_address = node.address();
        let device_claims = (
            device.claims.tenant_id.clone(),
            device.claims.device_id.clone(),
        );
        tokio::spawn(async move {
            let mut client = pushmail_integration_tests::session_client(node_address).await;
            client
                .deliver(pb::DeliverRequest {
                    notification: Some(pb::Notification {
                        tenant_id: device_claims.0,
                        device_id: device_claims.1,
                        sequence: 1,
                        account_id: "acct".to_owned(),
                        subject: "Quarterly report".to_owned(),
                        from: Some(pushmail_proto::common::v1::Address {
                            name: "Boss".to_owned(),
                            address: "boss@example.net".to_owned(),
                        }),
                        ..Default::default()
                    }),
                    ack_timeout_ms: 5_000,
                })
                .await
                .unwrap()
                .into_inner()
        })
    };
    let frame = next(&mut ws).await.unwrap();
    assert_eq!(
        (frame["t"].as_str(), frame["seq"].as_u64()),
        (Some("n"), Some(1)),
        "{frame}"
    );
    assert_eq!(frame["subject"], "Quarterly report");
    assert_eq!(frame["from"], "Boss <boss@example.net>");
    send(&mut ws, json!({"t": "ack", "seq": 1})).await;
    assert_eq!(deliver.await.unwrap().status(), pb::DeliverStatus::Acked);

    // No ack: the caller hears "ack timeout"; a closed connection says so.
    assert_eq!(
        node.deliver(&device, 2, 300).await.status(),
        pb::DeliverStatus::AckTimeout
    );
    assert_eq!(next(&mut ws).await.unwrap()["seq"], 2);
    // Heartbeats are answered.
    send(&mut ws, json!({"t": "hb"})).await;
    assert_eq!(next(&mut ws).await.unwrap()["t"], "hb");
    // Another tenant's device id is not this device.
    let mut stranger = Device::new();
    stranger.claims.device_id = device.claims.device_id.clone();
    assert_eq!(
        node.deliver(&stranger, 3, 300).await.status(),
        pb::DeliverStatus::NotConnectedHere
    );
    ws.close(None).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while presence(&node, &device).await.connected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a clean close releases the lease"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node.stop().await;
}

#[tokio::test]
async fn a_reconnecting_device_gets_what_it_missed() {
    let redis = pushmail_integration_tests::redis_config();
    let node = SessionNode::start(config(&redis)).await;
    let device = Device::new();
    let first = append(&node, &device).await;
    assert_eq!(stash(&node, &device, 3).await, [2, 3, 4]);
    let cursor = Cursor {
        generation: first.generation,
        seq: 2,
    };
    let (mut ws, welcome) = hello_at(&node, &device, cursor, 60).await;
    assert_eq!(welcome["gen"], first.generation, "the outbox's generation");
    let mut seen = Vec::new();
    for _ in 0..2 {
        seen.push(next(&mut ws).await.unwrap()["seq"].as_u64().unwrap());
    }
    assert_eq!(
        seen,
        [3, 4],
        "everything after the device's cursor, in order"
    );
    send(&mut ws, json!({"t": "ack", "seq": 4})).await;
    // The trim follows the ack: wait (bounded) until the outbox shows it.
    let tenant = &device.claims.tenant_id;
    let id = &device.claims.device_id;
    for _ in 0..100 {
        let left = node
            .outbox
            .after(tenant, id, Cursor::default(), 10)
            .await
            .unwrap();
        if left.notifications.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ws.close(None).await.unwrap();
    // Acked ones are trimmed: a later reconnect from cursor 0 gets nothing.
    let (mut again, _) = hello(&node, &device, 0, 60).await;
    send(&mut again, json!({"t": "hb"})).await;
    assert_eq!(
        next(&mut again).await.unwrap()["t"],
        "hb",
        "no replay before the heartbeat answer"
    );
    node.stop().await;
}

#[tokio::test]
async fn a_missed_heartbeat_drops_the_connection() {
    let redis = pushmail_integration_tests::redis_config();
    let node = SessionNode::start(config(&redis)).await;
    let device = Device::new();
    let (mut ws, welcome) = hello(&node, &device, 0, 1).await;
    assert_eq!(welcome["hb"], 1);
    // One interval plus one second of grace, then the server closes.
    let frame = next(&mut ws).await.unwrap();
    assert_eq!(
        (frame["t"].as_str(), frame["code"].as_str()),
        (Some("error"), Some("heartbeat_missed"))
    );
    assert!(next(&mut ws).await.is_none());
    let stats = pushmail_integration_tests::http_get(node.admin, "/v1/heartbeats")
        .await
        .unwrap()
        .1;
    assert!(
        stats.contains(r#""missed":1"#) && stats.contains("46000-lte"),
        "{stats}"
    );
    node.stop().await;
}

#[tokio::test]
async fn a_device_too_far_behind_is_told_to_resync() {
    let redis = pushmail_integration_tests::redis_config();
    let mut settings = config(&redis);
    settings.outbox.max_per_device = 3;
    let node = SessionNode::start(settings).await;
    let device = Device::new();
    assert_eq!(stash(&node, &device, 5).await, [1, 2, 3, 4, 5]);
    let (mut ws, _) = hello(&node, &device, 0, 60).await;
    assert_eq!(
        next(&mut ws).await.unwrap()["t"],
        "resync",
        "1 and 2 are gone"
    );
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(next(&mut ws).await.unwrap()["seq"].as_u64().unwrap());
    }
    assert_eq!(seen, [3, 4, 5], "what is left still comes, in order");
    ws.close(None).await.unwrap();
    node.stop().await;
}
