//! Dispatch's hot-path read (account → verified numbers → live devices and
//! preferences), cached in two layers in front of the database:
//!
//! - a bounded in-process layer (per replica), entries live `local_ttl_ms`;
//! - Redis, shared by the replicas, entries live `max_staleness_ms`.
//!
//! Every change goes through [`TargetCache::invalidate`]: the local entry is
//! dropped and the account's generation in Redis is bumped, so a value
//! loaded from the database before the change (and written after it by a
//! racing reader) is never served. Other replicas' local entries are not
//! told; they expire. A stale answer therefore never outlives a change by
//! more than `max_staleness_ms` (local entries never outlive the Redis
//! entry they came from), even when Redis or the event bus is down.

mod local;
mod shared;

use std::sync::Arc;
use std::time::Duration;

use pushmail_common::config::ConfigError;
use pushmail_common::redis::StateStoreConfig;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

use crate::clock::now_ms;
use crate::domain::{AccountId, DeliveryTarget, TenantId};
use crate::registry::ApiError;
use crate::store::BindingStore;

/// An account's targets, shared between callers.
pub(crate) type Targets = Arc<[DeliveryTarget]>;

/// Lookups by the layer that answered.
pub(crate) const METRIC_LOOKUPS: &str = "pushmail_binding_target_lookups_total";

/// Cache settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Off: every lookup reads the database (for diagnosis and benchmarks).
    pub enabled: bool,
    /// The shared layer: `redis` in production, `memory` (no shared layer) standalone.
    pub shared: StateStoreConfig,
    /// Most accounts held in the in-process layer.
    pub local_capacity: u64,
    /// Lifetime of an in-process entry.
    pub local_ttl_ms: u64,
    /// The longest a cached answer may outlive a change (the Redis entry lifetime).
    pub max_staleness_ms: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            shared: StateStoreConfig::default(),
            local_capacity: 100_000,
            local_ttl_ms: 1_000,
            max_staleness_ms: 5_000,
        }
    }
}

impl CacheConfig {
    /// Bounds and the Redis settings.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        self.shared.validate(&format!("{prefix}shared."))?;
        if !(100..=3_600_000).contains(&self.max_staleness_ms) {
            return Err(ConfigError::invalid(
                format!("{prefix}max_staleness_ms"),
                "must be 100 to 3600000",
            ));
        }
        if self.local_ttl_ms == 0 || self.local_ttl_ms > self.max_staleness_ms {
            return Err(ConfigError::invalid(
                format!("{prefix}local_ttl_ms"),
                "must be positive and at most max_staleness_ms",
            ));
        }
        if self.local_capacity == 0 {
            return Err(ConfigError::invalid(
                format!("{prefix}local_capacity"),
                "must be positive",
            ));
        }
        Ok(())
    }
}

/// The two cache layers over the store.
pub(crate) struct TargetCache {
    store: Arc<dyn BindingStore>,
    local: Option<local::Local>,
    shared: Option<shared::Shared>,
}

impl std::fmt::Debug for TargetCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetCache")
            .field("local", &self.local.is_some())
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl TargetCache {
    /// Layers as configured; `redis` is the shared layer's connection when
    /// `config.shared` selects Redis.
    pub(crate) fn new(
        store: Arc<dyn BindingStore>,
        config: &CacheConfig,
        redis: Option<ConnectionManager>,
    ) -> Self {
        if !config.enabled {
            return Self {
                store,
                local: None,
                shared: None,
            };
        }
        let max_staleness = Duration::from_millis(config.max_staleness_ms);
        Self {
            store,
            local: Some(local::Local::new(
                config.local_capacity,
                Duration::from_millis(config.local_ttl_ms),
            )),
            shared: redis.map(|redis| {
                shared::Shared::new(redis, &config.shared.redis.key_prefix, max_staleness)
            }),
        }
    }

    /// The account's targets.
    pub(crate) async fn get(
        &self,
        tenant: TenantId,
        account: AccountId,
    ) -> Result<Targets, ApiError> {
        let key = (tenant, account);
        if let Some(local) = &self.local
            && let Some(targets) = local.get(&key)
        {
            metrics::counter!(METRIC_LOOKUPS, "layer" => "local").increment(1);
            return Ok(targets);
        }
        let mut generation = None;
        if let Some(shared) = &self.shared {
            match shared.read(tenant, account).await {
                Ok(read) => {
                    if let Some((written_ms, targets)) = read.hit {
                        metrics::counter!(METRIC_LOOKUPS, "layer" => "shared").increment(1);
                        self.keep_local(key, &targets, Some(written_ms + shared.ttl_ms()));
                        return Ok(targets);
                    }
                    generation = Some(read.generation);
                }
                Err(err) => {
                    tracing::warn!(error = %pushmail_common::report::Report(&err), "target cache read failed; using the database")
                }
            }
        }
        metrics::counter!(METRIC_LOOKUPS, "layer" => "database").increment(1);
        let targets: Targets = self.store.delivery_targets(tenant, account).await?.into();
        if let (Some(shared), Some(generation)) = (&self.shared, generation) {
            let written_ms = now_ms();
            match shared
                .write(tenant, account, generation, written_ms, &targets)
                .await
            {
                Ok(()) => self.keep_local(key, &targets, Some(written_ms + shared.ttl_ms())),
                Err(err) => {
                    tracing::warn!(error = %pushmail_common::report::Report(&err), "target cache write failed")
                }
            }
        } else {
            self.keep_local(key, &targets, None);
        }
        Ok(targets)
    }

    fn keep_local(
        &self,
        key: (TenantId, AccountId),
        targets: &Targets,
        shared_expiry_ms: Option<i64>,
    ) {
        if let Some(local) = &self.local {
            local.insert(key, targets.clone(), shared_expiry_ms);
        }
    }

    /// Forgets the account's targets after a change. A Redis failure is
    /// logged, not returned: the change is made, and the entry it could not
    /// drop expires within `max_staleness_ms`.
    pub(crate) async fn invalidate(&self, tenant: TenantId, account: AccountId) {
        if let Some(local) = &self.local {
            local.remove(&(tenant, account));
        }
        if let Some(shared) = &self.shared
            && let Err(err) = shared.invalidate(tenant, account).await
        {
            metrics::counter!("pushmail_binding_cache_invalidation_failed_total").increment(1);
            tracing::warn!(error = %pushmail_common::report::Report(&err), %account, "target cache invalidation failed; the entry expires on its own");
        }
    }
}
