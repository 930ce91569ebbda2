//! The `TenancyStore` queries (API keys, owned domains), stamped out per
//! backend.

/// Inserts `$key` as a key of `$tenant` inside `$tx`.
macro_rules! insert_api_key {
    ($tx:ident, $tenant:expr, $key:expr, $at:expr) => {
        let key: &NewApiKey = $key;
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, key_hash, prefix, description, created_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(key.id.as_uuid())
        .bind($tenant.as_uuid())
        .bind(key.hash.as_str())
        .bind(&key.prefix)
        .bind(&key.description)
        .bind($at)
        .bind(key.expires_at_ms)
        .execute(&mut *$tx)
        .await
        .map_err(map_err)?;
    };
}

/// Assigns `$domain` to `$tenant` inside `$tx`; another owner is a conflict.
macro_rules! insert_domain {
    ($tx:ident, $tenant:expr, $domain:expr, $at:expr) => {
        let domain: &MailDomain = $domain;
        sqlx::query(
            "INSERT INTO tenant_domains (domain, tenant_id, created_at_ms) VALUES ($1, $2, $3)",
        )
        .bind(domain.as_str())
        .bind($tenant.as_uuid())
        .bind($at)
        .execute(&mut *$tx)
        .await
        .map_err(|e| match map_err(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("domain {domain} belongs to another tenant"))
            }
            other => other,
        })?;
    };
}

/// Holds `$tenant`'s row inside `$tx` where the backend can (the lock that
/// serialises a tenant's key and domain changes); `NotFound($missing)`
/// without it.
macro_rules! lock_tenant {
    ($tx:ident, $tenant:expr, $lock:literal, $missing:literal) => {
        let sql = concat!("SELECT 1 FROM tenants WHERE id = $1", $lock);
        let found: Option<i32> = sqlx::query_scalar(sql)
            .bind($tenant.as_uuid())
            .fetch_optional(&mut *$tx)
            .await
            .map_err(map_err)?;
        found.ok_or(StoreError::NotFound($missing))?;
    };
}

