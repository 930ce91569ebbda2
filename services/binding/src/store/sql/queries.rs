//! The `BindingStore` queries, stamped out per backend.

/// Charges one SMS to the tenant's `sms_per_day` on `day` inside `tx`,
/// holding the tenant row (the quota lock) where the backend can.
macro_rules! charge_sms {
    ($tx:ident, $tenant:expr, $account:expr, $day:expr, $lock:literal) => {
                let sql = concat!("SELECT sms_per_day FROM tenants WHERE id = $1", $lock);
                let allowed: i64 = sqlx::query_scalar(sql)
                    .bind($tenant.as_uuid())
                    .fetch_optional(&mut *$tx)
                    .await
                    .map_err(map_err)?
                    .ok_or(StoreError::NotFound("tenant"))?;
                let sent: Option<i64> = sqlx::query_scalar(
                    "SELECT CAST(SUM(sms_count) AS BIGINT) FROM traffic_daily WHERE tenant_id = $1 AND day = $2",
                )
                .bind($tenant.as_uuid())
                .bind($day.to_string())
                .fetch_one(&mut *$tx)
                .await
                .map_err(map_err)?;
                if sent.unwrap_or(0) >= allowed {
                    return Err(StoreError::QuotaExceeded("sms_per_day"));
                }
                sqlx::query(
                    "INSERT INTO traffic_daily (account_id, day, tenant_id, sms_count) VALUES ($1, $2, $3, 1) \
                     ON CONFLICT (account_id, day) DO UPDATE SET sms_count = traffic_daily.sms_count + 1",
                )
                .bind($account.as_uuid())
                .bind($day.to_string())
                .bind($tenant.as_uuid())
                .execute(&mut *$tx)
                .await
                .map_err(map_err)?;
    };
}

