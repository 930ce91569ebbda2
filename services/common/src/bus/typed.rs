//! Protobuf events on the bus: the topic decides the type, headers carry
//! the event id, tenant and trace context.

use prost::Message;
use pushmail_proto::topics::Topic;

use super::{BusError, Headers, InboundRecord, OutboundRecord, Undecodable, header};
use crate::telemetry;

/// Identity of an event being published.
#[derive(Debug, Clone)]
pub struct EventContext {
    /// Unique event id (UUIDv7 from [`EventContext::new`]).
    pub event_id: String,
    /// Tenant the event belongs to.
    pub tenant_id: String,
}

impl EventContext {
    /// A fresh event id for `tenant_id`.
    pub fn new(tenant_id: impl Into<String>) -> Self {
        Self {
            event_id: uuid::Uuid::now_v7().to_string(),
            tenant_id: tenant_id.into(),
        }
    }
}

impl EventContext {
    /// The event's metadata, with the current span's trace context.
    pub fn meta(&self, at_ms: i64) -> pushmail_proto::common::v1::EventMeta {
        let trace = telemetry::current_trace_headers();
        pushmail_proto::common::v1::EventMeta {
            event_id: self.event_id.clone(),
            tenant_id: self.tenant_id.clone(),
            occurred_at: Some(crate::clock::timestamp(at_ms)),
            traceparent: trace.get("traceparent").cloned().unwrap_or_default(),
            tracestate: trace.get("tracestate").cloned().unwrap_or_default(),
        }
    }
}

/// Encodes `message` for `topic` with pushmail's headers and the current
/// span's trace context.
pub fn encode<M: Message>(
    topic: Topic<M>,
    key: &str,
    context: &EventContext,
    message: &M,
) -> OutboundRecord {
    let mut headers: Headers = telemetry::current_trace_headers();
    headers.insert(header::EVENT_ID.to_owned(), context.event_id.clone());
    headers.insert(header::TENANT_ID.to_owned(), context.tenant_id.clone());
    headers.insert(
        header::CONTENT_TYPE.to_owned(),
        format!(
            "application/x-protobuf; messageType={}",
            topic.message_type()
        ),
    );
    OutboundRecord {
        key: key.as_bytes().to_vec(),
        payload: message.encode_to_vec(),
        headers,
    }
}

/// Decodes a record of `topic`, with its coordinates in the error.
pub fn decode<M: Message + Default>(
    topic: Topic<M>,
    record: &InboundRecord,
) -> Result<M, BusError> {
    let decode_error = |source: Undecodable| BusError::Decode {
        topic: record.topic.clone(),
        partition: record.partition,
        offset: record.offset,
        source,
    };
    if record.topic != topic.name() {
        return Err(decode_error(Undecodable::WrongTopic(topic.name())));
    }
    M::decode(record.payload.as_slice()).map_err(|e| decode_error(e.into()))
}

#[cfg(test)]
mod tests {
    use pushmail_proto::events::v1::MailArrived;
    use pushmail_proto::topics::{MAIL_ARRIVED, SMS_OUTBOUND};

    use super::*;

    fn inbound(topic: &str, payload: Vec<u8>) -> InboundRecord {
        InboundRecord {
            topic: topic.to_owned(),
            partition: 1,
            offset: 7,
            key: Vec::new(),
            payload,
            headers: Headers::new(),
            timestamp_ms: None,
        }
    }

    #[test]
    fn round_trip_keeps_payload_and_sets_headers() {
        let event = MailArrived {
            account_id: "a1".into(),
            uid: 42,
            ..Default::default()
        };
        let out = encode(MAIL_ARRIVED, "a1", &EventContext::new("t1"), &event);
        assert_eq!(out.key, b"a1");
        assert_eq!(out.headers[header::TENANT_ID], "t1");
        assert!(out.headers[header::CONTENT_TYPE].ends_with("pushmail.events.v1.MailArrived"));
        let back = decode(MAIL_ARRIVED, &inbound(MAIL_ARRIVED.name(), out.payload)).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn garbage_payload_is_a_decode_error_with_coordinates() {
        let err = decode(
            MAIL_ARRIVED,
            &inbound(MAIL_ARRIVED.name(), vec![0xff, 0xff, 0xff]),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("pushmail.mail.arrived.v1/1@7"),
            "{err}"
        );
    }

    #[test]
    fn record_of_another_topic_is_refused() {
        let err = decode(SMS_OUTBOUND, &inbound(MAIL_ARRIVED.name(), Vec::new())).unwrap_err();
        assert!(matches!(err, BusError::Decode { .. }));
    }
}
