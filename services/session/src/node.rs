//! What every connection of this node shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pushmail_common::service_identity::{Service, ServiceVerifier};
use pushmail_device_token::{DeviceClaims, Revocations, TokenError, TokenVerifier};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::batch::Batch;
use crate::config::LimitsConfig;
use crate::directory::Directory;
use crate::hub::{Command, Handle, Hub, Mailbox, Outcome};
use crate::machine::Rules;
use crate::stats::HeartbeatStats;
use pushmail_common::backoff::Backoff;
use pushmail_common::report::Report;
use pushmail_outbox::{Cursor, Outbox, Replay};

/// Waits between reads of a device's replay.
const REPLAY_RETRY: Backoff = Backoff::new(
    std::time::Duration::from_millis(200),
    std::time::Duration::from_secs(2),
);

/// A long-poll delivery (its outbox generation and sequence) waiting for
/// the next ping's ack.
pub(crate) type PingWaiter = (u64, u64, oneshot::Sender<Outcome>);

/// The node's shared state.
pub(crate) struct Node {
    /// Session rules.
    pub(crate) rules: Arc<Rules>,
    /// Connected devices.
    pub(crate) hub: Hub,
    /// Device → node leases.
    pub(crate) directory: Arc<dyn Directory>,
    /// What devices missed.
    pub(crate) outbox: Arc<dyn Outbox>,
    /// Heartbeat statistics.
    pub(crate) stats: HeartbeatStats,
    /// Lease renewals queued by heartbeats.
    pub(crate) renewals: Batch<crate::writes::Renewal>,
    /// Checks device tokens.
    pub(crate) verifier: TokenVerifier,
    /// Revoked devices' cut-offs.
    pub(crate) revocations: Revocations,
    /// This node's gRPC address, as recorded in the directory.
    pub(crate) address: String,
    /// Per-connection limits.
    pub(crate) limits: LimitsConfig,
    /// Cancelled when the node starts draining: no new sessions.
    pub(crate) draining: CancellationToken,
    /// This node's service credential, sent to peers.
    pub(crate) credential: pushmail_common::redact::Secret,
    /// Checks callers' credentials on every incoming call.
    pub(crate) services: ServiceVerifier,
    /// Long-poll deliveries awaiting the ack the device's next ping carries.
    pub(crate) ping_waiters: Mutex<HashMap<String, Vec<PingWaiter>>>,
    /// Receipts for acks no one else reports.
    pub(crate) receipts: crate::receipts::Receipts,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("address", &self.address)
            .finish()
    }
}

impl Node {
    /// Refuses a gRPC call to `method` unless one of the `allowed`
    /// services makes it.
    pub(crate) fn authorize(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        method: &'static str,
        allowed: &[Service],
    ) -> Result<Service, tonic::Status> {
        self.services.authorize(metadata, method, allowed)
    }

    /// The claims of a valid device token.
    pub(crate) fn authenticate(&self, token: &str) -> Result<DeviceClaims, TokenError> {
        self.verifier
            .verify(token, pushmail_common::clock::now_ms(), &self.revocations)
    }

    /// Attaches a connection of `device` (a WebSocket or a held ping), the
    /// one way either transport does: it becomes the device's handle here,
    /// an older connection of the device here is told it was taken over,
    /// and the directory routes the device to this node (a node that held
    /// it before is asked to close its connection).
    pub(crate) async fn attach(&self, device: Arc<str>, handle: Handle) {
        let (tenant, lease) = (handle.tenant.clone(), self.lease(handle.hb));
        if let Some(old) = self.hub.insert(device.clone(), handle) {
            let _ = old.tx.try_send(Command::TakenOver);
        }
        match self.directory.claim(&device, &self.address, lease).await {
            Ok(Some(previous)) if previous != self.address => {
                self.take_over(&previous, &tenant, &device).await;
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %Report(&err), "directory claim failed; deliveries are routed here only once it recovers");
            }
        }
    }

    /// What `device` missed after `cursor`, read up to `attempts` times
    /// (a Redis hiccup under load should not send a device away); `None`
    /// when every read failed.
    pub(crate) async fn missed(
        &self,
        tenant: &str,
        device: &str,
        cursor: Cursor,
        attempts: u32,
    ) -> Option<Replay> {
        let mut attempt = 1;
        loop {
            let read = self
                .outbox
                .after(tenant, device, cursor, self.limits.max_unacked)
                .await;
            match read {
                Ok(replay) => return Some(replay),
                Err(err) if attempt < attempts => {
                    tracing::warn!(error = %Report(&err), attempt, "outbox read failed; retrying");
                    tokio::time::sleep(REPLAY_RETRY.delay(attempt)).await;
                    attempt += 1;
                }
                Err(err) => {
                    replay_failed(&err);
                    return None;
                }
            }
        }
    }

    /// What waits for a held Ping's `device` (no cursor), read once:
    /// `None` when the read failed.
    pub(crate) async fn waiting(&self, tenant: &str, device: &str) -> Option<Replay> {
        match self
            .outbox
            .waiting(tenant, device, self.limits.max_unacked)
            .await
        {
            Ok(replay) => Some(replay),
            Err(err) => {
                replay_failed(&err);
                None
            }
        }
    }

    /// Lease length for a granted heartbeat: one interval plus the grace.
    pub(crate) fn lease(&self, hb: std::time::Duration) -> std::time::Duration {
        hb + self.rules.grace
    }

    /// Resolves long-poll deliveries of `generation` up to `through` as
    /// acked. Those of another generation are answered closed: the device
    /// acks in this one now, so theirs will never come.
    pub(crate) fn ping_acked(
        &self,
        device: &str,
        generation: u64,
        through: u64,
    ) -> HashMap<u64, crate::receipts::Heard> {
        let mut heard = HashMap::new();
        let mut waiters = self
            .ping_waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(list) = waiters.get_mut(device) {
            let (done, rest): (Vec<_>, Vec<_>) = list
                .drain(..)
                .partition(|(g, seq, _)| *g != generation || *seq <= through);
            for (g, seq, reply) in done {
                if g == generation {
                    heard.insert(seq, crate::receipts::heard(reply.send(Outcome::Acked)));
                } else {
                    let _ = reply.send(Outcome::Closed);
                }
            }
            *list = rest;
            if list.is_empty() {
                waiters.remove(device);
            }
        }
        heard
    }

    /// Keeps a long-poll delivery's reply (`seq` of `generation`) until
    /// the next ping acks it.
    pub(crate) fn await_ping_ack(
        &self,
        device: &str,
        generation: u64,
        seq: u64,
        reply: oneshot::Sender<Outcome>,
    ) {
        let mut waiters = self
            .ping_waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let list = waiters.entry(device.to_owned()).or_default();
        // Callers that gave up (timed out) leave closed senders: drop them first.
        list.retain(|(_, _, r)| !r.is_closed());
        if list.len() >= self.limits.max_unacked {
            let _ = reply.send(Outcome::Closed);
            return;
        }
        list.push((generation, seq, reply));
    }
}

