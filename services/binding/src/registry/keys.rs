//! A tenant's API keys (rotation with a grace overlap) and the mail domains
//! an operator assigns to it.

use super::{ApiError, Registry};
use crate::clock::now_ms;
use crate::domain::{ApiKey, ApiKeyId, ApiKeyRecord, MailDomain, NewApiKey, TenantId};

/// Longest grace a revoked key keeps working: 30 days.
pub(crate) const MAX_GRACE_SECONDS: u64 = 30 * 24 * 3_600;

/// Longest lifetime a key may be created with: about ten years.
pub(crate) const MAX_KEY_TTL_SECONDS: u64 = 3_650 * 24 * 3_600;

/// Most domains one tenant owns.
pub(crate) const MAX_DOMAINS: usize = 100;

/// Most addresses one directory search answers: a phone shows a few
/// completions, not the company.
pub(crate) const MAX_DIRECTORY: u32 = 100;

/// Longest directory query, in bytes.
pub(crate) const MAX_DIRECTORY_QUERY: usize = 256;

fn ms(seconds: u64) -> i64 {
    i64::try_from(seconds.saturating_mul(1_000)).unwrap_or(i64::MAX)
}

impl Registry {
    /// A new key for the tenant, returned once; it works for `ttl_seconds`
    /// (0: until revoked).
    pub(crate) async fn create_api_key(
        &self,
        tenant: TenantId,
        description: &str,
        ttl_seconds: u64,
    ) -> Result<(ApiKeyRecord, ApiKey), ApiError> {
        if ttl_seconds > MAX_KEY_TTL_SECONDS {
            return Err(ApiError::invalid(
                "ttl_seconds",
                format!("must be at most {MAX_KEY_TTL_SECONDS} (0: until revoked)"),
            ));
        }
        let now = now_ms();
        let expires = (ttl_seconds > 0).then(|| now.saturating_add(ms(ttl_seconds)));
        let key = ApiKey::generate();
        let stored = NewApiKey::of(&key, description, expires);
        let record = self.store().create_api_key(tenant, &stored, now).await?;
        tracing::info!(%tenant, key_id = %record.id, prefix = %record.prefix, "api key created");
        Ok((record, key))
    }

    /// The tenant's keys, oldest first.
    pub(crate) async fn api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKeyRecord>, ApiError> {
        self.require_tenant(tenant).await?;
        Ok(self.store().api_keys(tenant).await?)
    }

    /// Revokes a key: it works `grace_seconds` more (0: stops now). The
    /// tenant's last working key needs `confirm_last`.
    pub(crate) async fn revoke_api_key(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
        grace_seconds: u64,
        confirm_last: bool,
    ) -> Result<ApiKeyRecord, ApiError> {
        if grace_seconds > MAX_GRACE_SECONDS {
            return Err(ApiError::invalid(
                "grace_seconds",
                format!("must be at most {MAX_GRACE_SECONDS} (30 days)"),
            ));
        }
        let now = now_ms();
        let until = now.saturating_add(ms(grace_seconds));
        let record = self
            .store()
            .revoke_api_key(tenant, id, now, until, confirm_last)
            .await?;
        tracing::info!(%tenant, key_id = %id, works_until_ms = until, "api key revoked");
        Ok(record)
    }

    /// Replaces the domains the tenant owns (operators only, checked at the edge).
    pub(crate) async fn set_tenant_domains(
        &self,
        tenant: TenantId,
        mut domains: Vec<MailDomain>,
    ) -> Result<Vec<MailDomain>, ApiError> {
        domains.sort();
        domains.dedup();
        if domains.len() > MAX_DOMAINS {
            return Err(ApiError::invalid(
                "domains",
                format!("at most {MAX_DOMAINS} per tenant"),
            ));
        }
        Ok(self.store().set_tenant_domains(tenant, &domains).await?)
    }

    /// Sets the zone the tenant's days are counted in.
    pub(crate) async fn set_tenant_time_zone(
        &self,
        tenant: TenantId,
        zone: crate::domain::TenantZone,
    ) -> Result<crate::domain::TenantZone, ApiError> {
        let updated = self
            .store()
            .set_tenant_time_zone(tenant, &zone)
            .await?
            .ok_or(ApiError::NotFound("tenant"))?;
        self.inner.zones.remove(&tenant);
        Ok(updated.time_zone)
    }

    /// The domains the tenant owns.
    pub(crate) async fn tenant_domains(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<MailDomain>, ApiError> {
        self.require_tenant(tenant).await?;
        Ok(self.store().tenant_domains(tenant).await?)
    }

    /// Addresses in the tenant's directory containing `query` (any case),
    /// sorted, at most `limit` (1 to [`MAX_DIRECTORY`]; 0: the most). An
    /// empty query would list everyone: refused.
    pub(crate) async fn directory(
        &self,
        tenant: TenantId,
        query: &str,
        limit: u32,
    ) -> Result<Vec<String>, ApiError> {
        let query = query.trim();
        if query.is_empty() || query.len() > MAX_DIRECTORY_QUERY {
            return Err(ApiError::Invalid {
                field: "query",
                reason: format!("1 to {MAX_DIRECTORY_QUERY} bytes"),
            });
        }
        let limit = if limit == 0 {
            MAX_DIRECTORY
        } else {
            limit.min(MAX_DIRECTORY)
        };
        Ok(self
            .store()
            .directory(tenant, &query.to_lowercase(), limit)
            .await?)
    }
}
