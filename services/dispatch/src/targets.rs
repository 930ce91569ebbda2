//! Who a mail goes to: binding's `GetDeliveryTargets`, cached here for
//! `delivery.targets_cache_ms` so a burst of mail to one account costs one
//! call. Every replica reads `pushmail.binding.changed.v1` and drops an
//! account's entry when its bindings, devices or preferences change, so
//! the TTL only bounds what a lost change event could leave stale.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pushmail_common::bus::{Handler, HandlerError, InboundRecord, decode};
use pushmail_common::grpc::TracedChannel;
use pushmail_proto::binding::v1 as binding;
use pushmail_proto::binding::v1::binding_service_client::BindingServiceClient;
use pushmail_proto::topics::BINDING_CHANGED;

use crate::domain::Reach;

/// Most accounts cached; past it the cache starts over (cheap, rare).
const MAX_ENTRIES: usize = 100_000;

/// A delivery target converted from binding's answer, its preferences
/// already parsed, so a burst of mail to one account parses them (lists,
/// time zone) once.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// How the phone is reached.
    pub(crate) reach: Reach,
    /// Its preferences, ready to apply.
    pub(crate) policy: Arc<crate::policy::Policy>,
}

impl Prepared {
    /// `target` as dispatch uses it; `None` when it reaches nothing (no
    /// push client and no number).
    fn from_wire(target: &binding::DeliveryTarget) -> Option<Self> {
        match Reach::try_from(target) {
            Ok(reach) => Some(Self {
                reach,
                policy: Arc::new(crate::policy::Policy::new(target.preferences.as_ref())),
            }),
            Err(err) => {
                tracing::debug!(binding = %target.binding_id, error = %err, "target reaches nothing; skipped");
                None
            }
        }
    }
}

struct Entry {
    tenant: String,
    at: Instant,
    targets: Arc<Vec<Prepared>>,
}

/// How long a tenant's limits are reused: an operator's change takes
/// effect within this.
const LIMITS_TTL: Duration = Duration::from_secs(60);

/// The targets cache in front of binding.
pub(crate) struct Targets {
    client: BindingServiceClient<TracedChannel>,
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
    limits: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Targets {
    /// A cache keeping answers for `ttl` (zero: no caching).
    pub(crate) fn new(client: BindingServiceClient<TracedChannel>, ttl: Duration) -> Self {
        Self {
            client,
            ttl,
            entries: Mutex::default(),
            limits: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The account's delivery targets.
    pub(crate) async fn get(
        &self,
        tenant: &str,
        account: &str,
    ) -> Result<Arc<Vec<Prepared>>, tonic::Status> {
        if let Some(entry) = self.lock().get(account)
            && entry.tenant == tenant
            && entry.at.elapsed() < self.ttl
        {
            return Ok(entry.targets.clone());
        }
        let request = binding::GetDeliveryTargetsRequest {
            tenant_id: tenant.to_owned(),
            account_id: account.to_owned(),
        };
        let targets = Arc::new(
            self.client
                .clone()
                .get_delivery_targets(request)
                .await?
                .into_inner()
                .targets
                .iter()
                .filter_map(Prepared::from_wire)
                .collect::<Vec<_>>(),
        );
        if !self.ttl.is_zero() {
            let mut entries = self.lock();
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(
                account.to_owned(),
                Entry {
                    tenant: tenant.to_owned(),
                    at: Instant::now(),
                    targets: targets.clone(),
                },
            );
        }
        Ok(targets)
    }

    /// The tenant's push rate (notifications per minute; 0: no limit).
    pub(crate) async fn push_per_minute(&self, tenant: &str) -> Result<u32, tonic::Status> {
        let lock = || {
            self.limits
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some((at, rate)) = lock().get(tenant)
            && at.elapsed() < LIMITS_TTL
        {
            return Ok(*rate);
        }
        let request = binding::GetTenantLimitsRequest {
            tenant_id: tenant.to_owned(),
        };
        let rate = self
            .client
            .clone()
            .get_tenant_limits(request)
            .await?
            .into_inner()
            .push_per_minute;
        let mut limits = lock();
        if limits.len() >= MAX_ENTRIES {
            limits.clear();
        }
        limits.insert(tenant.to_owned(), (Instant::now(), rate));
        Ok(rate)
    }

    /// Forgets what is cached for `account`.
    pub(crate) fn forget(&self, account: &str) {
        self.lock().remove(account);
    }
}

/// Drops cached targets when binding announces a change.
pub(crate) struct Invalidations(pub(crate) Arc<Targets>);

#[async_trait]
impl Handler for Invalidations {
    async fn handle(&self, record: &InboundRecord) -> Result<(), HandlerError> {
        match decode(BINDING_CHANGED, record) {
            Ok(change) => self.0.forget(&change.account_id),
            // Not ours to dead-letter: binding's topic; skip it.
            Err(err) => {
                tracing::warn!(error = %pushmail_common::report::Report(&err), "unreadable binding change skipped")
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_are_per_tenant_and_forgotten_on_change() {
        let channel = pushmail_common::grpc::UpstreamConfig::at("http://127.0.0.1:9")
            .channel()
            .unwrap();
        let targets = Targets::new(BindingServiceClient::new(channel), Duration::from_secs(60));
        targets.lock().insert(
            "a1".into(),
            Entry {
                tenant: "t1".into(),
                at: Instant::now(),
                targets: Arc::new(vec![Prepared {
                    reach: Reach::Device {
                        device: crate::domain::DeviceId::new("d1").unwrap(),
                        msisdn: None,
                    },
                    policy: Arc::new(crate::policy::Policy::new(None)),
                }]),
            },
        );
        assert_eq!(
            targets.get("t1", "a1").await.unwrap()[0].reach.device(),
            "d1"
        );
        // Another tenant naming the same account id goes to binding (down here).
        assert!(targets.get("t2", "a1").await.is_err());
        targets.forget("a1");
        assert!(
            targets.get("t1", "a1").await.is_err(),
            "asked binding again"
        );
    }
}
