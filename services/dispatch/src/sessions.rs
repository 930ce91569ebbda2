//! `Deliver` to the session node holding a device: ask any node (the
//! service address); one that does not hold the device names the one that
//! does, and that node is asked next over a channel kept per node.

use std::collections::HashMap;
use std::sync::Mutex;

use pushmail_common::grpc::{TracedChannel, UpstreamConfig};
use pushmail_proto::session::v1 as pb;
use pushmail_proto::session::v1::session_service_client::SessionServiceClient;

/// How a delivery over a held connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The device acked it.
    Acked,
    /// No node holds the device.
    NotConnected,
    /// The device did not ack in time, or its connection closed.
    NoAck,
    /// No session node answered (the outbox still has it).
    Unavailable(String),
}

/// Most redirects followed (a device moving while it is being delivered to).
const MAX_HOPS: usize = 3;

/// Session nodes by address.
pub struct Sessions {
    config: UpstreamConfig,
    any: TracedChannel,
    nodes: Mutex<HashMap<String, TracedChannel>>,
}

impl Sessions {
    /// Channels per `config` (the service address, timeout and token).
    pub fn new(config: UpstreamConfig, any: TracedChannel) -> Self {
        Self {
            config,
            any,
            nodes: Mutex::default(),
        }
    }

    fn node(&self, address: &str) -> Result<TracedChannel, String> {
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
        .map_err(|e| e.to_string())?;
        // Nodes come and go with deployments; an address seen once is cheap to keep.
        if nodes.len() >= 10_000 {
            nodes.clear();
        }
        nodes.insert(address.to_owned(), channel.clone());
        Ok(channel)
    }

    /// Writes `notification` to the device's connection and waits for its ack.
    pub async fn deliver(&self, notification: pb::Notification, ack_timeout_ms: u32) -> Delivery {
        let mut channel = self.any.clone();
        for _ in 0..MAX_HOPS {
            let request = pb::DeliverRequest {
                notification: Some(notification.clone()),
                ack_timeout_ms,
            };
            let response = match SessionServiceClient::new(channel).deliver(request).await {
                Ok(response) => response.into_inner(),
                Err(status) => return Delivery::Unavailable(status.to_string()),
            };
            match response.status() {
                pb::DeliverStatus::Acked => return Delivery::Acked,
                pb::DeliverStatus::AckTimeout | pb::DeliverStatus::ConnectionClosed => {
                    return Delivery::NoAck;
                }
                pb::DeliverStatus::NotConnectedHere if !response.redirect_node.is_empty() => {
                    channel = match self.node(&response.redirect_node) {
                        Ok(channel) => channel,
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
