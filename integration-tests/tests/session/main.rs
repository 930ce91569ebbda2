//! The session holder against real WebSocket and HTTP clients, real Redis
//! (the directory) and the broker (the revocation feed): connect, deliver
//! with ack, replay, take-over between nodes, long-poll, drain, bad input.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

mod connect;
mod directory;
mod framing;
mod generations;
mod hold;
mod longpoll;
mod nodes;
mod rough;
mod simulator;
mod transport;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use pushmail_common::health::Readiness;
use pushmail_device_token::{DeviceClaims, TokenSigner};
use pushmail_integration_tests::{SessionClient, session_client};
use pushmail_integration_tests::{kafka_bus, session_config, test_security};
use pushmail_outbox::{Appended, Cursor, Outbox};
use pushmail_proto::session::v1 as pb;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

/// One running session node.
pub(crate) struct SessionNode {
    pub(crate) grpc: SocketAddr,
    pub(crate) admin: SocketAddr,
    pub(crate) devices: SocketAddr,
    pub(crate) outbox: Arc<dyn Outbox>,
    pub(crate) shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), pushmail_session::Error>>,
}

/// Short heartbeats so tests see them expire; `redis` shared by nodes of one test.
pub(crate) fn config(redis: &pushmail_common::redis::RedisConfig) -> pushmail_session::Config {
    let mut config = session_config();
    config.directory.redis = redis.clone();
    config.outbox.redis = redis.clone();
    config.heartbeat.min_seconds = 1;
    config.heartbeat.grace_seconds = 1;
    // Renewals must land within the 1 s grace.
    config.limits.batch_window_ms = 100;
    config.heartbeat.hello_timeout_seconds = 2;
    config.devices.drain_window_seconds = 1;
    config
}

impl SessionNode {
    pub(crate) async fn start(config: pushmail_session::Config) -> Self {
        Self::start_on(
            config,
            pushmail_session::Listeners::ephemeral().await.unwrap(),
        )
        .await
    }

    pub(crate) async fn start_on(
        config: pushmail_session::Config,
        listeners: pushmail_session::Listeners,
    ) -> Self {
        Self::start_with(config, listeners, |outbox| outbox).await
    }

    /// A node whose outbox is `wrap` of the configured one.
    pub(crate) async fn start_with(
        mut config: pushmail_session::Config,
        listeners: pushmail_session::Listeners,
        wrap: impl FnOnce(Arc<dyn Outbox>) -> Arc<dyn Outbox>,
    ) -> Self {
        let grpc = listeners.server.grpc.local_addr().unwrap();
        let admin = listeners.server.admin.local_addr().unwrap();
        let devices = listeners.devices.local_addr().unwrap();
        config.devices.advertise = format!("http://{grpc}");
        let mut deps = pushmail_session::Deps::connect(&config, kafka_bus().await.expect("broker"))
            .await
            .expect("session connects");
        deps.outbox = wrap(deps.outbox);
        let outbox = deps.outbox.clone();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(pushmail_session::run(
            config,
            deps,
            listeners,
            Readiness::new("session"),
            shutdown.clone(),
        ));
        pushmail_integration_tests::wait_ready(admin, Duration::from_secs(20))
            .await
            .expect("session ready");
        Self {
            grpc,
            admin,
            devices,
            outbox,
            shutdown,
            task,
        }
    }

    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }

    /// Starts `Deliver` of `seq` to the device; the answer comes once it acks (or not).
    pub(crate) fn deliver_later(
        &self,
        device: &Device,
        seq: u64,
    ) -> tokio::task::JoinHandle<pb::DeliverResponse> {
        self.deliver_appended(device, unplaced(seq))
    }

    /// Starts `Deliver` of what was appended, with its generation, as
    /// dispatch does; the answer comes once the device acks (or not).
    pub(crate) fn deliver_appended(
        &self,
        device: &Device,
        appended: Appended,
    ) -> tokio::task::JoinHandle<pb::DeliverResponse> {
        let address = self.address();
        let request = deliver_request(device, appended, 5_000);
        tokio::spawn(async move {
            session_client(address)
                .await
                .deliver(request)
                .await
                .unwrap()
                .into_inner()
        })
    }

    pub(crate) fn address(&self) -> String {
        format!("http://{}", self.grpc)
    }

    pub(crate) async fn client(&self) -> SessionClient {
        session_client(self.address()).await
    }

    /// Delivers `seq` to the device and returns the status.
    pub(crate) async fn deliver(
        &self,
        device: &Device,
        seq: u64,
        ack_timeout_ms: u32,
    ) -> pb::DeliverResponse {
        self.deliver_in(device, unplaced(seq), ack_timeout_ms).await
    }

    /// Delivers what was appended, with its generation, and returns the status.
    pub(crate) async fn deliver_in(
        &self,
        device: &Device,
        appended: Appended,
        ack_timeout_ms: u32,
    ) -> pb::DeliverResponse {
        self.client()
            .await
            .deliver(deliver_request(device, appended, ack_timeout_ms))
            .await
            .unwrap()
            .into_inner()
    }
}

