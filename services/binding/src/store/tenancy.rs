//! What the store keeps about tenants besides their data: API keys and
//! owned mail domains.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::{ApiKeyId, ApiKeyRecord, MailDomain, NewApiKey, Tenant, TenantId, TenantZone};

/// API keys and domains of tenants.
#[async_trait]
pub trait TenancyStore: Send + Sync {
    /// Adds a key to the tenant; `QuotaExceeded("api keys")` when the
    /// tenant already has [`crate::domain::MAX_LIVE_KEYS`] keys working at
    /// `now_ms` (checked under the tenant-row lock).
    async fn create_api_key(
        &self,
        tenant: TenantId,
        key: &NewApiKey,
        now_ms: i64,
    ) -> Result<ApiKeyRecord, StoreError>;

    /// The tenant's keys, oldest first.
    async fn api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKeyRecord>, StoreError>;

    /// Revokes one of the tenant's keys at `now_ms`; it works until
    /// `works_until_ms` (never later than it would have). Unless
    /// `confirm_last`, `Precondition` when no other key of the tenant
    /// works past that moment. Repeating it never lengthens the grace.
    async fn revoke_api_key(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
        now_ms: i64,
        works_until_ms: i64,
        confirm_last: bool,
    ) -> Result<ApiKeyRecord, StoreError>;

    /// Replaces the tenant's domains: `Conflict` when another tenant owns
    /// one, `Precondition` when another tenant has forwarded accounts in
    /// one; nothing changes then.
    async fn set_tenant_domains(
        &self,
        tenant: TenantId,
        domains: &[MailDomain],
    ) -> Result<Vec<MailDomain>, StoreError>;

    /// The tenant's domains, sorted.
    async fn tenant_domains(&self, tenant: TenantId) -> Result<Vec<MailDomain>, StoreError>;

    /// The tenant's directory: addresses of its accounts in the domains it
    /// owns (or below them) containing `query` (lowercase, matched
    /// literally), sorted, at most `limit`. Accounts elsewhere (a
    /// subscriber's own mailbox at a public provider) are nobody else's
    /// business and never listed.
    async fn directory(
        &self,
        tenant: TenantId,
        query: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;

    /// Sets the zone the tenant's days are counted in; `None` for an
    /// unknown tenant.
    async fn set_tenant_time_zone(
        &self,
        tenant: TenantId,
        zone: &TenantZone,
    ) -> Result<Option<Tenant>, StoreError>;
}
