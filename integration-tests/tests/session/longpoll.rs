//! `/v1/ping`, ActiveSync-style long poll.

use super::*;

pub(crate) async fn ping(node: &SessionNode, token: &str, body: Value) -> (u16, Value) {
    reqwest_like(node.devices, token, &body.to_string()).await
}

/// A minimal HTTP/1.1 POST (the test kit has no HTTP client).
async fn reqwest_like(addr: SocketAddr, token: &str, body: &str) -> (u16, Value) {
    let (status, _, body) = ping_raw(addr, token, body).await;
    (status, body)
}

/// The same, with the answer's head.
pub(crate) async fn ping_raw(addr: SocketAddr, token: &str, body: &str) -> (u16, String, Value) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /v1/ping HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(20),
        stream.read_to_string(&mut response),
    )
    .await
    .unwrap()
    .unwrap();
    let status = response[9..12].parse().unwrap();
    let head = response.split("\r\n\r\n").next().unwrap_or("").to_owned();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("");
    // Chunked or not, the JSON object is the part between the outer braces.
    let json = body
        .find('{')
        .map_or("null", |start| &body[start..=body.rfind('}').unwrap()]);
    (
        status,
        head,
        serde_json::from_str(json).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_ping_expires_or_carries_the_notification_and_the_next_one_acks_it() {
    let redis = pushmail_integration_tests::redis_config();
    let node = SessionNode::start(config(&redis)).await;
    let device = Device::new();

    let (status, answer) = ping(&node, &device.token, json!({"hb": 1, "net": "46001-3g"})).await;
    assert_eq!(
        (status, answer["status"].as_str(), answer["hb"].as_u64()),
        (200, Some("expired"), Some(1))
    );

    let generation = answer["gen"].as_u64().expect("the outbox's generation");

    // Held until a delivery arrives.
    let held = {
        let addr = node.devices;
        let token = device.token.clone();
        let body = json!({"hb": 30, "gen": generation}).to_string();
        tokio::spawn(async move { reqwest_like(addr, &token, &body).await })
    };
    // A loaded machine may take a while to hold the request; delivering
    // before it is held would find nobody connected. Presence alone is not
    // proof: the first ping's lease still routes here. The held ping's own
    // interval (30 s) is.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while presence(&node, &device).await.heartbeat_seconds != 30 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the ping was never held"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // As dispatch does it: into the outbox, then Deliver.
    let appended = append(&node, &device).await;
    assert_eq!(appended.generation, generation, "the outbox the ping read");
    let delivery = node.deliver_appended(&device, appended);
    let (code, answer) = held.await.unwrap();
    assert_eq!(
        (code, answer["status"].as_str()),
        (200, Some("notification")),
        "{answer}"
    );
    assert_eq!(answer["notifications"][0]["seq"], appended.seq);
    assert_eq!(answer["gen"], generation);
    // The next ping carries the ack.
    let next_ping = {
        let addr = node.devices;
        let token = device.token.clone();
        let body = json!({"hb": 1, "last_ack": appended.seq, "gen": generation}).to_string();
        tokio::spawn(async move { reqwest_like(addr, &token, &body).await })
    };
    assert_eq!(delivery.await.unwrap().status(), pb::DeliverStatus::Acked);
    assert_eq!(next_ping.await.unwrap().1["status"], "expired");

    // Missed notifications come back at once, after the cursor.
    assert_eq!(stash(&node, &device, 3).await, [2, 3, 4]);
    let (_, answer) = ping(
        &node,
        &device.token,
        json!({"hb": 30, "last_ack": 2, "gen": generation}),
    )
    .await;
    assert_eq!(answer["status"], "notification", "{answer}");
    assert_eq!(
        answer["notifications"].as_array().map(Vec::len),
        Some(2),
        "{answer}"
    );
    // A device naming no generation (from before them) still acks and
    // gets what is left.
    let (_, answer) = ping(&node, &device.token, json!({"hb": 30, "last_ack": 3})).await;
    assert_eq!(answer["notifications"][0]["seq"], 4, "{answer}");
    assert_eq!(
        answer["notifications"].as_array().map(Vec::len),
        Some(1),
        "{answer}"
    );

    // Bad input.
    assert_eq!(ping(&node, "nope", json!({"hb": 1})).await.0, 401);
    assert_eq!(
        reqwest_like(node.devices, &device.token, "{\"hb\":")
            .await
            .0,
        400
    );
    assert_eq!(
        reqwest_like(
            node.devices,
            &device.token,
            &format!("{{\"hb\":1,\"net\":\"{}\"}}", "x".repeat(2_000))
        )
        .await
        .0,
        413
    );
    node.stop().await;
}

#[tokio::test]
async fn a_mailbox_sync_is_answered_flagged_without_mail_and_acked_by_the_next_ping() {
    let redis = pushmail_integration_tests::redis_config();
    let node = SessionNode::start(config(&redis)).await;
    let device = Device::new();
    // As dispatch appends one: the account and mailbox, no mail; merged
    // with another sync of the mailbox (a count it does not show).
    let appended = node
        .outbox
        .append(&pb::Notification {
            tenant_id: device.claims.tenant_id.clone(),
            device_id: device.claims.device_id.clone(),
            account_id: "acct".to_owned(),
            mailbox: "INBOX".to_owned(),
            collapse_key: "sync:acct/INBOX".to_owned(),
            idempotency_key: pushmail_integration_tests::unique("sync"),
            digest_count: 2,
            sync: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let (status, answer) = ping(&node, &device.token, json!({"hb": 1})).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("notification")),
        "{answer}"
    );
    assert_eq!(
        answer["notifications"],
        json!([{
            "seq": appended.seq,
            "account": "acct",
            "mailbox": "INBOX",
            "collapse": "sync:acct/INBOX",
            "sync": true
        }])
    );
    // Acked like any notification: the next ping finds nothing left.
    let (_, answer) = ping(
        &node,
        &device.token,
        json!({"hb": 1, "last_ack": appended.seq, "gen": answer["gen"]}),
    )
    .await;
    assert_eq!(answer["status"], "expired", "{answer}");
    assert!(answer.get("notifications").is_none(), "{answer}");
}
