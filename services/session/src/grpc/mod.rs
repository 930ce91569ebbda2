//! `SessionService`: dispatch's `Deliver` and `GetPresence`, and `TakeOver`
//! between session nodes. Protobuf types stop here.

use std::sync::Arc;
use std::time::Duration;

use pushmail_proto::session::v1 as pb;
use pushmail_proto::session::v1::session_service_server::{SessionService, SessionServiceServer};
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

use crate::hold::{self, End, Hold};
use crate::hub::{Command, Outcome};
use crate::node::Node;
use crate::protocol::WireNotification;

mod refusal;

use refusal::Refusal;

/// Ack wait when the caller names none.
const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest notification written to a device (its JSON frame).
pub(crate) const MAX_NOTIFICATION_BYTES: usize = 4_096;
/// Longest ack wait a caller may ask for.
const MAX_ACK_TIMEOUT: Duration = Duration::from_secs(60);

/// Who may call what (the credential matrix in `docs/security.md`).
mod allowed {
    use pushmail_common::service_identity::Service;

    /// Writing to a device: dispatch only.
    pub(super) const DELIVER: &[Service] = &[Service::Dispatch];
    /// Whether devices are connected: the gateway (the portal's device list).
    pub(super) const GET_PRESENCE: &[Service] = &[Service::Gateway];
    /// Closing a device's old connection: other session nodes only.
    pub(super) const TAKE_OVER: &[Service] = &[Service::Session];
    /// Holding a phone's EAS Ping: activesync only.
    pub(super) const HOLD: &[Service] = &[Service::ActiveSync];
}

/// The service over this node.
pub(crate) fn service(node: Arc<Node>) -> SessionServiceServer<Sessions> {
    SessionServiceServer::new(Sessions::new(node))
}

/// The gRPC face of the node.
#[derive(Debug)]
pub(crate) struct Sessions {
    node: Arc<Node>,
}

impl Sessions {
    /// The service over `node`, for in-process callers.
    pub(crate) fn new(node: Arc<Node>) -> Self {
        Self { node }
    }
}

/// A notification to deliver: its tenant, device, outbox generation and
/// frame.
type Deliverable = (String, String, u64, WireNotification);

fn notification(n: pb::Notification) -> Result<Deliverable, Refusal> {
    if n.tenant_id.is_empty() || n.device_id.is_empty() {
        return Err(Refusal::Unaddressed);
    }
    if n.sequence == 0 {
        return Err(Refusal::NoSequence);
    }
    let (tenant, device, generation) = (
        n.tenant_id.clone(),
        n.device_id.clone(),
        n.outbox_generation,
    );
    let wire = WireNotification::from_proto(n);
    // Dispatch trims to the device's max_push_bytes; this bounds what a
    // connection may ever be asked to buffer, whatever the caller. Only a
    // notification that might be too big is encoded to be measured.
    let size = if wire.frame_bound() <= MAX_NOTIFICATION_BYTES {
        0
    } else {
        crate::protocol::ServerFrame::N(Box::new(wire.clone()))
            .encode()
            .len()
    };
    if size > MAX_NOTIFICATION_BYTES {
        return Err(Refusal::TooBig {
            size,
            max: MAX_NOTIFICATION_BYTES,
        });
    }
    Ok((tenant, device, generation, wire))
}

fn status(status: pb::DeliverStatus, redirect: Option<String>) -> Response<pb::DeliverResponse> {
    Response::new(pb::DeliverResponse {
        status: status.into(),
        redirect_node: redirect.unwrap_or_default(),
    })
}

/// A hold as asked for, checked.
fn hold(request: pb::HoldRequest) -> Result<Hold, Refusal> {
    if request.tenant_id.is_empty() || request.device_id.is_empty() {
        return Err(Refusal::Unaddressed);
    }
    let interval = Duration::from_secs(u64::from(request.heartbeat_seconds));
    if interval.is_zero() || interval > hold::MAX_HOLD {
        return Err(Refusal::HoldInterval {
            seconds: request.heartbeat_seconds,
            max: hold::MAX_HOLD.as_secs(),
        });
    }
    if request.mailboxes.len() > hold::MAX_WATCHED {
        return Err(Refusal::TooManyWatched {
            count: request.mailboxes.len(),
            max: hold::MAX_WATCHED,
        });
    }
    Ok(Hold {
        tenant: request.tenant_id,
        device: request.device_id,
        interval,
        watched: request.mailboxes,
    })
}

