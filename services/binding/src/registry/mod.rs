//! The binding service's operations, in domain terms: what the gRPC edge
//! calls once it has authenticated the caller and parsed the request. Every
//! operation on tenant data takes the tenant; every change invalidates the
//! cached targets it affects and is announced on `BindingChanged`.

mod app_passwords;
mod devices;
mod error;
mod keys;
mod login;
mod lookups;
mod onboarding;
mod outbound;
mod outbox;
mod relay;

use std::sync::Arc;

pub(crate) use app_passwords::{OTHER_PHONE, REFUSED};
pub(crate) use devices::IssuedToken;
pub(crate) use error::ApiError;
pub(crate) use keys::MAX_DOMAINS;

use crate::cache::TargetCache;
use crate::domain::{AccountId, TenantId};
use crate::events::{Announcement, Events};
use crate::keys::Keys;
use crate::settings::{LoginConfig, VerificationConfig};
use crate::store::BindingStore;

/// The limits and policies the operations enforce, from config.
#[derive(Debug, Clone, Default)]
pub(crate) struct Settings {
    /// Verification-code limits.
    pub verification: VerificationConfig,
    /// Relay login lockout and cache.
    pub relay: LoginConfig,
    /// App password (ActiveSync) login lockout and cache.
    pub app_passwords: LoginConfig,
    /// Which networks tenant mailbox servers may be in.
    pub egress: pushmail_common::egress::EgressPolicy,
    /// Whether the SMS outbox is kept (and may be listed).
    pub sms_outbox: bool,
}

/// The operations, over the store, the keys, the bus and the cache.
#[derive(Debug, Clone)]
pub(crate) struct Registry {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn BindingStore>,
    keys: Arc<Keys>,
    events: Events,
    cache: TargetCache,
    settings: Settings,
    relay: login::LoginGuard,
    app_passwords: login::LoginGuard,
    /// Tenants' zones, for the day a traffic record or SMS charge falls on
    /// (those come every few seconds per account; a zone rarely changes).
    zones: quick_cache::sync::Cache<TenantId, (crate::domain::TenantZone, std::time::Instant)>,
}

/// How long a tenant's zone is trusted without reading it again (another
/// replica's change reaches this one within it).
const ZONE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

impl std::fmt::Debug for dyn BindingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BindingStore")
    }
}

impl Registry {
    /// Operations over these parts.
    pub(crate) fn new(
        store: Arc<dyn BindingStore>,
        keys: Arc<Keys>,
        events: Events,
        cache: TargetCache,
        settings: Settings,
    ) -> Self {
        let relay = login::LoginGuard::new(&settings.relay);
        let app_passwords = login::LoginGuard::new(&settings.app_passwords);
        Self {
            inner: Arc::new(Inner {
                store,
                keys,
                events,
                cache,
                settings,
                relay,
                app_passwords,
                zones: quick_cache::sync::Cache::new(10_000),
            }),
        }
    }

    /// Today in the tenant's zone.
    pub(crate) async fn tenant_day(&self, tenant: TenantId) -> Result<jiff::civil::Date, ApiError> {
        let now = crate::clock::now_ms();
        if let Some((zone, read)) = self.inner.zones.get(&tenant)
            && read.elapsed() < ZONE_TTL
        {
            return Ok(zone.day(now));
        }
        let zone = self.tenant(tenant).await?.time_zone;
        let day = zone.day(now);
        self.inner
            .zones
            .insert(tenant, (zone, std::time::Instant::now()));
        Ok(day)
    }

    fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    fn store(&self) -> &dyn BindingStore {
        &*self.inner.store
    }

    fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// Drops the cached targets of `accounts`, then announces `change` for
    /// each. The change is already committed: a failed announcement is an
    /// error the caller can retry (every announcing call is idempotent or
    /// says so), and the caches are invalidated either way.
    async fn changed(
        &self,
        accounts: &[AccountId],
        announcement: Announcement<'_>,
    ) -> Result<(), ApiError> {
        for account in accounts {
            self.inner
                .cache
                .invalidate(announcement.tenant, *account)
                .await;
        }
        if accounts.is_empty() {
            return Ok(self.inner.events.changed(&announcement).await?);
        }
        for account in accounts {
            let announcement = Announcement {
                account: Some(*account),
                ..announcement.clone()
            };
            self.inner.events.changed(&announcement).await?;
        }
        Ok(())
    }

    /// Whether `tenant` exists (an unknown tenant is NOT_FOUND, not an empty answer).
    pub(crate) async fn require_tenant(&self, tenant: TenantId) -> Result<(), ApiError> {
        self.tenant(tenant).await.map(drop)
    }

    /// The tenant, with its quotas and rates.
    pub(crate) async fn tenant(&self, tenant: TenantId) -> Result<crate::domain::Tenant, ApiError> {
        self.store()
            .tenant(tenant)
            .await?
            .ok_or(ApiError::NotFound("tenant"))
    }
}

impl Registry {
    /// Which privileged caller a bearer token belongs to, if any.
    pub(crate) fn privileged(
        &self,
        token: &str,
    ) -> Result<Option<crate::keys::Privileged>, crate::keys::InvalidCredential> {
        self.keys().callers.privileged(token)
    }
}
