//! Bad tokens, bad frames, floods, unknown acks, revocation, a failing
//! outbox.

use pushmail_common::bus::{EventContext, encode};
use pushmail_proto::common::v1::EventMeta;
use pushmail_proto::events::v1::{BindingChangeKind, BindingChanged};
use pushmail_proto::topics::BINDING_CHANGED;

use super::*;

fn status_of(result: Result<Ws, tokio_tungstenite::tungstenite::Error>) -> u16 {
    match result {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        other => panic!(
            "expected an HTTP refusal, got {:?}",
            other.map(|_| "a socket")
        ),
    }
}

#[tokio::test]
async fn bad_tokens_are_refused_before_the_upgrade() {
    let redis = pushmail_integration_tests::redis_config();
    let node = SessionNode::start(config(&redis)).await;
    assert_eq!(status_of(open(&node, "pmd1.garbage.garbage").await), 401);
    assert_eq!(status_of(open(&node, "").await), 401);
    let now = pushmail_common::clock::now_ms();
    let mut expired = Device::new().claims;
    expired.expires_at_ms = now - 1;
    assert_eq!(
        status_of(open(&node, &Device::with_claims(expired).token).await),
        401
    );
    let foreign = TokenSigner::from_seed_hex(&"99".repeat(32))
        .unwrap()
        .sign(&Device::new().claims);
    assert_eq!(
        status_of(open(&node, &foreign).await),
        401,
        "signed by another key"
    );
    node.stop().await;
}

