//! The `RelayStore` queries, stamped out per backend.

/// Implements `RelayStore` for `$store`.
macro_rules! sql_relay {
    ($store:ty) => {
        #[async_trait]
        impl RelayStore for $store {
            async fn create_relay_credential(
                &self,
                credential: &RelayCredential,
                password_hash: &str,
            ) -> Result<(), StoreError> {
                let written = sqlx::query(
                    "INSERT INTO relay_credentials (id, tenant_id, username, password_hash, description, created_at_ms) \
                     SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM tenants WHERE id = $2)",
                )
                .bind(credential.id.as_uuid())
                .bind(credential.tenant_id.as_uuid())
                .bind(&credential.username)
                .bind(password_hash)
                .bind(&credential.description)
                .bind(credential.created_at_ms)
                .execute(&self.0)
                .await
                .map_err(map_err)?;
                if written.rows_affected() == 0 {
                    return Err(StoreError::NotFound("tenant"));
                }
                Ok(())
            }

            async fn relay_credentials(&self, tenant: TenantId) -> Result<Vec<RelayCredential>, StoreError> {
                let sql = format!(
                    "SELECT {RELAY_COLUMNS} FROM relay_credentials WHERE tenant_id = $1 ORDER BY created_at_ms, id"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(tenant.as_uuid())
                    .fetch_all(&self.0)
                    .await
                    .map_err(map_err)?
                    .iter()
                    .map(relay_credential_from_row)
                    .collect()
            }

            async fn revoke_relay_credential(
                &self,
                tenant: TenantId,
                id: RelayCredentialId,
                now_ms: i64,
            ) -> Result<RelayCredential, StoreError> {
                let updated = sqlx::query(
                    "UPDATE relay_credentials SET revoked_at_ms = COALESCE(revoked_at_ms, $3) \
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .bind(now_ms)
                .execute(&self.0)
                .await
                .map_err(map_err)?;
                if updated.rows_affected() == 0 {
                    return Err(StoreError::NotFound("relay credential"));
                }
                let row = self
                    .owned(RELAY_COLUMNS, "relay_credentials", tenant, id.as_uuid())
                    .await?
                    .ok_or(StoreError::NotFound("relay credential"))?;
                relay_credential_from_row(&row)
            }

            async fn relay_login(&self, username: &str) -> Result<Option<(RelayCredential, String)>, StoreError> {
                let sql = format!(
                    "SELECT {RELAY_COLUMNS}, password_hash FROM relay_credentials \
                     WHERE username = $1 AND revoked_at_ms IS NULL"
                );
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(username)
                    .fetch_optional(&self.0)
                    .await
                    .map_err(map_err)?;
                let Some(row) = row else { return Ok(None) };
                let hash: String = row
                    .try_get("password_hash")
                    .map_err(|e| StoreError::unavailable("relay row", e))?;
                Ok(Some((relay_credential_from_row(&row)?, hash)))
            }

            async fn relay_policy(&self, tenant: TenantId) -> Result<RelayPolicy, StoreError> {
                let row: Option<(String, String)> = sqlx::query_as(
                    "SELECT allowed_sources, client_cert_sha256 FROM relay_policies WHERE tenant_id = $1",
                )
                .bind(tenant.as_uuid())
                .fetch_optional(&self.0)
                .await
                .map_err(map_err)?;
                row.map_or_else(
                    || Ok(RelayPolicy::default()),
                    |(sources, certs)| relay_policy(Some(sources), Some(certs)),
                )
            }

            async fn set_relay_policy(&self, tenant: TenantId, policy: &RelayPolicy) -> Result<(), StoreError> {
                let json = |list: Vec<String>| serde_json::to_string(&list).unwrap_or_else(|_| "[]".to_owned());
                let written = sqlx::query(
                    "INSERT INTO relay_policies (tenant_id, allowed_sources, client_cert_sha256, updated_at_ms) \
                     SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM tenants WHERE id = $1) \
                     ON CONFLICT (tenant_id) DO UPDATE SET allowed_sources = excluded.allowed_sources, \
                     client_cert_sha256 = excluded.client_cert_sha256, updated_at_ms = excluded.updated_at_ms",
                )
                .bind(tenant.as_uuid())
                .bind(json(policy.sources_text()))
                .bind(json(policy.client_cert_sha256.clone()))
                .bind(now_ms())
                .execute(&self.0)
                .await
                .map_err(map_err)?;
                if written.rows_affected() == 0 {
                    return Err(StoreError::NotFound("tenant"));
                }
                Ok(())
            }

            async fn submission_relay(
                &self,
                tenant: TenantId,
            ) -> Result<Option<(ServerSettings, Vec<u8>)>, StoreError> {
                let row: Option<(String, i32, String, String, Vec<u8>)> = sqlx::query_as(
                    "SELECT host, port, tls, username, sealed_password FROM submission_relays \
                     WHERE tenant_id = $1",
                )
                .bind(tenant.as_uuid())
                .fetch_optional(&self.0)
                .await
                .map_err(map_err)?;
                let Some((host, port, tls, username, sealed)) = row else {
                    return Ok(None);
                };
                let settings = server_settings("relay", Some(host), Some(port), Some(tls), Some(username))?
                    .ok_or_else(|| StoreError::Invalid("relay host missing".to_owned()))?;
                Ok(Some((settings, sealed)))
            }

            async fn set_submission_relay(
                &self,
                tenant: TenantId,
                relay: &ServerSettings,
                sealed_password: Option<&[u8]>,
            ) -> Result<(), StoreError> {
                // One statement either way, so two admins saving at once
                // leave one whole relay, never one's host with the
                // other's password.
                let written = match sealed_password {
                    Some(sealed) => sqlx::query(
                        "INSERT INTO submission_relays \
                         (tenant_id, host, port, tls, username, sealed_password, updated_at_ms) \
                         SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM tenants WHERE id = $1) \
                         ON CONFLICT (tenant_id) DO UPDATE SET host = excluded.host, port = excluded.port, \
                         tls = excluded.tls, username = excluded.username, \
                         sealed_password = excluded.sealed_password, updated_at_ms = excluded.updated_at_ms",
                    )
                    .bind(tenant.as_uuid())
                    .bind(&relay.host)
                    .bind(i32::from(relay.port))
                    .bind(relay.tls.as_str())
                    .bind(&relay.username)
                    .bind(sealed)
                    .bind(now_ms()),
                    None => sqlx::query(
                        "UPDATE submission_relays SET host = $2, port = $3, tls = $4, username = $5, \
                         updated_at_ms = $6 WHERE tenant_id = $1",
                    )
                    .bind(tenant.as_uuid())
                    .bind(&relay.host)
                    .bind(i32::from(relay.port))
                    .bind(relay.tls.as_str())
                    .bind(&relay.username)
                    .bind(now_ms()),
                }
                .execute(&self.0)
                .await
                .map_err(map_err)?;
                if written.rows_affected() == 0 {
                    return Err(StoreError::NotFound(if sealed_password.is_some() {
                        "tenant"
                    } else {
                        "submission relay password"
                    }));
                }
                Ok(())
            }

            async fn clear_submission_relay(&self, tenant: TenantId) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM submission_relays WHERE tenant_id = $1")
                    .bind(tenant.as_uuid())
                    .execute(&self.0)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }
        }
    };
}
