//! The SMS outbox (see `crate::sms_outbox`): kept, listed, pruned.

use super::{ApiError, Registry};
use crate::domain::{DeliveryCursor, OutboxSms, TenantId};

impl Registry {
    /// Whether the outbox is kept on this platform.
    pub(crate) fn sms_outbox_enabled(&self) -> bool {
        self.settings().sms_outbox
    }

    /// Keeps one SMS (a repeat of the same event changes nothing).
    pub(crate) async fn record_sms(&self, sms: &OutboxSms) -> Result<(), ApiError> {
        Ok(self.store().record_sms(sms).await?)
    }

    /// The outbox newest first: the tenant's, or every tenant's (`None`,
    /// operators). `NotFound` where the outbox is off, as if it did not
    /// exist: nothing about SMS is shown where an SMS centre sends them.
    pub(crate) async fn sms_outbox(
        &self,
        tenant: Option<TenantId>,
        after: Option<&DeliveryCursor>,
        limit: u32,
    ) -> Result<Vec<OutboxSms>, ApiError> {
        if !self.sms_outbox_enabled() {
            return Err(ApiError::NotFound("SMS outbox"));
        }
        if let Some(tenant) = tenant {
            self.require_tenant(tenant).await?;
        }
        Ok(self
            .store()
            .sms_outbox(tenant, after, limit.clamp(1, super::onboarding::MAX_PAGE))
            .await?)
    }

    /// Drops SMS sent before `before_ms` and past the newest `keep`.
    pub(crate) async fn prune_sms(&self, before_ms: i64, keep: u32) -> Result<u64, ApiError> {
        Ok(self.store().prune_sms(before_ms, keep).await?)
    }
}