/// `seq` delivered naming no outbox generation (taken as the connection's).
fn unplaced(seq: u64) -> Appended {
    Appended {
        generation: 0,
        seq,
        state: pushmail_outbox::AppendState::New,
        count: 1,
    }
}

fn deliver_request(device: &Device, appended: Appended, ack_timeout_ms: u32) -> pb::DeliverRequest {
    let seq = appended.seq;
    pb::DeliverRequest {
        notification: Some(pb::Notification {
            tenant_id: device.claims.tenant_id.clone(),
            device_id: device.claims.device_id.clone(),
            sequence: seq,
            outbox_generation: appended.generation,
            account_id: "acct".to_owned(),
            subject: format!("mail {seq}"),
            ..Default::default()
        }),
        ack_timeout_ms,
    }
}

/// A device identity with a signed token.
pub(crate) struct Device {
    pub(crate) claims: DeviceClaims,
    pub(crate) token: String,
}

impl Device {
    pub(crate) fn new() -> Self {
        let now = pushmail_common::clock::now_ms();
        Self::with_claims(DeviceClaims {
            tenant_id: uuid::Uuid::now_v7().to_string(),
            device_id: uuid::Uuid::now_v7().to_string(),
            msisdn: "+8613800138000".to_owned(),
            issued_at_ms: now - 1_000,
            expires_at_ms: now + 3_600_000,
        })
    }

    pub(crate) fn with_claims(claims: DeviceClaims) -> Self {
        let signer =
            TokenSigner::from_seed_hex(test_security().device_token_seed.expose()).unwrap();
        Self {
            token: signer.sign(&claims),
            claims,
        }
    }
}

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens `/v1/connect` with the token in the Authorization header.
pub(crate) async fn open(
    node: &SessionNode,
    token: &str,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let mut request = format!("ws://{}/v1/connect", node.devices)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(ws, _)| ws)
}

/// Sends a JSON frame.
pub(crate) async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

/// The next text frame as JSON, or `None` when the connection closed.
pub(crate) async fn next(ws: &mut Ws) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("a frame within 15 s")?;
        match message {
            Ok(Message::Text(text)) => return Some(serde_json::from_str(&text).unwrap()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Connects and says hello naming no generation (as a fresh device, or
/// one from before generations); returns the socket and the welcome.
pub(crate) async fn hello(
    node: &SessionNode,
    device: &Device,
    last_ack: u64,
    hb: u32,
) -> (Ws, Value) {
    let cursor = Cursor {
        generation: 0,
        seq: last_ack,
    };
    hello_at(node, device, cursor, hb).await
}

/// Connects and says hello from `cursor`; returns the socket and the welcome.
pub(crate) async fn hello_at(
    node: &SessionNode,
    device: &Device,
    cursor: Cursor,
    hb: u32,
) -> (Ws, Value) {
    let mut ws = open(node, &device.token).await.expect("upgrade");
    let mut hello = json!({"t": "hello", "last_ack": cursor.seq, "hb": hb, "net": "46000-lte"});
    if cursor.generation != 0 {
        hello["gen"] = cursor.generation.into();
    }
    send(&mut ws, hello).await;
    let welcome = next(&mut ws).await.expect("welcome");
    assert_eq!(welcome["t"], "welcome", "{welcome}");
    (ws, welcome)
}

/// Appends `count` notifications to the device's outbox (as dispatch
/// does); returns their sequences.
pub(crate) async fn stash(node: &SessionNode, device: &Device, count: usize) -> Vec<u64> {
    let mut seqs = Vec::new();
    for _ in 0..count {
        seqs.push(append(node, device).await.seq);
    }
    seqs
}

/// Appends one notification to the device's outbox, as dispatch does.
pub(crate) async fn append(node: &SessionNode, device: &Device) -> Appended {
    node.outbox
        .append(&pb::Notification {
            tenant_id: device.claims.tenant_id.clone(),
            device_id: device.claims.device_id.clone(),
            account_id: "acct".to_owned(),
            idempotency_key: pushmail_integration_tests::unique("mail"),
            ..Default::default()
        })
        .await
        .unwrap()
}

/// The directory's view.
pub(crate) async fn presence(node: &SessionNode, device: &Device) -> pb::GetPresenceResponse {
    // Presence is the gateway's question (the portal's device list).
    pushmail_integration_tests::session_client_as(
        node.address(),
        pushmail_common::service_identity::Service::Gateway,
    )
    .await
    .get_presence(pb::GetPresenceRequest {
        tenant_id: device.claims.tenant_id.clone(),
        device_id: device.claims.device_id.clone(),
    })
    .await
    .unwrap()
    .into_inner()
}
