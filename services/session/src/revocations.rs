//! The revocation feed: `BindingChanged{DEVICE_REVOKED}` from the bus voids
//! the device's tokens issued before the event's time and closes its live
//! connection; `DEVICE_WIPE_ORDERED` lets its held connection go, so the
//! phone comes back and hears the wipe. Every node reads the whole feed (its own consumer group,
//! from the start of the topic, so a restarted node knows every cut-off
//! still within a token's lifetime).

use std::sync::Arc;

use async_trait::async_trait;
use pushmail_common::backoff::Backoff;
use pushmail_common::bus::{
    self, EventBus, Handler, HandlerError, InboundRecord, SubscribeOptions,
};
use pushmail_common::host::Host;
use pushmail_proto::events::v1::BindingChangeKind;
use pushmail_proto::topics::BINDING_CHANGED;

use crate::hub::Command;
use crate::node::Node;

struct Feed {
    node: Arc<Node>,
}

#[async_trait]
impl Handler for Feed {
    async fn handle(&self, record: &InboundRecord) -> Result<(), HandlerError> {
        let event = match bus::decode(BINDING_CHANGED, record) {
            Ok(event) => event,
            Err(err) => {
                // A record that never decodes must not stop the feed.
                tracing::error!(error = %pushmail_common::report::Report(&err), "undecodable BindingChanged skipped");
                return Ok(());
            }
        };
        if event.device_id.is_empty() {
            return Ok(());
        }
        if event.kind() == BindingChangeKind::DeviceWipeOrdered {
            // Let go as a drain lets go: a held Ping is answered and its
            // phone comes straight back, to be handed the wipe.
            if let Some(handle) = self.node.hub.get(&event.device_id) {
                let _ = handle
                    .tx
                    .try_send(Command::Drain(std::time::Duration::ZERO));
            }
            return Ok(());
        }
        if event.kind() != BindingChangeKind::DeviceRevoked {
            return Ok(());
        }
        let cutoff = event
            .meta
            .as_ref()
            .and_then(|m| m.occurred_at.as_ref())
            .map_or(i64::MAX, pushmail_common::clock::from_timestamp);
        self.node.revocations.revoke(&event.device_id, cutoff);
        if let Some(handle) = self.node.hub.get(&event.device_id) {
            let _ = handle.tx.try_send(Command::Revoked);
        }
        Ok(())
    }
}

/// Subscribes and runs the feed as a host task.
pub(crate) async fn spawn(
    host: &mut Host,
    bus: Arc<dyn EventBus>,
    node: Arc<Node>,
) -> Result<(), crate::Error> {
    bus.ensure_topic(BINDING_CHANGED.name(), 12).await?;
    let subscription = bus
        .subscribe(SubscribeOptions {
            group: format!("pushmail-session-{}", uuid::Uuid::now_v7().simple()),
            topics: vec![BINDING_CHANGED.name().to_owned()],
        })
        .await?;
    let shutdown = host.shutdown();
    host.spawn("revocations", async move {
        bus::consume(subscription, &Feed { node }, Backoff::default(), shutdown).await
    });
    Ok(())
}
