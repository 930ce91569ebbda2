//! Giving up on a record: `pushmail.dispatch.dlq.v1` gets it whole, with
//! where it came from and why, so an operator can replay it once the
//! cause is fixed. Shared by every consumer that may meet a poison record.

use pushmail_proto::events::v1::DispatchDeadLetter;
use pushmail_proto::topics::DISPATCH_DLQ;

use super::{BusError, EventBus, EventContext, InboundRecord, encode, header};

/// Publishes `record` to the dead-letter topic with `reason` after
/// `attempts`, keyed and tenanted as the original.
pub async fn dead_letter(
    bus: &dyn EventBus,
    record: &InboundRecord,
    reason: &str,
    attempts: u32,
) -> Result<(), BusError> {
    let tenant = record
        .headers
        .get(header::TENANT_ID)
        .cloned()
        .unwrap_or_default();
    let context = EventContext::new(tenant);
    let letter = DispatchDeadLetter {
        meta: Some(context.meta(crate::clock::now_ms())),
        source_topic: record.topic.clone(),
        source_partition: record.partition,
        source_offset: record.offset,
        reason: reason.to_owned(),
        attempts,
        payload: record.payload.clone(),
    };
    let key = String::from_utf8_lossy(&record.key).into_owned();
    tracing::warn!(record = %record.coordinates(), reason, attempts, "record dead-lettered");
    bus.publish(
        DISPATCH_DLQ.name(),
        encode(DISPATCH_DLQ, &key, &context, &letter),
    )
    .await
    .map(drop)
}