/// Implements `BindingStore` for `$store`, whose rows are `$row`;
/// `$for_update` is the row-lock clause where the backend has one;
/// `$begin` the statement that opens a writing transaction.
macro_rules! sql_store {
    ($store:ty, $row:ty, $for_update:literal, $begin:literal) => {
        impl $store {
            /// The row `id` of `table` if it belongs to `tenant`: every
            /// lookup by id goes through here, so none forgets the tenant.
            async fn owned(
                &self,
                columns: &str,
                table: &str,
                tenant: TenantId,
                id: Uuid,
            ) -> Result<Option<$row>, StoreError> {
                let sql = format!("SELECT {columns} FROM {table} WHERE tenant_id = $1 AND id = $2");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(tenant.as_uuid())
                    .bind(id)
                    .fetch_optional(&self.0)
                    .await
                    .map_err(map_err)
            }
        }

        #[async_trait]
        impl BindingStore for $store {
            async fn create_tenant(&self, tenant: &NewTenant, key: &NewApiKey) -> Result<Tenant, StoreError> {
                let created = Tenant {
                    id: TenantId::generate(),
                    name: tenant.name.clone(),
                    max_accounts: tenant.max_accounts,
                    sms_per_day: tenant.sms_per_day,
                    push_per_minute: tenant.push_per_minute,
                    codes_per_day: tenant.codes_per_day,
                    time_zone: tenant.time_zone.clone(),
                    created_at_ms: now_ms(),
                };
                let mut tx = self.0.begin_with($begin).await.map_err(map_err)?;
                // api_key_hash is still written (expand-only) though keys
                // are read from api_keys now.
                sqlx::query(
                    "INSERT INTO tenants (id, name, api_key_hash, max_accounts, sms_per_day, push_per_minute, \
                     codes_per_day, time_zone, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(created.id.as_uuid())
                .bind(&created.name)
                .bind(key.hash.as_str())
                .bind(i64::from(created.max_accounts))
                .bind(i64::from(created.sms_per_day))
                .bind(i64::from(created.push_per_minute))
                .bind(created.codes_per_day.map(i64::from))
                .bind(created.time_zone.name())
                .bind(created.created_at_ms)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                insert_api_key!(tx, created.id, key, created.created_at_ms);
                for domain in &tenant.domains {
                    insert_domain!(tx, created.id, domain, created.created_at_ms);
                }
                tx.commit().await.map_err(map_err)?;
                Ok(created)
            }

            async fn tenant_by_api_key(&self, key: &ApiKeyHash, now_ms: i64) -> Result<Option<Tenant>, StoreError> {
                let sql = format!(
                    "SELECT {TENANT_COLUMNS} FROM tenants WHERE id = (SELECT tenant_id FROM api_keys \
                     WHERE key_hash = $1 AND (expires_at_ms IS NULL OR expires_at_ms > $2))"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(key.as_str())
                    .bind(now_ms)
                    .fetch_optional(&self.0)
                    .await
                    .map_err(map_err)?
                    .map(|row| tenant_from_row(&row))
                    .transpose()
            }

            async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
                let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id.as_uuid())
                    .fetch_optional(&self.0)
                    .await
                    .map_err(map_err)?
                    .map(|row| tenant_from_row(&row))
                    .transpose()
            }

            async fn create_account(
                &self,
                tenant: TenantId,
                id: AccountId,
                account: &NewAccount,
                sealed_credentials: Option<&[u8]>,
            ) -> Result<Account, StoreError> {
                let mut tx = self.0.begin_with($begin).await.map_err(map_err)?;
                // Locks the tenant row (PostgreSQL) so concurrent creations
                // cannot both pass the quota check; SQLite has one writer.
                let sql = concat!("SELECT max_accounts FROM tenants WHERE id = $1", $for_update);
                let max: i64 = sqlx::query_scalar(sql)
                    .bind(tenant.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .ok_or(StoreError::NotFound("tenant"))?;
                let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE tenant_id = $1")
                    .bind(tenant.as_uuid())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if count >= max {
                    return Err(StoreError::QuotaExceeded("max_accounts"));
                }
                let forwarded = account.kind == AccountKind::EnterpriseForwarded;
                if forwarded {
                    // The nearest owned domain decides.
                    for domain in owners_of(&account.address) {
                        let owner: Option<Uuid> =
                            sqlx::query_scalar("SELECT tenant_id FROM tenant_domains WHERE domain = $1")
                                .bind(&domain)
                                .fetch_optional(&mut *tx)
                                .await
                                .map_err(map_err)?;
                        match owner {
                            Some(owner) if owner != tenant.as_uuid() => {
                                return Err(StoreError::Forbidden(
                                    "address: its domain is assigned to another tenant; only that tenant may forward addresses in it",
                                ));
                            }
                            Some(_) => break,
                            None => {}
                        }
                    }
                }
                let created = Account {
                    tenant_id: tenant,
                    id,
                    address: account.address.clone(),
                    kind: account.kind,
                    server: account.server.clone(),
                    submission: account.submission.clone(),
                    has_credentials: sealed_credentials.is_some(),
                    created_at_ms: now_ms(),
                    watched_folders: Vec::new(),
                };
                let server = created.server.as_ref();
                let submission = created.submission.as_ref();
                sqlx::query(
                    "INSERT INTO accounts (id, tenant_id, address, kind, server_host, server_port, \
                     server_tls, server_username, sealed_credentials, created_at_ms, route, \
                     submission_host, submission_port, submission_tls, submission_username) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                )
                .bind(id.as_uuid())
                .bind(tenant.as_uuid())
                .bind(&created.address)
                .bind(created.kind.as_str())
                .bind(server.map(|s| s.host.clone()))
                .bind(server.map(|s| i32::from(s.port)))
                .bind(server.map(|s| s.tls.as_str()))
                .bind(server.map(|s| s.username.clone()))
                .bind(sealed_credentials.map(<[u8]>::to_vec))
                .bind(created.created_at_ms)
                .bind(forwarded.then(|| created.address.clone()))
                .bind(submission.map(|s| s.host.clone()))
                .bind(submission.map(|s| i32::from(s.port)))
                .bind(submission.map(|s| s.tls.as_str()))
                .bind(submission.map(|s| s.username.clone()))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok(created)
            }

            async fn account(&self, tenant: TenantId, id: AccountId) -> Result<Option<Account>, StoreError> {
                let row = self.owned(ACCOUNT_COLUMNS, "accounts", tenant, id.as_uuid()).await?;
                row.as_ref().map(account_from_row).transpose()
            }

            async fn list_accounts(
                &self,
                tenant: TenantId,
                query: &str,
                after: Option<AccountId>,
                limit: u32,
            ) -> Result<Vec<Account>, StoreError> {
                // The nil UUID sorts before every v7 id: "from the start".
                let after = after.map_or(Uuid::nil(), |a| a.as_uuid());
                // The query is matched literally: LIKE's wildcards escaped.
                let pattern = format!(
                    "%{}%",
                    query.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
                );
                let sql = format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE tenant_id = $1 AND id > $2 \
                     AND lower(address) LIKE $4 ESCAPE '\\' ORDER BY id LIMIT $3"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(tenant.as_uuid())
                    .bind(after)
                    .bind(i64::from(limit.min(MAX_PAGE)))
                    .bind(pattern)
                    .fetch_all(&self.0)
                    .await
                    .map_err(map_err)?
                    .iter()
                    .map(account_from_row)
                    .collect()
            }

            async fn sealed_credentials(
                &self,
                tenant: TenantId,
                id: AccountId,
            ) -> Result<Option<Vec<u8>>, StoreError> {
                let sealed: Option<Option<Vec<u8>>> = sqlx::query_scalar(
                    "SELECT sealed_credentials FROM accounts WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&self.0)
                .await
                .map_err(map_err)?;
                Ok(sealed.flatten())
            }

            async fn start_binding(
                &self,
                tenant: TenantId,
                account: AccountId,
                msisdn: &Msisdn,
                code: &PendingCode,
                limits: &SendLimits,
            ) -> Result<Binding, StoreError> {
                let mut tx = self.0.begin_with($begin).await.map_err(map_err)?;
                let owned: Option<i32> =
                    sqlx::query_scalar("SELECT 1 FROM accounts WHERE tenant_id = $1 AND id = $2")
                        .bind(tenant.as_uuid())
                        .bind(account.as_uuid())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(map_err)?;
                owned.ok_or(StoreError::NotFound("account"))?;
                let sql = format!(
                    "SELECT {BINDING_COLUMNS} FROM bindings \
                     WHERE tenant_id = $1 AND account_id = $2 AND msisdn = $3 AND state <> 'revoked'{}",
                    $for_update
                );
                let live = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(tenant.as_uuid())
                    .bind(account.as_uuid())
                    .bind(msisdn.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .map(|row| binding_from_row(&row))
                    .transpose()?;
                let binding = match live {
                    Some(b) if b.state == BindingState::Verified => {
                        return Err(StoreError::Conflict("the number is already verified for this account".to_owned()));
                    }
                    Some(b) => Binding { updated_at_ms: now_ms(), ..b },
                    None => Binding {
                        tenant_id: tenant,
                        id: BindingId::generate(),
                        account_id: account,
                        msisdn: msisdn.clone(),
                        state: BindingState::Pending,
                        updated_at_ms: now_ms(),
                    },
                };
                // Limits after the verified check: a start that would send
                // nothing is answered by its conflict, not by a limit.
                otp_limits!(tx, tenant, msisdn, limits, $for_update);
                // Upsert by id: a resend replaces the code; its wrong answers
                // still count (they are the number's, per day: otp_sends).
                sqlx::query(
                    "INSERT INTO bindings (id, tenant_id, account_id, msisdn, state, code_mac, \
                     code_expires_at_ms, code_attempts, code_used, updated_at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (id) DO UPDATE SET code_mac = excluded.code_mac, \
                     code_expires_at_ms = excluded.code_expires_at_ms, \
                     code_used = excluded.code_used, updated_at_ms = excluded.updated_at_ms",
                )
                .bind(binding.id.as_uuid())
                .bind(tenant.as_uuid())
                .bind(account.as_uuid())
                .bind(msisdn.as_str())
                .bind(binding.state.as_str())
                .bind(&code.code_mac)
                .bind(code.expires_at_ms)
                .bind(i32::try_from(code.attempts).unwrap_or(i32::MAX))
                .bind(code.used)
                .bind(binding.updated_at_ms)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                otp_sent!(tx, tenant, msisdn, limits);
                tx.commit().await.map_err(map_err)?;
                Ok(binding)
            }

            async fn delete_account(&self, tenant: TenantId, id: AccountId) -> Result<Vec<Msisdn>, StoreError> {
                let mut tx = self.0.begin_with($begin).await.map_err(map_err)?;
                let numbers: Vec<String> = sqlx::query_scalar(
                    "SELECT msisdn FROM bindings WHERE tenant_id = $1 AND account_id = $2 AND state = 'verified' ORDER BY id",
                )
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
                let deleted = sqlx::query("DELETE FROM accounts WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.as_uuid())
                    .bind(id.as_uuid())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if deleted.rows_affected() == 0 {
                    return Err(StoreError::NotFound("account"));
                }
                tx.commit().await.map_err(map_err)?;
                numbers
                    .iter()
                    .map(|n| Msisdn::parse(n).map_err(|e| StoreError::unreadable("msisdn", e)))
                    .collect()
            }

            async fn recipient(&self, address: &str, tenant: Option<TenantId>) -> Result<Option<Recipient>, StoreError> {
                const SELECT: &str = "SELECT a.tenant_id AS tenant_id, a.id AS id, a.kind AS kind, \
                     p.allowed_sources AS allowed_sources, p.client_cert_sha256 AS client_cert_sha256 \
                     FROM accounts a LEFT JOIN relay_policies p ON p.tenant_id = a.tenant_id";
                let row = match tenant {
                    Some(tenant) => {
                        let sql = format!("{SELECT} WHERE a.tenant_id = $1 AND a.address = $2");
                        sqlx::query(sqlx::AssertSqlSafe(sql))
                            .bind(tenant.as_uuid())
                            .bind(address)
                            .fetch_optional(&self.0)
                            .await
                            .map_err(map_err)?
                    }
                    None => {
                        let routed = format!("{SELECT} WHERE a.route = $1");
                        let row = sqlx::query(sqlx::AssertSqlSafe(routed))
                            .bind(address)
                            .fetch_optional(&self.0)
                            .await
                            .map_err(map_err)?;
                        match row {
                            Some(row) => Some(row),
                            None => {
                                // Forwarded accounts without the route route nothing.
                                let other = format!(
                                    "{SELECT} WHERE a.address = $1 AND a.kind <> 'enterprise_forwarded' \
                                     ORDER BY a.created_at_ms, a.id LIMIT 1"
                                );
                                sqlx::query(sqlx::AssertSqlSafe(other))
                                    .bind(address)
                                    .fetch_optional(&self.0)
                                    .await
                                    .map_err(map_err)?
                            }
                        }
                    }
                };
                row.as_ref().map(recipient_from_row).transpose()
            }

            async fn watched_accounts(
                &self,
                after: Option<AccountId>,
                limit: u32,
            ) -> Result<Vec<(Account, Option<Vec<u8>>)>, StoreError> {
                let after = after.map_or(Uuid::nil(), |a| a.as_uuid());
                let sql = format!(
                    "SELECT {ACCOUNT_COLUMNS}, sealed_credentials FROM accounts \
                     WHERE kind IN ('external_imap', 'external_pop3') AND id > $1 ORDER BY id LIMIT $2"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(after)
                    .bind(i64::from(limit.min(MAX_PAGE)))
                    .fetch_all(&self.0)
                    .await
                    .map_err(map_err)?
                    .iter()
                    .map(account_and_sealed_from_row)
                    .collect()
            }

            async fn account_with_credentials(
                &self,
                tenant: TenantId,
                id: AccountId,
            ) -> Result<Option<(Account, Option<Vec<u8>>)>, StoreError> {
                let columns = format!("{ACCOUNT_COLUMNS}, sealed_credentials");
                let row = self.owned(&columns, "accounts", tenant, id.as_uuid()).await?;
                row.as_ref().map(account_and_sealed_from_row).transpose()
            }

            async fn delivery_targets(
                &self,
                tenant: TenantId,
                account: AccountId,
            ) -> Result<Vec<DeliveryTarget>, StoreError> {
                let sql = format!(
                    "SELECT b.id AS binding_id, b.msisdn AS msisdn, d.id AS device_id, \
                     d.has_push_client AS has_push_client, p.binding_id AS preferences_of, {} \
                     FROM bindings b \
                     LEFT JOIN preferences p ON p.binding_id = b.id \
                     LEFT JOIN devices d ON d.tenant_id = b.tenant_id AND d.msisdn = b.msisdn \
                     AND d.revoked_at_ms IS NULL \
                     WHERE b.tenant_id = $1 AND b.account_id = $2 AND b.state = 'verified' \
                     ORDER BY b.id, d.id",
                    PREFERENCE_COLUMNS_OF_P
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(tenant.as_uuid())
                    .bind(account.as_uuid())
                    .fetch_all(&self.0)
                    .await
                    .map_err(map_err)?
                    .iter()
                    .map(target_from_row)
                    .collect()
            }

            async fn accounts_bound_to(&self, tenant: TenantId, msisdn: &Msisdn) -> Result<Vec<AccountId>, StoreError> {
                let ids: Vec<Uuid> = sqlx::query_scalar(
                    "SELECT DISTINCT account_id FROM bindings WHERE tenant_id = $1 AND msisdn = $2 AND state = 'verified'",
                )
                .bind(tenant.as_uuid())
                .bind(msisdn.as_str())
                .fetch_all(&self.0)
                .await
                .map_err(map_err)?;
                Ok(ids.into_iter().map(AccountId::from_uuid).collect())
            }

            async fn binding(&self, tenant: TenantId, id: BindingId) -> Result<Option<Binding>, StoreError> {
                let row = self.owned(BINDING_COLUMNS, "bindings", tenant, id.as_uuid()).await?;
                row.as_ref().map(binding_from_row).transpose()
            }

            async fn answer_binding(
                &self,
                tenant: TenantId,
                id: BindingId,
                day: jiff::civil::Date,
                check: &(dyn for<'c> Fn(&'c mut PendingCode) -> OtpCheck + Send + Sync),
            ) -> Result<(OtpCheck, Binding), StoreError> {
                let mut tx = self.0.begin_with($begin).await.map_err(map_err)?;
                let sql = format!(
                    "SELECT {BINDING_COLUMNS}, code_mac, code_expires_at_ms, code_attempts, code_used \
                     FROM bindings WHERE tenant_id = $1 AND id = $2{}",
                    $for_update
                );
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(tenant.as_uuid())
                    .bind(id.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .ok_or(StoreError::NotFound("binding"))?;
                let mut binding = binding_from_row(&row)?;
                let get = |e: sqlx::Error| StoreError::unavailable("binding code", e);
                let mut code = PendingCode {
                    code_mac: row.try_get::<Option<String>, _>("code_mac").map_err(get)?.unwrap_or_default(),
                    expires_at_ms: row.try_get::<Option<i64>, _>("code_expires_at_ms").map_err(get)?.unwrap_or(0),
                    attempts: u32::try_from(row.try_get::<i32, _>("code_attempts").map_err(get)?).unwrap_or(u32::MAX),
                    used: row.try_get("code_used").map_err(get)?,
                };
                let outcome = match binding.state {
                    BindingState::Pending => {
                        // The guess budget is the number's for the day,
                        // across resends and rebindings.
                        let wrong = otp_wrong!(tx, tenant, &binding.msisdn, day);
                        code.attempts = wrong;
                        let outcome = check(&mut code);
                        if code.attempts > wrong {
                            otp_record_wrong!(tx, tenant, &binding.msisdn, day, code.attempts);
                        }
                        outcome
                    }
                    BindingState::Verified => OtpCheck::AlreadyUsed,
                    BindingState::Revoked => return Err(StoreError::NotFound("pending binding")),
                };
                if outcome == OtpCheck::Accepted {
                    binding.state = BindingState::Verified;
                }
                binding.updated_at_ms = now_ms();
                sqlx::query(
                    "UPDATE bindings SET state = $3, code_attempts = $4, code_used = $5, updated_at_ms = $6 \
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .bind(binding.state.as_str())
                .bind(i32::try_from(code.attempts).unwrap_or(i32::MAX))
                .bind(code.used)
                .bind(binding.updated_at_ms)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok((outcome, binding))
            }

            async fn revoke_binding(&self, tenant: TenantId, id: BindingId) -> Result<Binding, StoreError> {
                let updated = sqlx::query(
                    "UPDATE bindings SET state = 'revoked', updated_at_ms = $3 WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .bind(now_ms())
                .execute(&self.0)
                .await
                .map_err(map_err)?;
                if updated.rows_affected() == 0 {
                    return Err(StoreError::NotFound("binding"));
                }
                self.binding(tenant, id).await?.ok_or(StoreError::NotFound("binding"))
            }

            async fn register_device(&self, tenant: TenantId, device: &NewDevice) -> Result<Device, StoreError> {
                let created = Device {
                    tenant_id: tenant,
                    id: DeviceId::generate(),
                    msisdn: device.msisdn.clone(),
                    label: device.label.clone(),
                    has_push_client: device.has_push_client,
                    revoked_at_ms: None,
                    created_at_ms: now_ms(),
                };
                // The verified binding is checked in the statement itself.
                let inserted = sqlx::query(
                    "INSERT INTO devices (id, tenant_id, msisdn, label, has_push_client, created_at_ms) \
                     SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM bindings \
                     WHERE tenant_id = $2 AND msisdn = $3 AND state = 'verified')",
                )
                .bind(created.id.as_uuid())
                .bind(tenant.as_uuid())
                .bind(created.msisdn.as_str())
                .bind(&created.label)
                .bind(created.has_push_client)
                .bind(created.created_at_ms)
                .execute(&self.0)
                .await
                .map_err(map_err)?;
                if inserted.rows_affected() == 0 {
                    return Err(StoreError::NotFound("verified binding"));
                }
                Ok(created)
            }

            async fn device(&self, tenant: TenantId, id: DeviceId) -> Result<Option<Device>, StoreError> {
                let row = self.owned(DEVICE_COLUMNS, "devices", tenant, id.as_uuid()).await?;
                row.as_ref().map(device_from_row).transpose()
            }

            async fn devices_of(&self, tenant: TenantId, msisdn: &Msisdn) -> Result<Vec<Device>, StoreError> {
                let sql = format!(
                    "SELECT {DEVICE_COLUMNS} FROM devices WHERE tenant_id = $1 AND msisdn = $2 ORDER BY id"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(tenant.as_uuid())
                    .bind(msisdn.as_str())
                    .fetch_all(&self.0)
                    .await
                    .map_err(map_err)?
                    .iter()
                    .map(device_from_row)
                    .collect()
            }

            async fn revoke_device(&self, tenant: TenantId, id: DeviceId, at_ms: i64) -> Result<Device, StoreError> {
                // The first revocation stands: a revoked device is issued no
                // tokens afterwards, so a repeat has nothing more to void.
                let updated = sqlx::query(
                    "UPDATE devices SET revoked_at_ms = COALESCE(revoked_at_ms, $3) WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .bind(at_ms)
                .execute(&self.0)
                .await
                .map_err(map_err)?;
                if updated.rows_affected() == 0 {
                    return Err(StoreError::NotFound("device"));
                }
                self.device(tenant, id).await?.ok_or(StoreError::NotFound("device"))
            }

            async fn preferences(&self, tenant: TenantId, binding: BindingId) -> Result<Preferences, StoreError> {
                self.binding(tenant, binding).await?.ok_or(StoreError::NotFound("binding"))?;
                let sql = format!(
                    "SELECT {PREFERENCE_COLUMNS} FROM preferences WHERE tenant_id = $1 AND binding_id = $2"
                );
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(tenant.as_uuid())
                    .bind(binding.as_uuid())
                    .fetch_optional(&self.0)
                    .await
                    .map_err(map_err)?;
                row.map_or_else(|| Ok(Preferences::default()), |row| preferences_from_row(&row))
            }

            async fn set_preferences(
                &self,
                tenant: TenantId,
                binding: BindingId,
                preferences: &Preferences,
            ) -> Result<(), StoreError> {
                preferences.validate().map_err(|e| StoreError::Invalid(e.to_string()))?;
                self.binding(tenant, binding).await?.ok_or(StoreError::NotFound("binding"))?;
                let quiet = preferences.quiet_hours.as_ref();
                sqlx::query(
                    "INSERT INTO preferences (binding_id, tenant_id, content_level, max_push_bytes, attachments, \
                     quiet_start_min, quiet_end_min, quiet_zone, black_list, white_list, signature, updated_at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT (binding_id) DO UPDATE SET content_level = excluded.content_level, \
                     max_push_bytes = excluded.max_push_bytes, attachments = excluded.attachments, \
                     quiet_start_min = excluded.quiet_start_min, quiet_end_min = excluded.quiet_end_min, \
                     quiet_zone = excluded.quiet_zone, black_list = excluded.black_list, \
                     white_list = excluded.white_list, signature = excluded.signature, \
                     updated_at_ms = excluded.updated_at_ms",
                )
                .bind(binding.as_uuid())
                .bind(tenant.as_uuid())
                .bind(preferences.content_level.as_str())
                .bind(i64::from(preferences.max_push_bytes))
                .bind(preferences.attachments)
                .bind(quiet.map(|q| i32::try_from(q.start_minute()).unwrap_or(0)))
                .bind(quiet.map(|q| i32::try_from(q.end_minute()).unwrap_or(0)))
                .bind(quiet.map(|q| q.zone_name().to_owned()))
                .bind(list_json(&preferences.black_list))
                .bind(list_json(&preferences.white_list))
                .bind(&preferences.signature)
                .bind(now_ms())
                .execute(&self.0)
                .await
                .map_err(map_err)?;
                Ok(())
            }

            async fn charge_sms(
                &self,
                tenant: TenantId,
                account: AccountId,
                day: jiff::civil::Date,
            ) -> Result<(), StoreError> {
                if self.owned("id", "accounts", tenant, account.as_uuid()).await?.is_none() {
                    return Err(StoreError::NotFound("account"));
                }
                let mut tx = self.0.begin_with($begin).await.map_err(map_err)?;
                charge_sms!(tx, tenant, account, day, $for_update);
                tx.commit().await.map_err(map_err)
            }

            async fn record_delivery(&self, d: &Delivery) -> Result<bool, StoreError> {
                // The ownership check rides in the statement; a redelivered
                // receipt (same event id) changes nothing.
                let written = sqlx::query(
                    "INSERT INTO deliveries (event_id, tenant_id, account_id, device_id, idempotency_key, \
                     channel, status, detail, sequence, at_ms) \
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
                     WHERE EXISTS (SELECT 1 FROM accounts WHERE id = $3 AND tenant_id = $2) \
                     ON CONFLICT (event_id) DO NOTHING",
                )
                .bind(&d.event_id)
                .bind(d.tenant.as_uuid())
                .bind(d.account.as_uuid())
                .bind(&d.device_id)
                .bind(&d.idempotency_key)
                .bind(&d.channel)
                .bind(&d.status)
                .bind(&d.detail)
                .bind(counter(d.sequence))
                .bind(d.at_ms)
                .execute(&self.0)
                .await
                .map_err(map_err)?;
                Ok(written.rows_affected() == 1)
            }

            async fn deliveries(
                &self,
                tenant: TenantId,
                account: AccountId,
                after: Option<&DeliveryCursor>,
                limit: u32,
            ) -> Result<Vec<Delivery>, StoreError> {
                let (at, id) = after.map_or((i64::MAX, String::new()), |c| (c.at_ms, c.event_id.clone()));
                let rows = sqlx::query(
                    "SELECT event_id, device_id, idempotency_key, channel, status, detail, sequence, at_ms \
                     FROM deliveries WHERE tenant_id = $1 AND account_id = $2 \
                     AND (at_ms < $3 OR (at_ms = $3 AND event_id < $4)) \
                     ORDER BY at_ms DESC, event_id DESC LIMIT $5",
                )
                .bind(tenant.as_uuid())
                .bind(account.as_uuid())
                .bind(at)
                .bind(id)
                .bind(i64::from(limit.min(MAX_PAGE)))
                .fetch_all(&self.0)
                .await
                .map_err(map_err)?;
                rows.iter()
                    .map(|row| {
                        let get = |e: sqlx::Error| StoreError::unavailable("delivery row", e);
                        Ok(Delivery {
                            event_id: row.try_get("event_id").map_err(get)?,
                            tenant,
                            account,
                            device_id: row.try_get("device_id").map_err(get)?,
                            idempotency_key: row.try_get("idempotency_key").map_err(get)?,
                            channel: row.try_get("channel").map_err(get)?,
                            status: row.try_get("status").map_err(get)?,
                            detail: row.try_get("detail").map_err(get)?,
                            sequence: count(row.try_get("sequence").map_err(get)?),
                            at_ms: row.try_get("at_ms").map_err(get)?,
                        })
                    })
                    .collect()
            }

            async fn prune_deliveries(&self, before_ms: i64) -> Result<u64, StoreError> {
                Ok(sqlx::query("DELETE FROM deliveries WHERE at_ms < $1")
                    .bind(before_ms)
                    .execute(&self.0)
                    .await
                    .map_err(map_err)?
                    .rows_affected())
            }

            async fn prune_code_counts(&self, day: jiff::civil::Date) -> Result<u64, StoreError> {
                Ok(sqlx::query("DELETE FROM otp_sends WHERE day < $1")
                    .bind(day.to_string())
                    .execute(&self.0)
                    .await
                    .map_err(map_err)?
                    .rows_affected())
            }

            async fn record_traffic(
                &self,
                tenant: TenantId,
                account: AccountId,
                day: jiff::civil::Date,
                traffic: &Traffic,
            ) -> Result<(), StoreError> {
                // Called per push and per fetch: the ownership check rides in the
                // same statement (no row when the account is not the tenant's).
                // The WHERE also lets SQLite parse ON CONFLICT after a SELECT.
                let written = sqlx::query(
                    "INSERT INTO traffic_daily (account_id, day, tenant_id, pushed_count, pushed_bytes, \
                     fetched_count, fetched_bytes, sms_count) \
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8 \
                     WHERE EXISTS (SELECT 1 FROM accounts WHERE id = $1 AND tenant_id = $3) \
                     ON CONFLICT (account_id, day) DO UPDATE SET \
                     pushed_count = traffic_daily.pushed_count + excluded.pushed_count, \
                     pushed_bytes = traffic_daily.pushed_bytes + excluded.pushed_bytes, \
                     fetched_count = traffic_daily.fetched_count + excluded.fetched_count, \
                     fetched_bytes = traffic_daily.fetched_bytes + excluded.fetched_bytes, \
                     sms_count = traffic_daily.sms_count + excluded.sms_count",
                )
                .bind(account.as_uuid())
                .bind(day.to_string())
                .bind(tenant.as_uuid())
                .bind(counter(traffic.pushed_count))
                .bind(counter(traffic.pushed_bytes))
                .bind(counter(traffic.fetched_count))
                .bind(counter(traffic.fetched_bytes))
                .bind(counter(traffic.sms_count))
                .execute(&self.0)
                .await
                .map_err(map_err)?;
                if written.rows_affected() == 0 {
                    return Err(StoreError::NotFound("account"));
                }
                Ok(())
            }

            async fn traffic(
                &self,
                tenant: TenantId,
                account: AccountId,
                from: jiff::civil::Date,
                to: jiff::civil::Date,
            ) -> Result<Vec<TrafficDay>, StoreError> {
                let rows = sqlx::query(
                    "SELECT day, pushed_count, pushed_bytes, fetched_count, fetched_bytes, sms_count \
                     FROM traffic_daily WHERE tenant_id = $1 AND account_id = $2 AND day >= $3 AND day <= $4 \
                     ORDER BY day",
                )
                .bind(tenant.as_uuid())
                .bind(account.as_uuid())
                .bind(from.to_string())
                .bind(to.to_string())
                .fetch_all(&self.0)
                .await
                .map_err(map_err)?;
                rows.iter()
                    .map(|row| {
                        let get = |e: sqlx::Error| StoreError::unavailable("traffic row", e);
                        let day: String = row.try_get("day").map_err(get)?;
                        Ok(TrafficDay {
                            day: day.parse().map_err(|_| StoreError::Invalid(format!("bad day {day:?}")))?,
                            traffic: Traffic {
                                pushed_count: count(row.try_get("pushed_count").map_err(get)?),
                                pushed_bytes: count(row.try_get("pushed_bytes").map_err(get)?),
                                fetched_count: count(row.try_get("fetched_count").map_err(get)?),
                                fetched_bytes: count(row.try_get("fetched_bytes").map_err(get)?),
                                sms_count: count(row.try_get("sms_count").map_err(get)?),
                            },
                        })
                    })
                    .collect()
            }

            async fn list_bindings(&self, tenant: TenantId, account: AccountId) -> Result<Vec<Binding>, StoreError> {
                let sql = format!(
                    "SELECT {BINDING_COLUMNS} FROM bindings WHERE tenant_id = $1 AND account_id = $2 ORDER BY id"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(tenant.as_uuid())
                    .bind(account.as_uuid())
                    .fetch_all(&self.0)
                    .await
                    .map_err(map_err)?
                    .iter()
                    .map(binding_from_row)
                    .collect()
            }
        }
    };
}