fn hold_end(end: End) -> pb::HoldEnd {
    let (reason, mailboxes, resync) = match end {
        End::Changed { mailboxes, resync } => (pb::HoldReason::Changed, mailboxes, resync),
        End::Expired => (pb::HoldReason::Expired, Vec::new(), false),
        End::Draining => (pb::HoldReason::Draining, Vec::new(), false),
        End::TakenOver => (pb::HoldReason::TakenOver, Vec::new(), false),
        End::Revoked => (pb::HoldReason::Revoked, Vec::new(), false),
    };
    pb::HoldEnd {
        reason: reason.into(),
        mailboxes,
        resync,
    }
}

/// The one message of a hold's stream.
type HoldStream = tonic::codegen::BoxStream<pb::HoldEnd>;

#[tonic::async_trait]
impl SessionService for Sessions {
    type HoldStream = HoldStream;

    async fn hold(
        &self,
        request: Request<pb::HoldRequest>,
    ) -> Result<Response<HoldStream>, Status> {
        self.node
            .authorize(request.metadata(), "Hold", allowed::HOLD)?;
        let hold = hold(request.into_inner())?;
        let node = self.node.clone();
        // Dropped with the stream when activesync goes away, which lets
        // the device go (see `hold::run`).
        let end = async move {
            hold::run(node, hold)
                .await
                .map(hold_end)
                .map_err(|err| Status::from(Refusal::from(err)))
        };
        Ok(Response::new(Box::pin(futures::stream::once(end))))
    }

    async fn deliver(
        &self,
        request: Request<pb::DeliverRequest>,
    ) -> Result<Response<pb::DeliverResponse>, Status> {
        self.node
            .authorize(request.metadata(), "Deliver", allowed::DELIVER)?;
        let request = request.into_inner();
        let wait = match request.ack_timeout_ms {
            0 => DEFAULT_ACK_TIMEOUT,
            ms => Duration::from_millis(u64::from(ms)).min(MAX_ACK_TIMEOUT),
        };
        let (tenant, device, generation, wire) =
            notification(request.notification.ok_or(Refusal::NoNotification)?)?;
        let Some(handle) = self.node.hub.get(&device).filter(|h| *h.tenant == *tenant) else {
            let elsewhere = self
                .node
                .directory
                .lookup(&device)
                .await
                .ok()
                .flatten()
                .filter(|node| *node != self.node.address);
            return Ok(status(pb::DeliverStatus::NotConnectedHere, elsewhere));
        };
        let (reply, answer) = oneshot::channel();
        if let Err(Command::Deliver(..)) =
            handle
                .tx
                .try_send(Command::Deliver(generation, Box::new(wire), reply))
        {
            return Ok(status(pb::DeliverStatus::ConnectionClosed, None));
        }
        let outcome = tokio::time::timeout(wait, answer).await.map(Result::ok);
        Ok(status(
            match outcome {
                Ok(Some(Outcome::Acked)) => pb::DeliverStatus::Acked,
                Ok(Some(Outcome::Closed) | None) => pb::DeliverStatus::ConnectionClosed,
                Err(_) => pb::DeliverStatus::AckTimeout,
            },
            None,
        ))
    }

    async fn get_presence(
        &self,
        request: Request<pb::GetPresenceRequest>,
    ) -> Result<Response<pb::GetPresenceResponse>, Status> {
        self.node
            .authorize(request.metadata(), "GetPresence", allowed::GET_PRESENCE)?;
        let request = request.into_inner();
        if let Some(handle) = self
            .node
            .hub
            .get(&request.device_id)
            .filter(|h| *h.tenant == *request.tenant_id)
        {
            return Ok(Response::new(pb::GetPresenceResponse {
                connected: true,
                node: self.node.address.clone(),
                heartbeat_seconds: u32::try_from(handle.hb.as_secs()).unwrap_or(u32::MAX),
                since: Some(pushmail_common::clock::timestamp(handle.since_ms)),
            }));
        }
        let node = self
            .node
            .directory
            .lookup(&request.device_id)
            .await
            .map_err(Refusal::from)?;
        Ok(Response::new(pb::GetPresenceResponse {
            connected: node.is_some(),
            node: node.unwrap_or_default(),
            heartbeat_seconds: 0,
            since: None,
        }))
    }

    async fn take_over(
        &self,
        request: Request<pb::TakeOverRequest>,
    ) -> Result<Response<pb::TakeOverResponse>, Status> {
        self.node
            .authorize(request.metadata(), "TakeOver", allowed::TAKE_OVER)?;
        let request = request.into_inner();
        let closed = match self
            .node
            .hub
            .get(&request.device_id)
            .filter(|h| *h.tenant == *request.tenant_id)
        {
            Some(handle) if request.node != self.node.address => {
                handle.tx.try_send(Command::TakenOver).is_ok()
            }
            _ => false,
        };
        Ok(Response::new(pb::TakeOverResponse { closed }))
    }
}
