//! Receipts for what a device acked that no one else reports. Dispatch
//! logs the acks it waited for (and counts those pushes); a notification
//! replayed from the outbox, or acked after dispatch stopped waiting, would
//! otherwise end in the delivery log as queued. Session publishes ACKED for
//! those, with the push's size so binding counts it in the account's
//! traffic. Published in the background: the device's ack is not held up by
//! the broker, and a receipt the broker keeps refusing is counted as lost.

use std::collections::HashMap;
use std::sync::Arc;

use pushmail_common::bus::{self, EventBus, EventContext};
use pushmail_proto::events::v1 as events;
use pushmail_proto::session::v1::Notification;
use pushmail_proto::topics;

/// Who heard of the ack of one sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Heard {
    /// Dispatch was waiting and got it: it logs the receipt.
    Dispatch,
    /// Dispatch had stopped waiting (its deadline passed, or it went away).
    Late,
}

/// Who heard an ack handed to a waiting caller: dispatch, unless its end
/// of the channel was gone.
pub(crate) fn heard<T>(sent: Result<(), T>) -> Heard {
    if sent.is_ok() {
        Heard::Dispatch
    } else {
        Heard::Late
    }
}

/// Publishes receipts to the delivery log.
#[derive(Clone)]
pub(crate) struct Receipts {
    bus: Arc<dyn EventBus>,
}

impl std::fmt::Debug for Receipts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receipts").finish_non_exhaustive()
    }
}

impl Receipts {
    /// Receipts on `bus`.
    pub(crate) fn new(bus: Arc<dyn EventBus>) -> Self {
        Self { bus }
    }

    /// The device acked `trimmed` (what the outbox let go of); `heard`
    /// says, per sequence, who was waiting for it (none: a replay).
    pub(crate) fn acked(
        &self,
        device: &str,
        trimmed: Vec<Notification>,
        heard: &HashMap<u64, Heard>,
    ) {
        let now = pushmail_common::clock::now_ms();
        for notification in trimmed {
            let channel = match heard.get(&notification.sequence) {
                Some(Heard::Dispatch) => continue,
                Some(Heard::Late) => events::DeliveryChannel::HeldConnection,
                None => events::DeliveryChannel::Replay,
            };
            let record = receipt(device, &notification, channel, now);
            tokio::spawn(bus::publish_receipt(self.bus.clone(), record, "session"));
        }
    }
}

/// The ACKED receipt of `notification`, as the delivery topic carries it.
fn receipt(
    device: &str,
    notification: &Notification,
    channel: events::DeliveryChannel,
    now_ms: i64,
) -> bus::OutboundRecord {
    let context = EventContext::new(notification.tenant_id.clone());
    let receipt = events::DeliveryReceipt {
        meta: Some(context.meta(now_ms)),
        device_id: device.to_owned(),
        account_id: notification.account_id.clone(),
        idempotency_key: notification.idempotency_key.clone(),
        channel: channel.into(),
        status: events::DeliveryStatus::Acked.into(),
        sequence: notification.sequence,
        request_id: String::new(),
        detail: String::new(),
        // As dispatch counts its own: the notification's encoded size.
        uncounted_push_bytes: prost::Message::encoded_len(notification) as u64,
    };
    bus::encode(topics::DELIVERY, device, &context, &receipt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replayed_ack_is_a_counted_acked_receipt_for_its_account() {
        let notification = Notification {
            tenant_id: "t1".to_owned(),
            device_id: "d1".to_owned(),
            account_id: "a1".to_owned(),
            idempotency_key: "INBOX/7/42".to_owned(),
            sequence: 3,
            subject: "hello".to_owned(),
            ..Default::default()
        };
        let record = receipt("d1", &notification, events::DeliveryChannel::Replay, 1_000);
        let inbound = bus::InboundRecord {
            topic: topics::DELIVERY.name().to_owned(),
            partition: 0,
            offset: 0,
            key: record.key,
            payload: record.payload,
            headers: record.headers,
            timestamp_ms: None,
        };
        let decoded: events::DeliveryReceipt = bus::decode(topics::DELIVERY, &inbound).unwrap();
        assert_eq!(decoded.meta.as_ref().unwrap().tenant_id, "t1");
        assert_eq!(
            (
                decoded.account_id.as_str(),
                decoded.idempotency_key.as_str(),
                decoded.sequence,
                decoded.status(),
                decoded.channel(),
            ),
            (
                "a1",
                "INBOX/7/42",
                3,
                events::DeliveryStatus::Acked,
                events::DeliveryChannel::Replay
            )
        );
        assert_eq!(
            decoded.uncounted_push_bytes,
            prost::Message::encoded_len(&notification) as u64
        );
    }
}
