//! Publishing a delivery receipt off the delivery path: the mail itself
//! was delivered, so a receipt the broker refuses for a while is retried
//! with backoff in the background, and one it keeps refusing is logged and
//! counted rather than failing anyone's delivery.

use std::sync::Arc;
use std::time::Duration;

use pushmail_proto::topics;

use super::{EventBus, OutboundRecord};
use crate::backoff::Backoff;

/// Publish attempts before a receipt is given up.
const ATTEMPTS: u32 = 5;
/// Waits between attempts: 100 ms doubling, about 1.5 s in all.
const RETRY: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));

/// Counts receipts given up, labelled by the publishing `service`.
pub const METRIC_RECEIPTS_LOST: &str = "pushmail_receipts_lost_total";

/// Publishes `record` on the delivery topic, retrying with backoff.
pub async fn publish_receipt(
    bus: Arc<dyn EventBus>,
    record: OutboundRecord,
    service: &'static str,
) {
    for attempt in 1..=ATTEMPTS {
        match bus.publish(topics::DELIVERY.name(), record.clone()).await {
            Ok(_) => return,
            Err(err) if attempt < ATTEMPTS => {
                tracing::warn!(error = %crate::report::Report(&err), attempt, "receipt not published yet; retrying");
                tokio::time::sleep(RETRY.delay(attempt)).await;
            }
            Err(err) => {
                tracing::error!(error = %crate::report::Report(&err), "receipt lost after {ATTEMPTS} attempts");
                metrics::counter!(METRIC_RECEIPTS_LOST, "service" => service).increment(1);
            }
        }
    }
}
