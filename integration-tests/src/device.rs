//! A phone's push client over the session's WebSocket, for tests: hello,
//! frames as JSON, acks.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A connected device.
pub struct DeviceClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl DeviceClient {
    /// Connects to `devices` (the session's device port) with `token`, says
    /// hello with `last_ack`, and returns the welcome too.
    pub async fn connect(
        devices: SocketAddr,
        token: &str,
        last_ack: u64,
    ) -> anyhow::Result<(Self, Value)> {
        let mut request = format!("ws://{devices}/v1/connect").into_client_request()?;
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        let mut device = Self { ws };
        device
            .send(json!({"t": "hello", "last_ack": last_ack, "hb": 600, "net": "46000-lte"}))
            .await?;
        let welcome = device
            .next_within(Duration::from_secs(15))
            .await
            .ok_or_else(|| anyhow::anyhow!("no welcome"))?;
        anyhow::ensure!(welcome["t"] == "welcome", "expected welcome, got {welcome}");
        Ok((device, welcome))
    }

    /// Sends a frame.
    pub async fn send(&mut self, frame: Value) -> anyhow::Result<()> {
        self.ws
            .send(Message::Text(frame.to_string().into()))
            .await?;
        Ok(())
    }

    /// Acks everything through `seq`.
    pub async fn ack(&mut self, seq: u64) -> anyhow::Result<()> {
        self.send(json!({"t": "ack", "seq": seq})).await
    }

    /// The next frame, or `None` after `wait` or when the connection closed.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??;
            match message {
                Ok(Message::Text(text)) => return serde_json::from_str(&text).ok(),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// The next notification frame (`"t":"n"`) within `wait`, skipping
    /// heartbeat answers.
    pub async fn notification_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self.next_within(left).await?;
            if frame["t"] == "n" {
                return Some(frame);
            }
        }
    }

    /// Closes the connection cleanly.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// The demo device ([`pushmail_device::Device`]) running on its own task:
/// heartbeats, acks, reconnects and resumes as a phone would.
pub struct SimulatedPhone {
    events: tokio::sync::mpsc::Receiver<pushmail_device::Event>,
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl SimulatedPhone {
    /// Starts the device against the session's device port with `token`.
    pub fn start(devices: SocketAddr, token: &str) -> Self {
        let mut config = pushmail_device::DeviceConfig::new(format!("ws://{devices}"), token);
        // A restarted node is found again quickly.
        config.reconnect_initial = Duration::from_millis(200);
        config.reconnect_max = Duration::from_secs(2);
        config.answer_timeout = Duration::from_secs(5);
        let (tx, events) = tokio::sync::mpsc::channel(1_024);
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn({
            let stop = stop.clone();
            async move { pushmail_device::Device::new(config).run(tx, stop).await }
        });
        Self { events, stop, task }
    }

    /// The next event within `wait`.
    pub async fn event_within(&mut self, wait: Duration) -> Option<pushmail_device::Event> {
        tokio::time::timeout(wait, self.events.recv())
            .await
            .ok()
            .flatten()
    }

    /// Waits (up to a minute) until the device is connected.
    pub async fn connected(&mut self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while tokio::time::Instant::now() < deadline {
            if let Some(pushmail_device::Event::Connected { .. }) =
                self.event_within(Duration::from_secs(1)).await
            {
                return Ok(());
            }
        }
        anyhow::bail!("the phone did not connect within a minute")
    }

    /// The next new notification within `wait` (other events skipped).
    pub async fn notification_within(
        &mut self,
        wait: Duration,
    ) -> Option<pushmail_device::frames::Notification> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.event_within(left).await? {
                pushmail_device::Event::Notification(n) => return Some(n),
                _ => continue,
            }
        }
    }

    /// Stops the device.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.task.await?
    }
}
