//! The `SmsOutboxStore`, `AccountUpdateStore` and `CheckpointStore`
//! queries, stamped out per backend.

/// Implements `SmsOutboxStore`, `AccountUpdateStore` and `CheckpointStore`
/// for `$store`.
macro_rules! sql_extra {
    ($store:ty, $row:ty) => {
        fn outbox_sms_from_row(row: &$row) -> Result<OutboxSms, StoreError> {
            let get = |e: sqlx::Error| StoreError::unavailable("sms outbox row", e);
            Ok(OutboxSms {
                id: row.try_get("id").map_err(get)?,
                tenant: TenantId::from_uuid(row.try_get::<Uuid, _>("tenant_id").map_err(get)?),
                msisdn: row.try_get("msisdn").map_err(get)?,
                purpose: row.try_get("purpose").map_err(get)?,
                kind: row.try_get("kind").map_err(get)?,
                text: row.try_get("body").map_err(get)?,
                url: row.try_get("url").map_err(get)?,
                account_id: row.try_get("account_id").map_err(get)?,
                device_id: row.try_get("device_id").map_err(get)?,
                at_ms: row.try_get("at_ms").map_err(get)?,
            })
        }

        #[async_trait]
        impl SmsOutboxStore for $store {
            async fn record_sms(&self, sms: &OutboxSms) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO sms_outbox (id, tenant_id, msisdn, purpose, kind, body, url, \
                     account_id, device_id, at_ms) \
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
                     WHERE EXISTS (SELECT 1 FROM tenants WHERE id = $2) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(&sms.id)
                .bind(sms.tenant.as_uuid())
                .bind(&sms.msisdn)
                .bind(&sms.purpose)
                .bind(&sms.kind)
                .bind(&sms.text)
                .bind(&sms.url)
                .bind(&sms.account_id)
                .bind(&sms.device_id)
                .bind(sms.at_ms)
                .execute(&self.0)
                .await
                .map_err(map_err)?;
                Ok(())
            }

            async fn sms_outbox(
                &self,
                tenant: Option<TenantId>,
                after: Option<&DeliveryCursor>,
                limit: u32,
            ) -> Result<Vec<OutboxSms>, StoreError> {
                const COLUMNS: &str =
                    "id, tenant_id, msisdn, purpose, kind, body, url, account_id, device_id, at_ms";
                let (at, id) = after.map_or((i64::MAX, String::new()), |c| (c.at_ms, c.event_id.clone()));
                let page = " AND (at_ms < $1 OR (at_ms = $1 AND id < $2)) ORDER BY at_ms DESC, id DESC LIMIT $3";
                let limit = i64::from(limit.min(MAX_PAGE));
                let rows = match tenant {
                    Some(tenant) => {
                        let sql = format!("SELECT {COLUMNS} FROM sms_outbox WHERE tenant_id = $4{page}");
                        sqlx::query(sqlx::AssertSqlSafe(sql))
                            .bind(at)
                            .bind(id)
                            .bind(limit)
                            .bind(tenant.as_uuid())
                            .fetch_all(&self.0)
                            .await
                    }
                    None => {
                        let sql = format!("SELECT {COLUMNS} FROM sms_outbox WHERE TRUE{page}");
                        sqlx::query(sqlx::AssertSqlSafe(sql))
                            .bind(at)
                            .bind(id)
                            .bind(limit)
                            .fetch_all(&self.0)
                            .await
                    }
                }
                .map_err(map_err)?;
                rows.iter().map(outbox_sms_from_row).collect()
            }

            async fn prune_sms(&self, before_ms: i64, keep: u32) -> Result<u64, StoreError> {
                let old = sqlx::query("DELETE FROM sms_outbox WHERE at_ms < $1")
                    .bind(before_ms)
                    .execute(&self.0)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                // Past the count: older than the newest `keep`-th row (a
                // missing row, fewer than that, compares NULL: nothing goes).
                let over = sqlx::query(
                    "DELETE FROM sms_outbox WHERE at_ms < \
                     (SELECT at_ms FROM sms_outbox ORDER BY at_ms DESC, id DESC LIMIT 1 OFFSET $1)",
                )
                .bind(i64::from(keep.saturating_sub(1)))
                .execute(&self.0)
                .await
                .map_err(map_err)?
                .rows_affected();
                Ok(old + over)
            }
        }

        #[async_trait]
        impl AccountUpdateStore for $store {
            async fn update_account(
                &self,
                tenant: TenantId,
                id: AccountId,
                server: Option<&ServerSettings>,
                submission: &SubmissionChange,
                sealed_credentials: Option<&[u8]>,
                watched_folders: Option<&[String]>,
            ) -> Result<Account, StoreError> {
                // COALESCE keeps what the caller did not send; the settings
                // go all four together (a server given whole, or not at all).
                // Submission settings may also be removed, which NULL cannot
                // say through COALESCE: $8 says whether to write them.
                let (touch, new) = match submission {
                    SubmissionChange::Keep => (false, None),
                    SubmissionChange::Set(s) => (true, Some(s)),
                    SubmissionChange::Clear => (true, None),
                };
                let updated = sqlx::query(
                    "UPDATE accounts SET \
                     server_host = COALESCE($3, server_host), server_port = COALESCE($4, server_port), \
                     server_tls = COALESCE($5, server_tls), server_username = COALESCE($6, server_username), \
                     sealed_credentials = COALESCE($7, sealed_credentials), \
                     submission_host = CASE WHEN $8 THEN $9 ELSE submission_host END, \
                     submission_port = CASE WHEN $8 THEN $10 ELSE submission_port END, \
                     submission_tls = CASE WHEN $8 THEN $11 ELSE submission_tls END, \
                     submission_username = CASE WHEN $8 THEN $12 ELSE submission_username END, \
                     watched_folders = COALESCE($13, watched_folders) \
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .bind(server.map(|s| s.host.clone()))
                .bind(server.map(|s| i32::from(s.port)))
                .bind(server.map(|s| s.tls.as_str()))
                .bind(server.map(|s| s.username.clone()))
                .bind(sealed_credentials)
                .bind(touch)
                .bind(new.map(|s| s.host.clone()))
                .bind(new.map(|s| i32::from(s.port)))
                .bind(new.map(|s| s.tls.as_str()))
                .bind(new.map(|s| s.username.clone()))
                .bind(
                    watched_folders
                        .map(serde_json::to_string)
                        .transpose()
                        .map_err(|e| StoreError::Invalid(format!("watched folders: {e}")))?,
                )
                .execute(&self.0)
                .await
                .map_err(map_err)?;
                if updated.rows_affected() == 0 {
                    return Err(StoreError::NotFound("account"));
                }
                let row = self
                    .owned(ACCOUNT_COLUMNS, "accounts", tenant, id.as_uuid())
                    .await?
                    .ok_or(StoreError::NotFound("account"))?;
                account_from_row(&row)
            }
        }

        #[async_trait]
        impl CheckpointStore for $store {
            async fn save_checkpoint(
                &self,
                tenant: TenantId,
                account: AccountId,
                mailbox: &str,
                checkpoint: &MailboxCheckpoint,
            ) -> Result<(), StoreError> {
                // The account's tenant is checked in the same statement; an
                // older checkpoint (a replica that lost its lease) loses.
                let saved = sqlx::query(
                    "INSERT INTO mailbox_checkpoints (account_id, mailbox, uid_validity, last_uid, at_ms) \
                     SELECT $2, $3, $4, $5, $6 \
                     WHERE EXISTS (SELECT 1 FROM accounts WHERE id = $2 AND tenant_id = $1) \
                     ON CONFLICT (account_id, mailbox) DO UPDATE SET \
                     uid_validity = excluded.uid_validity, last_uid = excluded.last_uid, at_ms = excluded.at_ms \
                     WHERE excluded.at_ms >= mailbox_checkpoints.at_ms",
                )
                .bind(tenant.as_uuid())
                .bind(account.as_uuid())
                .bind(mailbox)
                .bind(i64::from(checkpoint.uid_validity))
                .bind(i64::from(checkpoint.last_uid))
                .bind(checkpoint.at_ms)
                .execute(&self.0)
                .await
                .map_err(map_err)?;
                if saved.rows_affected() == 0
                    && self.checkpoint(tenant, account, mailbox).await?.is_none()
                {
                    return Err(StoreError::NotFound("account"));
                }
                Ok(())
            }

            async fn checkpoint(
                &self,
                tenant: TenantId,
                account: AccountId,
                mailbox: &str,
            ) -> Result<Option<MailboxCheckpoint>, StoreError> {
                let row = sqlx::query(
                    "SELECT c.uid_validity, c.last_uid, c.at_ms FROM mailbox_checkpoints c \
                     JOIN accounts a ON a.id = c.account_id \
                     WHERE a.tenant_id = $1 AND c.account_id = $2 AND c.mailbox = $3",
                )
                .bind(tenant.as_uuid())
                .bind(account.as_uuid())
                .bind(mailbox)
                .fetch_optional(&self.0)
                .await
                .map_err(map_err)?;
                let Some(row) = row else { return Ok(None) };
                let get = |e: sqlx::Error| StoreError::unavailable("checkpoint row", e);
                let uid = |v: i64| {
                    u32::try_from(v).map_err(|_| StoreError::Invalid(format!("checkpoint uid {v}")))
                };
                Ok(Some(MailboxCheckpoint {
                    uid_validity: uid(row.try_get("uid_validity").map_err(get)?)?,
                    last_uid: uid(row.try_get("last_uid").map_err(get)?)?,
                    at_ms: row.try_get("at_ms").map_err(get)?,
                }))
            }
        }
    };
}
