//! The SMS outbox: where no SMS centre reads `pushmail.sms.outbound.v1`
//! (standalone, a development platform), every SMS the platform sends —
//! verification codes, wake-ups, notices — is kept as a person reads it
//! (a WAP Push read back to its text and URL) so the portal and the REST
//! API can show it: a newcomer binds their own number with the code shown
//! there. Kept in binding's database (SQLite under standalone's data
//! directory: it outlives a restart, as a code's validity does), one row
//! per SMS event, pruned by age and count. Off unless enabled: with it on,
//! a verification code proves nothing about holding the number.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pushmail_common::bus::{self, EventBus, Handler, HandlerError, InboundRecord};
use pushmail_common::config::ConfigError;
use pushmail_proto::topics::SMS_OUTBOUND;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::domain::{OutboxSms, TenantId};
use crate::registry::Registry;

/// The SMS outbox's settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SmsOutboxConfig {
    /// Keep every outbound SMS for the portal and `ListOutboundSms`.
    /// Off in production (an SMS centre sends them); standalone turns it on.
    pub enabled: bool,
    /// Consumer group; every binding replica shares it.
    pub group: String,
    /// Hours an SMS is kept.
    pub retention_hours: u32,
    /// Most SMS kept (the oldest go first).
    pub max_messages: u32,
}

impl Default for SmsOutboxConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            group: "pushmail-binding-sms-outbox".to_owned(),
            retention_hours: 24,
            max_messages: 10_000,
        }
    }
}

impl SmsOutboxConfig {
    /// Checks the settings; `prefix` names the section in errors.
    pub(crate) fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.group.trim().is_empty() {
            return Err(ConfigError::invalid(
                format!("{prefix}group"),
                "must not be empty",
            ));
        }
        if self.retention_hours == 0 {
            return Err(ConfigError::invalid(
                format!("{prefix}retention_hours"),
                "must be at least 1",
            ));
        }
        if self.max_messages == 0 {
            return Err(ConfigError::invalid(
                format!("{prefix}max_messages"),
                "must be positive",
            ));
        }
        Ok(())
    }
}

/// Keeps each SMS event in the outbox.
struct Keeper {
    registry: Registry,
}

#[async_trait]
impl Handler for Keeper {
    async fn handle(&self, record: &InboundRecord) -> Result<(), HandlerError> {
        let sms = match bus::decode(SMS_OUTBOUND, record) {
            Ok(sms) => sms,
            Err(e) => {
                // The producers own the topic and its dead letters.
                tracing::warn!(error = %pushmail_common::report::Report(&e), "undecodable SMS skipped by the outbox");
                return Ok(());
            }
        };
        let meta = sms.meta.clone().unwrap_or_default();
        let Ok(tenant) = TenantId::parse(&meta.tenant_id) else {
            tracing::debug!(offset = record.offset, "SMS without a tenant: not kept");
            return Ok(());
        };
        let id = if meta.event_id.is_empty() || meta.event_id.len() > 64 {
            format!("{}:{}:{}", record.topic, record.partition, record.offset)
        } else {
            meta.event_id
        };
        let at_ms = meta
            .occurred_at
            .map(|t| t.seconds.saturating_mul(1_000) + i64::from(t.nanos / 1_000_000))
            .unwrap_or_else(crate::clock::now_ms);
        let shown = pushmail_sms_encoding::shown::show(&sms);
        let kept = OutboxSms {
            id,
            tenant,
            msisdn: sms.msisdn.chars().take(32).collect(),
            purpose: shown.purpose.to_owned(),
            kind: shown.kind.as_str().to_owned(),
            text: shown.text.chars().take(2_000).collect(),
            url: shown.url.chars().take(2_000).collect(),
            account_id: sms.account_id.chars().take(64).collect(),
            device_id: sms.device_id.chars().take(64).collect(),
            at_ms,
        };
        self.registry
            .record_sms(&kept)
            .await
            .map_err(HandlerError::new)
    }
}

/// Keeps outbound SMS until `shutdown` (when enabled), pruning every ten
/// minutes.
pub(crate) async fn run(
    bus: Arc<dyn EventBus>,
    registry: Registry,
    config: SmsOutboxConfig,
    shutdown: CancellationToken,
) -> Result<(), pushmail_common::bus::BusError> {
    if !config.enabled {
        return Ok(());
    }
    let retention_ms = i64::from(config.retention_hours) * 3_600_000;
    let feed = crate::feed::Feed {
        topic: SMS_OUTBOUND.name(),
        group: &config.group,
        lanes: 4,
        prune_every: Duration::from_secs(600),
    };
    let (pruner, keep) = (registry.clone(), config.max_messages);
    let prune = move || {
        let pruner = pruner.clone();
        async move {
            let before = crate::clock::now_ms() - retention_ms;
            match pruner.prune_sms(before, keep).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "old SMS pruned from the outbox"),
                Err(e) => {
                    tracing::warn!(error = %pushmail_common::report::Report(&e), "SMS outbox prune failed; trying later")
                }
            }
        }
    };
    crate::feed::keep(bus, feed, Arc::new(Keeper { registry }), prune, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_keep_nothing_are_refused() {
        SmsOutboxConfig::default().validate("sms_outbox.").unwrap();
        for (bad, key) in [
            (
                SmsOutboxConfig {
                    retention_hours: 0,
                    ..Default::default()
                },
                "sms_outbox.retention_hours",
            ),
            (
                SmsOutboxConfig {
                    max_messages: 0,
                    ..Default::default()
                },
                "sms_outbox.max_messages",
            ),
            (
                SmsOutboxConfig {
                    group: String::new(),
                    ..Default::default()
                },
                "sms_outbox.group",
            ),
        ] {
            let error = bad.validate("sms_outbox.").unwrap_err().to_string();
            assert!(error.contains(key), "{error}");
        }
    }
}
