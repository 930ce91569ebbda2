//! The digest: what quiet hours or the tenant's push rate held for a phone,
//! sent when its window ends as one notification per collapse key.

use std::sync::Arc;

use super::Dispatcher;
use crate::domain::{AccountId, Target, TenantId};
use crate::failure::Failure;
use crate::ladder::{self, Errand};
use crate::policy::{Policy, Verdict};
use crate::receipts::Receipts;
use crate::state::Due;

impl Dispatcher {
    /// Sends what was held for `due`'s phone, one digest per collapse key.
    pub(crate) async fn digest(&self, due: &Due, receipts: &Receipts) -> Result<(), Failure> {
        let tenant = TenantId::new(due.tenant.clone())?;
        for (held, count) in &due.digests {
            let mut n = held.clone();
            n.idempotency_key = format!("digest:{}:{}", due.until_ms, n.collapse_key);
            n.digest_count = *count;
            let account = AccountId::new(n.account_id.clone())?;
            // Binding knows the phone's number now (for its wake-up).
            let Some(reach) = self.reach_of(&tenant, &account, &due.device).await? else {
                continue;
            };
            let target = Target {
                tenant: tenant.clone(),
                account,
                reach,
                // Policy was applied when the mails were held.
                policy: Arc::new(Policy::new(None)),
            };
            let plan = ladder::plan(&target.reach, Errand::Digest, Verdict::Push, None);
            self.carry_out(plan, &target, n, receipts).await?;
        }
        Ok(())
    }
}