#[tokio::test]
async fn bad_frames_get_a_clear_error_and_spare_other_devices() {
    let redis = pushmail_integration_tests::redis_config();
    let node = SessionNode::start(config(&redis)).await;
    let bystander = Device::new();
    let (mut calm, _) = hello(&node, &bystander, 0, 60).await;

    // Oversized.
    let (mut ws, _) = hello(&node, &Device::new(), 0, 60).await;
    send(&mut ws, json!({"t": "hb", "pad": "x".repeat(4_000)})).await;
    let frame = next(&mut ws).await.expect("the error, not a reset");
    assert_eq!(frame["code"], "too_large", "{frame}");
    assert!(next(&mut ws).await.is_none(), "then the close");
    // Malformed.
    let (mut ws, _) = hello(&node, &Device::new(), 0, 60).await;
    ws.send(Message::Text("{not json".into())).await.unwrap();
    let frame = next(&mut ws).await.unwrap();
    assert_eq!(frame["code"], "malformed", "{frame}");
    assert!(next(&mut ws).await.is_none());
    // Binary.
    let (mut ws, _) = hello(&node, &Device::new(), 0, 60).await;
    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(next(&mut ws).await.unwrap()["code"], "malformed");
    // Something before hello.
    let mut ws = open(&node, &Device::new().token).await.unwrap();
    send(&mut ws, json!({"t": "hb"})).await;
    assert_eq!(next(&mut ws).await.unwrap()["code"], "expected_hello");
    // An ack for a sequence never sent: answered, not fatal.
    let (mut ws, _) = hello(&node, &Device::new(), 0, 60).await;
    send(&mut ws, json!({"t": "ack", "seq": 42})).await;
    assert_eq!(next(&mut ws).await.unwrap()["code"], "unknown_sequence");
    send(&mut ws, json!({"t": "hb"})).await;
    assert_eq!(next(&mut ws).await.unwrap()["t"], "hb", "still open");
    // A heartbeat flood.
    let (mut ws, _) = hello(&node, &Device::new(), 0, 60).await;
    for _ in 0..40 {
        if ws
            .send(Message::Text(r#"{"t":"hb"}"#.into()))
            .await
            .is_err()
        {
            break;
        }
    }
    let mut codes = Vec::new();
    while let Some(frame) = next(&mut ws).await {
        codes.push(
            frame["t"].as_str().unwrap().to_owned() + ":" + frame["code"].as_str().unwrap_or(""),
        );
    }
    assert_eq!(
        codes.last().map(String::as_str),
        Some("error:flood"),
        "{codes:?}"
    );

    // The bystander never noticed.
    send(&mut calm, json!({"t": "hb"})).await;
    assert_eq!(next(&mut calm).await.unwrap()["t"], "hb");
    node.stop().await;
}

#[tokio::test]
async fn a_revoked_device_is_cut_off_and_refused() {
    let redis = pushmail_integration_tests::redis_config();
    let node = SessionNode::start(config(&redis)).await;
    let device = Device::new();
    let (mut ws, _) = hello(&node, &device, 0, 60).await;
    // Binding announces the revocation (as it does on RevokeDevice).
    let bus = kafka_bus().await.unwrap();
    let context = EventContext::new(device.claims.tenant_id.clone());
    let event = BindingChanged {
        meta: Some(EventMeta {
            event_id: context.event_id.clone(),
            tenant_id: device.claims.tenant_id.clone(),
            occurred_at: Some(pushmail_common::clock::timestamp(
                pushmail_common::clock::now_ms(),
            )),
            ..Default::default()
        }),
        account_id: String::new(),
        kind: BindingChangeKind::DeviceRevoked.into(),
        msisdn: device.claims.msisdn.clone(),
        device_id: device.claims.device_id.clone(),
    };
    bus.publish(
        BINDING_CHANGED.name(),
        encode(BINDING_CHANGED, &device.claims.device_id, &context, &event),
    )
    .await
    .unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(30), next(&mut ws))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(frame["code"], "revoked", "{frame}");
    assert_eq!(
        status_of(open(&node, &device.token).await),
        401,
        "its token is void"
    );
    node.stop().await;
}

#[tokio::test]
async fn a_slow_reader_is_cut_off_and_oversized_notifications_refused() {
    let redis = pushmail_integration_tests::redis_config();
    let mut settings = config(&redis);
    settings.limits.max_unacked = 3;
    let node = SessionNode::start(settings).await;
    let device = Device::new();
    let (mut ws, _) = hello(&node, &device, 0, 60).await;
    // The device stops reading and acking; each delivery times out…
    for seq in 1..=3 {
        assert_eq!(
            node.deliver(&device, seq, 100).await.status(),
            pb::DeliverStatus::AckTimeout
        );
    }
    // …until the unacked bound is reached: the connection is dropped.
    assert_eq!(
        node.deliver(&device, 4, 1_000).await.status(),
        pb::DeliverStatus::ConnectionClosed
    );
    let mut last = None;
    while let Some(frame) = next(&mut ws).await {
        last = Some(frame);
    }
    assert_eq!(last.unwrap()["code"], "slow_reader");
    assert!(!presence(&node, &device).await.connected);

    let (_ws, _) = hello(&node, &device, 0, 60).await;
    let huge = node
        .client()
        .await
        .deliver(pb::DeliverRequest {
            notification: Some(pb::Notification {
                tenant_id: device.claims.tenant_id.clone(),
                device_id: device.claims.device_id.clone(),
                sequence: 9,
                snippet: "x".repeat(10_000),
                ..Default::default()
            }),
            ack_timeout_ms: 100,
        })
        .await
        .unwrap_err();
    assert_eq!(huge.code(), tonic::Code::InvalidArgument);
    assert!(
        huge.message().contains("at most 4096"),
        "{}",
        huge.message()
    );
    node.stop().await;
}

#[tokio::test]
async fn grpc_callers_need_a_credential_allowed_the_method() {
    let redis = pushmail_integration_tests::redis_config();
    let node = SessionNode::start(config(&redis)).await;
    let mut anonymous =
        pushmail_proto::session::v1::session_service_client::SessionServiceClient::connect(
            node.address(),
        )
        .await
        .unwrap();
    let presence = pb::GetPresenceRequest {
        tenant_id: "t".into(),
        device_id: "d".into(),
    };
    let err = anonymous.get_presence(presence.clone()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let mut forged = tonic::Request::new(pb::DeliverRequest::default());
    forged
        .metadata_mut()
        .insert("authorization", "Bearer not-the-token".parse().unwrap());
    assert_eq!(
        anonymous.deliver(forged).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    let mut take_over = tonic::Request::new(pb::TakeOverRequest::default());
    take_over
        .metadata_mut()
        .insert("authorization", "Bearer x".parse().unwrap());
    assert_eq!(
        anonymous.take_over(take_over).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    // A valid credential of a service not allowed the method.
    use pushmail_common::service_identity::Service;
    let as_ingest = pushmail_integration_tests::session_client_as(node.address(), Service::Ingest)
        .await
        .deliver(pb::DeliverRequest::default())
        .await
        .unwrap_err();
    assert_eq!(as_ingest.code(), tonic::Code::PermissionDenied);
    let gateway_delivers =
        pushmail_integration_tests::session_client_as(node.address(), Service::Gateway)
            .await
            .deliver(pb::DeliverRequest::default())
            .await
            .unwrap_err();
    assert_eq!(gateway_delivers.code(), tonic::Code::PermissionDenied);
    let dispatch_takes_over = node
        .client()
        .await
        .take_over(pb::TakeOverRequest::default())
        .await
        .unwrap_err();
    assert_eq!(dispatch_takes_over.code(), tonic::Code::PermissionDenied);
    assert!(
        !pushmail_integration_tests::session_client_as(node.address(), Service::Gateway)
            .await
            .get_presence(presence)
            .await
            .unwrap()
            .into_inner()
            .connected
    );
    node.stop().await;
}

/// The real outbox, whose reads fail while `failures` is above zero.
struct Flaky {
    inner: Arc<dyn Outbox>,
    failures: std::sync::atomic::AtomicU32,
}

#[async_trait::async_trait]
impl Outbox for Flaky {
    async fn append(
        &self,
        notification: &pb::Notification,
    ) -> Result<pushmail_outbox::Appended, pushmail_outbox::OutboxError> {
        self.inner.append(notification).await
    }

    async fn after(
        &self,
        tenant: &str,
        device: &str,
        cursor: Cursor,
        limit: usize,
    ) -> Result<pushmail_outbox::Replay, pushmail_outbox::OutboxError> {
        use std::sync::atomic::Ordering;
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            let injected = redis::RedisError::from((redis::ErrorKind::Io, "injected"));
            return Err(pushmail_outbox::OutboxError::Redis(injected));
        }
        self.inner.after(tenant, device, cursor, limit).await
    }

    async fn acked(
        &self,
        tenant: &str,
        device: &str,
        cursor: Cursor,
    ) -> Result<Option<pushmail_outbox::Acked>, pushmail_outbox::OutboxError> {
        self.inner.acked(tenant, device, cursor).await
    }
}

#[tokio::test]
async fn a_failing_outbox_read_is_retried_then_the_device_is_sent_away_to_come_back() {
    let redis = pushmail_integration_tests::redis_config();
    let flaky = Arc::new(std::sync::OnceLock::<Arc<Flaky>>::new());
    let node = SessionNode::start_with(
        config(&redis),
        pushmail_session::Listeners::ephemeral().await.unwrap(),
        {
            let flaky = flaky.clone();
            move |inner| {
                let wrapped = Arc::new(Flaky {
                    inner,
                    failures: std::sync::atomic::AtomicU32::new(0),
                });
                let _ = flaky.set(wrapped.clone());
                wrapped
            }
        },
    )
    .await;
    let flaky = flaky.get().unwrap().clone();
    let device = Device::new();
    let seqs = stash(&node, &device, 1).await;

    // One failed read: retried, and the replay comes.
    flaky.failures.store(1, std::sync::atomic::Ordering::SeqCst);
    let (mut ws, _) = hello(&node, &device, 0, 60).await;
    let n = next(&mut ws)
        .await
        .expect("the replay after a retried read");
    assert_eq!(
        (n["t"].as_str(), n["seq"].as_u64()),
        (Some("n"), Some(seqs[0]))
    );
    drop(ws);

    // Reads keep failing: told to reconnect, then closed.
    flaky
        .failures
        .store(10, std::sync::atomic::Ordering::SeqCst);
    let (mut ws, _) = hello(&node, &device, 0, 60).await;
    let hint = next(&mut ws).await.expect("a reconnect hint");
    assert_eq!(hint["t"], "reconnect", "{hint}");
    assert!(next(&mut ws).await.is_none(), "closed after the hint");
    // Back with the outbox healthy: the replay comes on the next hello.
    flaky.failures.store(0, std::sync::atomic::Ordering::SeqCst);
    let (mut ws, _) = hello(&node, &device, 0, 60).await;
    let n = next(&mut ws).await.expect("the replay");
    assert_eq!(n["seq"].as_u64(), Some(seqs[0]));
    drop(ws);

    // A long poll is not held over a failed read: it is told to come back.
    flaky.failures.store(1, std::sync::atomic::Ordering::SeqCst);
    let body = json!({"hb": 60, "last_ack": 0}).to_string();
    let (status, head, answer) =
        super::longpoll::ping_raw(node.devices, &device.token, &body).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (503, Some("outbox_unavailable")),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 5"),
        "{head}"
    );
    let (status, answer) = super::longpoll::ping(&node, &device.token, json!({"hb": 60})).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("notification")),
        "the next ping gets what waits"
    );
    assert_eq!(answer["notifications"][0]["seq"].as_u64(), Some(seqs[0]));
    node.stop().await;
}
