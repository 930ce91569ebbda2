//! `Deliver` to the session node holding a device: ask any node (the
//! service address); one that does not hold the device names the one that
//! does, and that node is asked next over a channel kept per node.

use std::collections::HashMap;
use std::sync::Mutex;

use pushmail_common::grpc::{EndpointError, TracedChannel, UpstreamConfig};
use pushmail_proto::session::v1 as pb;
use pushmail_proto::session::v1::session_service_client::SessionServiceClient;

/// How a delivery over a held connection ended.
#[derive(Debug)]
pub(crate) enum Delivery {
    /// The device acked it.
    Acked,
    /// No node holds the device.
    NotConnected,
    /// The device did not ack in time, or its connection closed.
    NoAck,
    /// No session node answered (the outbox still has it).
    Unavailable(Unavailable),
}

/// Why no session node took a delivery.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unavailable {
    /// The node asked refused or failed the call.
    #[error("session node call failed")]
    Call(#[source] Box<tonic::Status>),
    /// The node a redirect named has an address no channel can be made to.
    #[error("session node {node} cannot be reached")]
    Node {
        /// The address the redirect named.
        node: String,
        /// Why.
        #[source]
        source: EndpointError,
    },
}

/// Most redirects followed (a device moving while it is being delivered to).
const MAX_HOPS: usize = 3;

/// The session service of this process, when there is one (standalone).
pub type InProcessSessions = pushmail_common::grpc::InProcess<
    dyn pb::session_service_server::SessionService<
            HoldStream = tonic::codegen::BoxStream<pb::HoldEnd>,
        >,
>;

/// Session nodes by address.
pub(crate) struct Sessions {
    config: UpstreamConfig,
    any: TracedChannel,
    nodes: Mutex<HashMap<String, TracedChannel>>,
    /// Asked first when set, without the network; the bearer it is shown.
    local: Option<(
        InProcessSessions,
        tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
    )>,
}

impl Sessions {
    /// Channels per `config` (the service address, timeout and token);
    /// `local` is this process's session node, asked directly.
    pub(crate) fn new(
        config: UpstreamConfig,
        any: TracedChannel,
        local: Option<InProcessSessions>,
    ) -> Self {
        let bearer = format!("Bearer {}", config.token.expose()).parse().ok();
        Self {
            local: local.zip(bearer),
            config,
            any,
            nodes: Mutex::default(),
        }
    }

    fn node(&self, address: &str) -> Result<TracedChannel, Unavailable> {
        let mut nodes = self
            .nodes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(channel) = nodes.get(address) {
            return Ok(channel.clone());
        }
        let channel = UpstreamConfig {
            endpoint: address.to_owned(),
            ..self.config.clone()
        }
        .channel()
        .map_err(|source| Unavailable::Node {
            node: address.to_owned(),
            source,
        })?;
        // Nodes come and go with deployments; an address seen once is cheap to keep.
        if nodes.len() >= 10_000 {
            nodes.clear();
        }
        nodes.insert(address.to_owned(), channel.clone());
        Ok(channel)
    }

    /// Writes `notification` to the device's connection and waits for its ack.
    pub(crate) async fn deliver(
        &self,
        notification: pb::Notification,
        ack_timeout_ms: u32,
    ) -> Delivery {
        let mut channel: Option<TracedChannel> = None;
        for _ in 0..MAX_HOPS {
            let request = pb::DeliverRequest {
                notification: Some(notification.clone()),
                ack_timeout_ms,
            };
            let local = match &channel {
                None => self
                    .local
                    .as_ref()
                    .and_then(|(slot, bearer)| slot.get().map(|service| (service, bearer))),
                Some(_) => None,
            };
            let answer = match (local, &channel) {
                (Some((service, bearer)), _) => {
                    let mut request = tonic::Request::new(request);
                    request
                        .metadata_mut()
                        .insert("authorization", bearer.clone());
                    service.deliver(request).await
                }
                (None, None) => {
                    SessionServiceClient::new(self.any.clone())
                        .deliver(request)
                        .await
                }
                (None, Some(node)) => {
                    SessionServiceClient::new(node.clone())
                        .deliver(request)
                        .await
                }
            };
            let response = match answer {
                Ok(response) => response.into_inner(),
                Err(status) => return Delivery::Unavailable(Unavailable::Call(Box::new(status))),
            };
            match response.status() {
                pb::DeliverStatus::Acked => return Delivery::Acked,
                pb::DeliverStatus::AckTimeout | pb::DeliverStatus::ConnectionClosed => {
                    return Delivery::NoAck;
                }
                pb::DeliverStatus::NotConnectedHere if !response.redirect_node.is_empty() => {
                    channel = match self.node(&response.redirect_node) {
                        Ok(node) => Some(node),
                        Err(err) => return Delivery::Unavailable(err),
                    };
                }
                pb::DeliverStatus::NotConnectedHere | pb::DeliverStatus::Unspecified => {
                    return Delivery::NotConnected;
                }
            }
        }
        Delivery::NotConnected
    }
}
