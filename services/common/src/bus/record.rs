//! Records as the services see them, independent of the broker client.

use std::collections::BTreeMap;

/// Header names pushmail puts on every record.
pub mod header {
    /// Unique id of the event (UUIDv7).
    pub const EVENT_ID: &str = "event-id";
    /// Tenant the event belongs to.
    pub const TENANT_ID: &str = "tenant-id";
    /// `application/x-protobuf; messageType=<fully qualified name>`.
    pub const CONTENT_TYPE: &str = "content-type";
    /// W3C trace context.
    pub const TRACEPARENT: &str = "traceparent";
    /// W3C trace state.
    pub const TRACESTATE: &str = "tracestate";
}

/// Record headers: UTF-8 names and values (binary values are not used).
pub type Headers = BTreeMap<String, String>;

/// A record to publish.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutboundRecord {
    /// Partitioning key; records with one key keep their order.
    pub key: Vec<u8>,
    /// Encoded payload.
    pub payload: Vec<u8>,
    /// Headers.
    pub headers: Headers,
}

/// Where a published record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
}

/// A record received from a subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundRecord {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// Partitioning key, empty when none was set.
    pub key: Vec<u8>,
    /// Encoded payload.
    pub payload: Vec<u8>,
    /// Headers.
    pub headers: Headers,
    /// Broker or producer timestamp, milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
}

impl InboundRecord {
    /// `topic/partition@offset`, for logs.
    pub fn coordinates(&self) -> String {
        format!("{}/{}@{}", self.topic, self.partition, self.offset)
    }
}
