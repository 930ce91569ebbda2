//! The `AppPasswordStore` queries, stamped out per backend.

/// Implements `AppPasswordStore` for `$store`; `$begin` opens a
/// transaction that will write.
macro_rules! sql_app_passwords {
    ($store:ty, $begin:literal) => {
        #[async_trait]
        impl AppPasswordStore for $store {
            async fn create_app_password(
                &self,
                password: &AppPassword,
                lookup: &str,
                password_hash: &str,
            ) -> Result<(), StoreError> {
                let mut tx = self.0.begin_with($begin).await.map_err(map_err)?;
                // The verified binding of this account and number is
                // checked in the statement itself.
                let device = sqlx::query(
                    "INSERT INTO devices (id, tenant_id, msisdn, label, has_push_client, created_at_ms) \
                     SELECT $1, $2, $3, $4, TRUE, $5 WHERE EXISTS (SELECT 1 FROM bindings \
                     WHERE tenant_id = $2 AND account_id = $6 AND msisdn = $3 AND state = 'verified')",
                )
                .bind(password.device_id.as_uuid())
                .bind(password.tenant_id.as_uuid())
                .bind(password.msisdn.as_str())
                .bind(&password.label)
                .bind(password.created_at_ms)
                .bind(password.account_id.as_uuid())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                if device.rows_affected() == 0 {
                    return Err(StoreError::NotFound("verified binding"));
                }
                sqlx::query(
                    "INSERT INTO app_passwords (id, tenant_id, account_id, device_id, msisdn, label, lookup, \
                     password_hash, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(password.id.as_uuid())
                .bind(password.tenant_id.as_uuid())
                .bind(password.account_id.as_uuid())
                .bind(password.device_id.as_uuid())
                .bind(password.msisdn.as_str())
                .bind(&password.label)
                .bind(lookup)
                .bind(password_hash)
                .bind(password.created_at_ms)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok(())
            }

            async fn app_passwords(
                &self,
                tenant: TenantId,
                account: AccountId,
            ) -> Result<Vec<AppPassword>, StoreError> {
                let sql = format!(
                    "SELECT {APP_PASSWORD_COLUMNS} FROM app_passwords p \
                     WHERE p.tenant_id = $1 AND p.account_id = $2 ORDER BY p.created_at_ms, p.id"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(tenant.as_uuid())
                    .bind(account.as_uuid())
                    .fetch_all(&self.0)
                    .await
                    .map_err(map_err)?
                    .iter()
                    .map(app_password_from_row)
                    .collect()
            }

            async fn app_password(
                &self,
                tenant: TenantId,
                id: AppPasswordId,
            ) -> Result<Option<AppPassword>, StoreError> {
                let row = self
                    .owned(APP_PASSWORD_COLUMNS, "app_passwords p", tenant, id.as_uuid())
                    .await?;
                row.as_ref().map(app_password_from_row).transpose()
            }

            async fn revoke_app_password(
                &self,
                tenant: TenantId,
                id: AppPasswordId,
                now_ms: i64,
            ) -> Result<AppPassword, StoreError> {
                let updated = sqlx::query(
                    "UPDATE app_passwords SET revoked_at_ms = COALESCE(revoked_at_ms, $3) \
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .bind(now_ms)
                .execute(&self.0)
                .await
                .map_err(map_err)?;
                if updated.rows_affected() == 0 {
                    return Err(StoreError::NotFound("app password"));
                }
                self.app_password(tenant, id)
                    .await?
                    .ok_or(StoreError::NotFound("app password"))
            }

            async fn app_password_logins(
                &self,
                address: &str,
                lookup: &str,
            ) -> Result<Vec<(AppPassword, String)>, StoreError> {
                let sql = format!(
                    "SELECT {APP_PASSWORD_COLUMNS}, p.password_hash FROM app_passwords p \
                     JOIN accounts a ON a.id = p.account_id \
                     JOIN devices d ON d.id = p.device_id \
                     WHERE a.address = $1 AND p.lookup = $2 \
                     AND p.revoked_at_ms IS NULL AND d.revoked_at_ms IS NULL \
                     AND EXISTS (SELECT 1 FROM bindings b WHERE b.account_id = p.account_id \
                     AND b.msisdn = p.msisdn AND b.state = 'verified') \
                     ORDER BY p.created_at_ms LIMIT 8"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(address)
                    .bind(lookup)
                    .fetch_all(&self.0)
                    .await
                    .map_err(map_err)?;
                rows.iter()
                    .map(|row| {
                        let hash: String = row
                            .try_get("password_hash")
                            .map_err(|e| StoreError::unavailable("app password row", e))?;
                        Ok((app_password_from_row(row)?, hash))
                    })
                    .collect()
            }

            async fn offer_policy_key(
                &self,
                tenant: TenantId,
                id: AppPasswordId,
                key: u32,
            ) -> Result<(), StoreError> {
                let updated = sqlx::query(
                    "UPDATE app_passwords SET pending_policy_key = $3 WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .bind(i64::from(key))
                .execute(&self.0)
                .await
                .map_err(map_err)?;
                if updated.rows_affected() == 0 {
                    return Err(StoreError::NotFound("app password"));
                }
                Ok(())
            }

            async fn acknowledge_policy_key(
                &self,
                tenant: TenantId,
                id: AppPasswordId,
                pending: u32,
                key: u32,
                digest: &str,
            ) -> Result<bool, StoreError> {
                // One statement: of two acknowledgements of the same offer,
                // one wins.
                let updated = sqlx::query(
                    "UPDATE app_passwords SET policy_key = $4, policy_digest = $5, \
                     pending_policy_key = NULL \
                     WHERE tenant_id = $1 AND id = $2 AND pending_policy_key = $3",
                )
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .bind(i64::from(pending))
                .bind(i64::from(key))
                .bind(digest)
                .execute(&self.0)
                .await
                .map_err(map_err)?;
                Ok(updated.rows_affected() == 1)
            }

            async fn set_device_information(
                &self,
                tenant: TenantId,
                id: AppPasswordId,
                information: &DeviceInformation,
            ) -> Result<(), StoreError> {
                let said = |s: &str| (!s.is_empty()).then(|| s.to_owned());
                let updated = sqlx::query(
                    "UPDATE app_passwords SET device_model = $3, device_os = $4, device_name = $5, \
                     device_user_agent = $6, device_operator = $7 WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .bind(said(&information.model))
                .bind(said(&information.os))
                .bind(said(&information.friendly_name))
                .bind(said(&information.user_agent))
                .bind(said(&information.mobile_operator))
                .execute(&self.0)
                .await
                .map_err(map_err)?;
                if updated.rows_affected() == 0 {
                    return Err(StoreError::NotFound("app password"));
                }
                Ok(())
            }

            async fn order_wipe(
                &self,
                tenant: TenantId,
                id: AppPasswordId,
                kind: WipeKind,
                now_ms: i64,
            ) -> Result<AppPassword, StoreError> {
                let updated = sqlx::query(
                    "UPDATE app_passwords SET wipe_kind = $3, \
                     wipe_ordered_at_ms = COALESCE(wipe_ordered_at_ms, $4) \
                     WHERE tenant_id = $1 AND id = $2 AND revoked_at_ms IS NULL \
                     AND wipe_done_at_ms IS NULL",
                )
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .bind(kind.as_str())
                .bind(now_ms)
                .execute(&self.0)
                .await
                .map_err(map_err)?;
                let row = self
                    .app_password(tenant, id)
                    .await?
                    .ok_or(StoreError::NotFound("app password"))?;
                if updated.rows_affected() == 0 {
                    return Err(StoreError::Conflict(
                        "the app password is revoked; its phone can no longer be reached".to_owned(),
                    ));
                }
                Ok(row)
            }

            async fn wipe_done(
                &self,
                tenant: TenantId,
                id: AppPasswordId,
                kind: WipeKind,
                now_ms: i64,
            ) -> Result<AppPassword, StoreError> {
                let updated = sqlx::query(
                    "UPDATE app_passwords SET \
                     wipe_kind = CASE WHEN wipe_done_at_ms IS NULL THEN $4 ELSE wipe_kind END, \
                     wipe_done_at_ms = COALESCE(wipe_done_at_ms, $3), \
                     revoked_at_ms = COALESCE(revoked_at_ms, $3) \
                     WHERE tenant_id = $1 AND id = $2 AND wipe_kind IS NOT NULL",
                )
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .bind(now_ms)
                .bind(kind.as_str())
                .execute(&self.0)
                .await
                .map_err(map_err)?;
                if updated.rows_affected() == 0 {
                    return Err(StoreError::NotFound("wipe"));
                }
                self.app_password(tenant, id)
                    .await?
                    .ok_or(StoreError::NotFound("app password"))
            }

            async fn app_password_used(
                &self,
                id: AppPasswordId,
                client: &ClientDevice,
                now_ms: i64,
            ) -> Result<ClientDevice, StoreError> {
                sqlx::query(
                    "UPDATE app_passwords SET last_used_at_ms = $2, \
                     client_device_type = CASE WHEN client_device_id IS NULL THEN $4 ELSE client_device_type END, \
                     client_device_id = COALESCE(client_device_id, $3) WHERE id = $1",
                )
                .bind(id.as_uuid())
                .bind(now_ms)
                .bind(&client.id)
                .bind(&client.kind)
                .execute(&self.0)
                .await
                .map_err(map_err)?;
                let row: Option<(Option<String>, Option<String>)> = sqlx::query_as(
                    "SELECT client_device_id, client_device_type FROM app_passwords WHERE id = $1",
                )
                .bind(id.as_uuid())
                .fetch_optional(&self.0)
                .await
                .map_err(map_err)?;
                match row {
                    Some((Some(id), kind)) => Ok(ClientDevice {
                        id,
                        kind: kind.unwrap_or_default(),
                    }),
                    _ => Err(StoreError::NotFound("app password")),
                }
            }
        }
    };
}