impl Node {
    /// Tells `previous` (another node's gRPC address) that this node holds
    /// the device now, so it closes its connection at once instead of at
    /// that connection's next heartbeat.
    pub(crate) async fn take_over(&self, previous: &str, tenant: &str, device: &str) {
        let channel = match tonic::transport::Endpoint::from_shared(previous.to_owned()) {
            Ok(endpoint) => endpoint
                .connect_timeout(std::time::Duration::from_secs(2))
                .timeout(std::time::Duration::from_secs(2))
                .connect_lazy(),
            Err(err) => {
                tracing::warn!(node = previous, error = %pushmail_common::report::Report(&err), "directory names an unusable node");
                return;
            }
        };
        let mut client =
            pushmail_proto::session::v1::session_service_client::SessionServiceClient::new(channel);
        let mut request = tonic::Request::new(pushmail_proto::session::v1::TakeOverRequest {
            tenant_id: tenant.to_owned(),
            device_id: device.to_owned(),
            node: self.address.clone(),
        });
        match format!("Bearer {}", self.credential.expose()).parse() {
            Ok(value) => {
                request.metadata_mut().insert("authorization", value);
            }
            Err(_) => tracing::warn!("the service credential is not valid metadata"),
        }
        if let Err(err) = client.take_over(request).await {
            tracing::info!(node = previous, error = %pushmail_common::report::Report(&err), "take-over not confirmed; the old connection closes at its next heartbeat");
        }
    }
}

/// A held request attached as the device's connection (a long poll's
/// ping, or an ActiveSync hold), let go however the request ends —
/// answered, or its caller gone and its future dropped: the handle is
/// removed (unless a newer connection replaced it) and what was queued
/// for it is answered closed, so dispatch falls back. Until the device
/// comes again its lease (one interval plus grace) keeps deliveries
/// routed here, where they find no handle and report "not connected".
pub(crate) struct Attachment<'a> {
    node: &'a Node,
    device: &'a str,
    id: u64,
    /// The connection's commands.
    pub(crate) tx: Arc<Mailbox>,
}

impl<'a> Attachment<'a> {
    /// Attaches `device` of `tenant`, held for `hb` (see [`Node::attach`]).
    pub(crate) async fn attach(
        node: &'a Node,
        tenant: &str,
        device: &'a str,
        hb: std::time::Duration,
    ) -> Self {
        // Made before the directory claim is awaited, so a caller that
        // goes away during it still lets the device go.
        let attachment = Self {
            node,
            device,
            id: node.hub.next_id(),
            tx: Arc::new(Mailbox::default()),
        };
        let handle = Handle {
            id: attachment.id,
            tenant: Arc::from(tenant),
            hb,
            since_ms: pushmail_common::clock::now_ms(),
            tx: attachment.tx.clone(),
        };
        node.attach(Arc::from(device), handle).await;
        attachment
    }
}

impl Drop for Attachment<'_> {
    fn drop(&mut self) {
        self.node.hub.remove(self.device, self.id);
        for command in self.tx.close() {
            if let Command::Deliver(_, _, reply) = command {
                let _ = reply.send(Outcome::Closed);
            }
        }
    }
}

/// A read of what a device missed failed for good.
fn replay_failed(err: &pushmail_outbox::OutboxError) {
    tracing::warn!(error = %Report(err), "outbox read failed; the device is sent away to come back");
    metrics::counter!("pushmail_session_replay_failures_total").increment(1);
}