/// Implements `TenancyStore` for `$store` (see `sql_store!` for the rest).
macro_rules! sql_tenancy {
    ($store:ty, $for_update:literal, $begin:literal) => {
        #[async_trait]
        impl TenancyStore for $store {
            async fn create_api_key(
                &self,
                tenant: TenantId,
                key: &NewApiKey,
                now_ms: i64,
            ) -> Result<ApiKeyRecord, StoreError> {
                let mut tx = self.0.begin_with($begin).await.map_err(map_err)?;
                lock_tenant!(tx, tenant, $for_update, "tenant");
                let live: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM api_keys WHERE tenant_id = $1 \
                     AND (expires_at_ms IS NULL OR expires_at_ms > $2)",
                )
                .bind(tenant.as_uuid())
                .bind(now_ms)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
                if usize::try_from(live).unwrap_or(usize::MAX) >= MAX_LIVE_KEYS {
                    return Err(StoreError::QuotaExceeded("api keys"));
                }
                insert_api_key!(tx, tenant, key, now_ms);
                tx.commit().await.map_err(map_err)?;
                Ok(ApiKeyRecord {
                    tenant_id: tenant,
                    id: key.id,
                    prefix: key.prefix.clone(),
                    description: key.description.clone(),
                    created_at_ms: now_ms,
                    expires_at_ms: key.expires_at_ms,
                    revoked_at_ms: None,
                })
            }

            async fn api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKeyRecord>, StoreError> {
                let sql = format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at_ms, id");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(tenant.as_uuid())
                    .fetch_all(&self.0)
                    .await
                    .map_err(map_err)?
                    .iter()
                    .map(api_key_from_row)
                    .collect()
            }

            async fn revoke_api_key(
                &self,
                tenant: TenantId,
                id: ApiKeyId,
                now_ms: i64,
                works_until_ms: i64,
                confirm_last: bool,
            ) -> Result<ApiKeyRecord, StoreError> {
                let mut tx = self.0.begin_with($begin).await.map_err(map_err)?;
                // The tenant row is the lock: two revocations racing cannot
                // each leave the other key as "the one still working".
                lock_tenant!(tx, tenant, $for_update, "api key");
                let sql = format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = $2");
                let key = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(tenant.as_uuid())
                    .bind(id.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .map(|row| api_key_from_row(&row))
                    .transpose()?
                    .ok_or(StoreError::NotFound("api key"))?;
                let until = key.expires_at_ms.map_or(works_until_ms, |end| end.min(works_until_ms));
                let others: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM api_keys WHERE tenant_id = $1 AND id <> $2 \
                     AND (expires_at_ms IS NULL OR expires_at_ms > $3)",
                )
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .bind(until)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
                if others == 0 && key.is_active(now_ms) && !confirm_last {
                    return Err(StoreError::Precondition(
                        "this is the tenant's last working key: create another first, or set confirm_last_key".to_owned(),
                    ));
                }
                let revoked = ApiKeyRecord {
                    expires_at_ms: Some(until),
                    revoked_at_ms: Some(key.revoked_at_ms.unwrap_or(now_ms)),
                    ..key
                };
                sqlx::query("UPDATE api_keys SET expires_at_ms = $3, revoked_at_ms = $4 WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.as_uuid())
                    .bind(id.as_uuid())
                    .bind(revoked.expires_at_ms)
                    .bind(revoked.revoked_at_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok(revoked)
            }

            async fn set_tenant_domains(
                &self,
                tenant: TenantId,
                domains: &[MailDomain],
            ) -> Result<Vec<MailDomain>, StoreError> {
                let mut tx = self.0.begin_with($begin).await.map_err(map_err)?;
                lock_tenant!(tx, tenant, $for_update, "tenant");
                sqlx::query("DELETE FROM tenant_domains WHERE tenant_id = $1")
                    .bind(tenant.as_uuid())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let now = now_ms();
                for domain in domains {
                    // Domains hold no LIKE wildcards ('%', '_'): checked on parse.
                    let strays: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM accounts WHERE kind = 'enterprise_forwarded' AND tenant_id <> $1 \
                         AND (address LIKE '%@' || $2 OR address LIKE '%.' || $2)",
                    )
                    .bind(tenant.as_uuid())
                    .bind(domain.as_str())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    if strays > 0 {
                        return Err(StoreError::Precondition(format!(
                            "{strays} forwarded account(s) of other tenants are in {domain}; delete them before assigning it"
                        )));
                    }
                    insert_domain!(tx, tenant, domain, now);
                }
                tx.commit().await.map_err(map_err)?;
                self.tenant_domains(tenant).await
            }

            async fn set_tenant_time_zone(
                &self,
                tenant: TenantId,
                zone: &TenantZone,
            ) -> Result<Option<Tenant>, StoreError> {
                let updated = sqlx::query("UPDATE tenants SET time_zone = $2 WHERE id = $1")
                    .bind(tenant.as_uuid())
                    .bind(zone.name())
                    .execute(&self.0)
                    .await
                    .map_err(map_err)?;
                if updated.rows_affected() == 0 {
                    return Ok(None);
                }
                self.tenant(tenant).await
            }

            async fn tenant_domains(&self, tenant: TenantId) -> Result<Vec<MailDomain>, StoreError> {
                let names: Vec<String> =
                    sqlx::query_scalar("SELECT domain FROM tenant_domains WHERE tenant_id = $1 ORDER BY domain")
                        .bind(tenant.as_uuid())
                        .fetch_all(&self.0)
                        .await
                        .map_err(map_err)?;
                names
                    .iter()
                    .map(|n| MailDomain::parse(n).map_err(|e| StoreError::unreadable("mail domain", e)))
                    .collect()
            }

            async fn directory(
                &self,
                tenant: TenantId,
                query: &str,
                limit: u32,
            ) -> Result<Vec<String>, StoreError> {
                let pattern = format!(
                    "%{}%",
                    query.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
                );
                // Domains are kept lowercase; a subdomain's address ends in
                // ".<domain>", which no local part can end an address with.
                sqlx::query_scalar(
                    "SELECT a.address FROM accounts a WHERE a.tenant_id = $1 \
                     AND lower(a.address) LIKE $2 ESCAPE '\\' \
                     AND EXISTS (SELECT 1 FROM tenant_domains d WHERE d.tenant_id = $1 \
                     AND (lower(a.address) LIKE ('%@' || d.domain) OR lower(a.address) LIKE ('%.' || d.domain))) \
                     ORDER BY lower(a.address) LIMIT $3",
                )
                .bind(tenant.as_uuid())
                .bind(pattern)
                .bind(i64::from(limit))
                .fetch_all(&self.0)
                .await
                .map_err(map_err)
            }
        }
    };
}
