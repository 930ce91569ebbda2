//! Topic names bound to their payload types, so a producer cannot put a
//! `MailArrived` on the SMS topic by mistake.

use std::marker::PhantomData;

use crate::events::v1::{
    BindingChanged, DeliveryReceipt, DispatchDeadLetter, MailArrived, MailboxChanged, SmsOutbound,
};

/// A versioned topic name and the message type its records carry.
#[derive(Debug)]
pub struct Topic<M> {
    name: &'static str,
    message_type: &'static str,
    _payload: PhantomData<fn() -> M>,
}

impl<M> Topic<M> {
    const fn new(name: &'static str, message_type: &'static str) -> Self {
        Self {
            name,
            message_type,
            _payload: PhantomData,
        }
    }

    /// The Kafka topic name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// Fully qualified protobuf type of the payload, sent in the `content-type` header.
    pub const fn message_type(&self) -> &'static str {
        self.message_type
    }
}

impl<M> Clone for Topic<M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M> Copy for Topic<M> {}

/// New mail, keyed by account id. From ingest.
pub const MAIL_ARRIVED: Topic<MailArrived> =
    Topic::new("pushmail.mail.arrived.v1", "pushmail.events.v1.MailArrived");
/// Binding changes, keyed by account id. From binding.
pub const BINDING_CHANGED: Topic<BindingChanged> = Topic::new(
    "pushmail.binding.changed.v1",
    "pushmail.events.v1.BindingChanged",
);
/// A phone's changes to its mailbox, keyed by account id. From the
/// mailbox service.
pub const MAILBOX_CHANGED: Topic<MailboxChanged> = Topic::new(
    "pushmail.mailbox.changed.v1",
    "pushmail.events.v1.MailboxChanged",
);
/// SMS requests for partner SMS centres, keyed by MSISDN.
pub const SMS_OUTBOUND: Topic<SmsOutbound> =
    Topic::new("pushmail.sms.outbound.v1", "pushmail.events.v1.SmsOutbound");
/// Delivery receipts, keyed by device id.
pub const DELIVERY: Topic<DeliveryReceipt> =
    Topic::new("pushmail.delivery.v1", "pushmail.events.v1.DeliveryReceipt");
/// Dispatch's dead letters, with the reason.
pub const DISPATCH_DLQ: Topic<DispatchDeadLetter> = Topic::new(
    "pushmail.dispatch.dlq.v1",
    "pushmail.events.v1.DispatchDeadLetter",
);

/// Every topic name, for provisioning.
pub const ALL: &[&str] = &[
    MAIL_ARRIVED.name(),
    BINDING_CHANGED.name(),
    MAILBOX_CHANGED.name(),
    SMS_OUTBOUND.name(),
    DELIVERY.name(),
    DISPATCH_DLQ.name(),
];
