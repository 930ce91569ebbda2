//! How long the platform's own store keeps a message: per tenant, counted
//! from its arrival. Never longer than the blob store keeps its bytes
//! (`blob.retention_days`, checked when the config loads), so no listed
//! message has lost its content.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use pushmail_common::clock::now_ms;
use pushmail_common::report::Report;
use tokio_util::sync::CancellationToken;

use super::{Index, IndexError};

const DAY_MS: i64 = 86_400_000;

/// Days kept, by tenant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Retention {
    /// Every tenant not named below; 0 keeps everything.
    pub days: u32,
    /// Tenants that keep their mail a different number of days.
    pub tenants: BTreeMap<String, u32>,
}

impl Retention {
    /// `tenant`'s days (0: kept).
    pub fn days_of(&self, tenant: &str) -> u32 {
        self.tenants.get(tenant).copied().unwrap_or(self.days)
    }

    /// Removes what is past every tenant's retention; how many messages
    /// went.
    pub async fn sweep(&self, index: &dyn Index) -> Result<u64, IndexError> {
        let now = now_ms();
        let mut gone = 0;
        for tenant in index.tenants().await? {
            let days = self.days_of(&tenant);
            if days == 0 {
                continue;
            }
            gone += index
                .expire(&tenant, now.saturating_sub(i64::from(days) * DAY_MS))
                .await?;
        }
        Ok(gone)
    }
}

/// Sweeps every `interval` until `shutdown`.
pub async fn sweep_every(
    index: Arc<dyn Index>,
    retention: Retention,
    interval: Duration,
    shutdown: CancellationToken,
) {
    // Not at start: every replica would sweep at once on a rollout.
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match retention.sweep(index.as_ref()).await {
            Ok(0) => {}
            Ok(gone) => tracing::info!(gone, "messages past retention removed"),
            Err(error) => tracing::warn!(error = %Report(&error), "the retention sweep failed"),
        }
    }
}
