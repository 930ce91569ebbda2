//! The delivery log's writer: every receipt on `pushmail.delivery.v1`
//! (session acks, dispatch's queued/suppressed/deferred, SMS centres'
//! submitted/delivered/failed) becomes a row the portal and the REST API
//! list per account, written once per event id (a redelivered record is
//! harmless), pruned after `deliveries.retention_days`. A receipt carrying
//! `uncounted_push_bytes` (session's, for replays and late acks) is also
//! counted as a push in the account's traffic when first written.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pushmail_common::bus::{self, EventBus, Handler, HandlerError, InboundRecord};
use pushmail_proto::topics::DELIVERY;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::domain::{AccountId, Delivery, TenantId};
use crate::registry::Registry;

/// The delivery log's settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveriesConfig {
    /// Record receipts at all (off: `ListDeliveries` lists nothing new).
    pub enabled: bool,
    /// Consumer group; every binding replica shares it.
    pub group: String,
    /// Receipts written at once.
    pub concurrency: usize,
    /// Days a receipt is kept.
    pub retention_days: u32,
}

impl Default for DeliveriesConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            group: "pushmail-binding-deliveries".to_owned(),
            concurrency: 16,
            retention_days: 30,
        }
    }
}

impl DeliveriesConfig {
    /// Checks the settings; `prefix` names the section in errors.
    pub fn validate(&self, prefix: &str) -> Result<(), pushmail_common::config::ConfigError> {
        use pushmail_common::config::ConfigError;
        if self.group.trim().is_empty() {
            return Err(ConfigError::invalid(
                format!("{prefix}group"),
                "must not be empty",
            ));
        }
        if self.concurrency == 0 {
            return Err(ConfigError::invalid(
                format!("{prefix}concurrency"),
                "must be positive",
            ));
        }
        // 0 days would prune every receipt as it is written.
        if self.retention_days == 0 {
            return Err(ConfigError::invalid(
                format!("{prefix}retention_days"),
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Writes receipts into the log.
pub(crate) struct DeliveryLog {
    registry: Registry,
}

/// `DELIVERY_STATUS_SMS_DELIVERED` → `sms_delivered`.
fn word(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix)
        .unwrap_or(name)
        .to_ascii_lowercase()
}

#[async_trait]
impl Handler for DeliveryLog {
    async fn handle(&self, record: &InboundRecord) -> Result<(), HandlerError> {
        let receipt = match bus::decode(DELIVERY, record) {
            Ok(receipt) => receipt,
            Err(e) => {
                // Not ours to dead-letter (the producers own the topic): a
                // record no reader understands is skipped, loudly.
                tracing::warn!(error = %pushmail_common::report::Report(&e), "undecodable delivery receipt skipped");
                return Ok(());
            }
        };
        let meta = receipt.meta.clone().unwrap_or_default();
        let (Ok(tenant), Ok(account)) = (
            TenantId::parse(&meta.tenant_id),
            AccountId::parse(&receipt.account_id),
        ) else {
            tracing::debug!(
                offset = record.offset,
                "receipt without tenant or account: not logged"
            );
            return Ok(());
        };
        let event_id = if meta.event_id.is_empty() || meta.event_id.len() > 64 {
            format!("{}:{}:{}", record.topic, record.partition, record.offset)
        } else {
            meta.event_id
        };
        let at_ms = meta
            .occurred_at
            .map(|t| t.seconds.saturating_mul(1_000) + i64::from(t.nanos / 1_000_000))
            .unwrap_or_else(crate::clock::now_ms);
        let delivery = Delivery {
            event_id,
            tenant,
            account,
            device_id: receipt.device_id.clone(),
            idempotency_key: receipt.idempotency_key.clone(),
            channel: word(receipt.channel().as_str_name(), "DELIVERY_CHANNEL_"),
            status: word(receipt.status().as_str_name(), "DELIVERY_STATUS_"),
            detail: receipt.detail.chars().take(500).collect(),
            sequence: receipt.sequence,
            at_ms,
        };
        self.registry
            .record_delivery(&delivery, receipt.uncounted_push_bytes)
            .await
            .map_err(HandlerError::new)
    }
}

/// Consumes receipts until `shutdown`, pruning old ones every hour.
pub(crate) async fn run(
    bus: Arc<dyn EventBus>,
    registry: Registry,
    config: DeliveriesConfig,
    shutdown: CancellationToken,
) -> Result<(), pushmail_common::bus::BusError> {
    if !config.enabled {
        return Ok(());
    }
    let retention_ms = i64::from(config.retention_days) * 86_400_000;
    let feed = crate::feed::Feed {
        topic: DELIVERY.name(),
        group: &config.group,
        lanes: config.concurrency,
        prune_every: Duration::from_secs(3_600),
    };
    let pruner = registry.clone();
    let prune = move || {
        let pruner = pruner.clone();
        async move {
            match pruner
                .prune_deliveries(crate::clock::now_ms() - retention_ms)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "old delivery receipts pruned"),
                Err(e) => {
                    tracing::warn!(error = %pushmail_common::report::Report(&e), "delivery log prune failed; next hour")
                }
            }
        }
    };
    let handler = Arc::new(DeliveryLog { registry });
    crate::feed::keep(bus, feed, handler, prune, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_would_lose_the_log_are_refused() {
        DeliveriesConfig::default().validate("deliveries.").unwrap();
        for (bad, key) in [
            (
                DeliveriesConfig {
                    retention_days: 0,
                    ..Default::default()
                },
                "deliveries.retention_days",
            ),
            (
                DeliveriesConfig {
                    concurrency: 0,
                    ..Default::default()
                },
                "deliveries.concurrency",
            ),
            (
                DeliveriesConfig {
                    group: " ".into(),
                    ..Default::default()
                },
                "deliveries.group",
            ),
        ] {
            let error = bad.validate("deliveries.").unwrap_err().to_string();
            assert!(error.contains(key), "{error}");
        }
    }
}
