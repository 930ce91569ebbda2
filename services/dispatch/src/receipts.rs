//! Where a mail's receipts go, chosen by the caller and passed down: in a
//! consumer lane they are left publishing while the lane goes on to the
//! account's next mail, and the mail is committed once they are acked (its
//! tail, see [`pushmail_common::bus::Handler::handle_pipelined`]); in the
//! digest loop each is published before the next step.

use std::sync::{Arc, Mutex, PoisonError};

use pushmail_common::bus::{EventBus, EventContext, Tail, encode};
use pushmail_common::clock::now_ms;
use pushmail_proto::events::v1 as events;
use pushmail_proto::session::v1::Notification;
use pushmail_proto::topics;
use tokio::task::JoinHandle;

use crate::domain::Target;
use crate::failure::Failure;

/// One receipt: what happened to one notification for one phone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Receipt<'a> {
    /// The phone.
    pub(crate) target: &'a Target,
    /// What it was sent (its key and sequence are reported).
    pub(crate) notification: &'a Notification,
    /// Which rung.
    pub(crate) channel: events::DeliveryChannel,
    /// How it ended.
    pub(crate) status: events::DeliveryStatus,
    /// Why, for people.
    pub(crate) detail: &'a str,
    /// The SMS request it became, if any.
    pub(crate) request_id: &'a str,
}

impl<'a> Receipt<'a> {
    /// A receipt without an SMS request.
    pub(crate) fn new(
        target: &'a Target,
        notification: &'a Notification,
        channel: events::DeliveryChannel,
        status: events::DeliveryStatus,
        detail: &'a str,
    ) -> Self {
        Self {
            target,
            notification,
            channel,
            status,
            detail,
            request_id: "",
        }
    }

    fn event(&self, context: &EventContext) -> events::DeliveryReceipt {
        events::DeliveryReceipt {
            meta: Some(context.meta(now_ms())),
            device_id: self.target.reach.device().to_owned(),
            account_id: self.target.account.as_str().to_owned(),
            idempotency_key: self.notification.idempotency_key.clone(),
            channel: self.channel.into(),
            status: self.status.into(),
            sequence: self.notification.sequence,
            request_id: self.request_id.to_owned(),
            detail: self.detail.to_owned(),
            uncounted_push_bytes: 0,
        }
    }
}

/// The sink a mail's receipts go to.
pub(crate) struct Receipts {
    bus: Arc<dyn EventBus>,
    /// Publishes left running (pipelined), or `None`: each in line.
    pending: Option<Mutex<Vec<JoinHandle<()>>>>,
}

impl Receipts {
    /// Receipts published in the background, each retried until the broker
    /// takes it; [`Receipts::into_tail`] waits for them.
    pub(crate) fn pipelined(bus: Arc<dyn EventBus>) -> Self {
        Self {
            bus,
            pending: Some(Mutex::default()),
        }
    }

    /// Receipts published before `publish` returns; a refusal fails the
    /// step (and so is retried with it).
    pub(crate) fn inline(bus: Arc<dyn EventBus>) -> Self {
        Self { bus, pending: None }
    }

    /// Publishes `receipt` on the delivery topic, keyed by the phone.
    pub(crate) async fn publish(&self, receipt: Receipt<'_>) -> Result<(), Failure> {
        let context = EventContext::new(receipt.target.tenant.as_str().to_owned());
        let record = encode(
            topics::DELIVERY,
            receipt.target.reach.receipt_key(),
            &context,
            &receipt.event(&context),
        );
        match &self.pending {
            Some(pending) => {
                let publish = tokio::spawn(pushmail_common::bus::publish_receipt(
                    self.bus.clone(),
                    record,
                    "dispatch",
                ));
                pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(publish);
                Ok(())
            }
            None => {
                self.bus.publish(topics::DELIVERY.name(), record).await?;
                Ok(())
            }
        }
    }

    /// What is left publishing, to finish before the mail is committed.
    pub(crate) fn into_tail(self) -> Option<Tail> {
        let publishes = self
            .pending?
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        if publishes.is_empty() {
            return None;
        }
        Some(Box::pin(async move {
            for publish in publishes {
                let _ = publish.await;
            }
        }))
    }
}
