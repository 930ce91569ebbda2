//! Row → domain mappers, stamped out per backend row type.

/// Defines `tenant_from_row`, `account_from_row`, `binding_from_row`,
/// `device_from_row` and `preferences_from_row` for one row type.
macro_rules! sql_rows {
    ($row:ty) => {
        fn device_from_row(row: &$row) -> Result<Device, StoreError> {
            let get = |e: sqlx::Error| StoreError::unavailable("device row", e);
            let msisdn: String = row.try_get("msisdn").map_err(get)?;
            Ok(Device {
                id: DeviceId::from_uuid(row.try_get::<Uuid, _>("id").map_err(get)?),
                tenant_id: TenantId::from_uuid(row.try_get::<Uuid, _>("tenant_id").map_err(get)?),
                msisdn: Msisdn::parse(&msisdn).map_err(|e| StoreError::unreadable("msisdn", e))?,
                label: row.try_get("label").map_err(get)?,
                has_push_client: row.try_get("has_push_client").map_err(get)?,
                revoked_at_ms: row.try_get("revoked_at_ms").map_err(get)?,
                created_at_ms: row.try_get("created_at_ms").map_err(get)?,
            })
        }

        fn preferences_from_row(row: &$row) -> Result<Preferences, StoreError> {
            let get = |e: sqlx::Error| StoreError::unavailable("preferences row", e);
            let level: String = row.try_get("content_level").map_err(get)?;
            let quiet = match (
                row.try_get::<Option<i32>, _>("quiet_start_min")
                    .map_err(get)?,
                row.try_get::<Option<i32>, _>("quiet_end_min")
                    .map_err(get)?,
                row.try_get::<Option<String>, _>("quiet_zone")
                    .map_err(get)?,
            ) {
                (Some(start), Some(end), Some(zone)) => Some(
                    QuietHours::new(start.unsigned_abs(), end.unsigned_abs(), &zone)
                        .map_err(|e| StoreError::unreadable("quiet hours", e))?,
                ),
                _ => None,
            };
            Ok(Preferences {
                content_level: ContentLevel::parse(&level).ok_or_else(|| {
                    StoreError::Invalid(format!("unknown content level {level:?}"))
                })?,
                max_push_bytes: u32::try_from(
                    row.try_get::<i64, _>("max_push_bytes").map_err(get)?,
                )
                .map_err(|_| StoreError::Invalid("max_push_bytes out of range".to_owned()))?,
                attachments: row.try_get("attachments").map_err(get)?,
                quiet_hours: quiet,
                black_list: address_list(&row.try_get::<String, _>("black_list").map_err(get)?)?,
                white_list: address_list(&row.try_get::<String, _>("white_list").map_err(get)?)?,
                signature: row.try_get("signature").map_err(get)?,
            })
        }

        fn target_from_row(row: &$row) -> Result<DeliveryTarget, StoreError> {
            let get = |e: sqlx::Error| StoreError::unavailable("target row", e);
            let msisdn: String = row.try_get("msisdn").map_err(get)?;
            let device = match row.try_get::<Option<Uuid>, _>("device_id").map_err(get)? {
                Some(id) => Some(TargetDevice {
                    id: DeviceId::from_uuid(id),
                    has_push_client: row.try_get("has_push_client").map_err(get)?,
                }),
                None => None,
            };
            // No preferences row yet: the defaults apply.
            let preferences = if row
                .try_get::<Option<Uuid>, _>("preferences_of")
                .map_err(get)?
                .is_some()
            {
                preferences_from_row(row)?
            } else {
                Preferences::default()
            };
            Ok(DeliveryTarget {
                binding_id: BindingId::from_uuid(
                    row.try_get::<Uuid, _>("binding_id").map_err(get)?,
                ),
                msisdn: Msisdn::parse(&msisdn).map_err(|e| StoreError::unreadable("msisdn", e))?,
                device,
                preferences,
            })
        }

        fn binding_from_row(row: &$row) -> Result<Binding, StoreError> {
            let get = |e: sqlx::Error| StoreError::unavailable("binding row", e);
            let state: String = row.try_get("state").map_err(get)?;
            let msisdn: String = row.try_get("msisdn").map_err(get)?;
            Ok(Binding {
                id: BindingId::from_uuid(row.try_get::<Uuid, _>("id").map_err(get)?),
                tenant_id: TenantId::from_uuid(row.try_get::<Uuid, _>("tenant_id").map_err(get)?),
                account_id: AccountId::from_uuid(
                    row.try_get::<Uuid, _>("account_id").map_err(get)?,
                ),
                msisdn: Msisdn::parse(&msisdn).map_err(|e| StoreError::unreadable("msisdn", e))?,
                state: BindingState::parse(&state).ok_or_else(|| {
                    StoreError::Invalid(format!("unknown binding state {state:?}"))
                })?,
                updated_at_ms: row.try_get("updated_at_ms").map_err(get)?,
            })
        }

        fn account_from_row(row: &$row) -> Result<Account, StoreError> {
            let get = |e: sqlx::Error| StoreError::unavailable("account row", e);
            let kind: String = row.try_get("kind").map_err(get)?;
            Ok(Account {
                id: AccountId::from_uuid(row.try_get::<Uuid, _>("id").map_err(get)?),
                tenant_id: TenantId::from_uuid(row.try_get::<Uuid, _>("tenant_id").map_err(get)?),
                address: row.try_get("address").map_err(get)?,
                kind: AccountKind::parse(&kind)
                    .ok_or_else(|| StoreError::Invalid(format!("unknown account kind {kind:?}")))?,
                server: server_settings(
                    "server",
                    row.try_get("server_host").map_err(get)?,
                    row.try_get::<Option<i32>, _>("server_port").map_err(get)?,
                    row.try_get("server_tls").map_err(get)?,
                    row.try_get("server_username").map_err(get)?,
                )?,
                submission: server_settings(
                    "submission",
                    row.try_get("submission_host").map_err(get)?,
                    row.try_get::<Option<i32>, _>("submission_port")
                        .map_err(get)?,
                    row.try_get("submission_tls").map_err(get)?,
                    row.try_get("submission_username").map_err(get)?,
                )?,
                watched_folders: serde_json::from_str(
                    &row.try_get::<String, _>("watched_folders").map_err(get)?,
                )
                .map_err(|e| StoreError::unreadable("watched folders", e))?,
                has_credentials: row.try_get("has_credentials").map_err(get)?,
                created_at_ms: row.try_get("created_at_ms").map_err(get)?,
            })
        }

        /// An account read with `sealed_credentials` beside its columns.
        fn account_and_sealed_from_row(
            row: &$row,
        ) -> Result<(Account, Option<Vec<u8>>), StoreError> {
            let sealed: Option<Vec<u8>> = row
                .try_get("sealed_credentials")
                .map_err(|e| StoreError::unavailable("account row", e))?;
            Ok((account_from_row(row)?, sealed))
        }

        fn tenant_from_row(row: &$row) -> Result<Tenant, StoreError> {
            let get = |e: sqlx::Error| StoreError::unavailable("tenant row", e);
            Ok(Tenant {
                id: TenantId::from_uuid(row.try_get::<Uuid, _>("id").map_err(get)?),
                name: row.try_get("name").map_err(get)?,
                max_accounts: quota(row.try_get("max_accounts").map_err(get)?, "max_accounts")?,
                sms_per_day: quota(row.try_get("sms_per_day").map_err(get)?, "sms_per_day")?,
                push_per_minute: quota(
                    row.try_get("push_per_minute").map_err(get)?,
                    "push_per_minute",
                )?,
                codes_per_day: row
                    .try_get::<Option<i64>, _>("codes_per_day")
                    .map_err(get)?
                    .map(|n| quota(n, "codes_per_day"))
                    .transpose()?,
                time_zone: crate::domain::TenantZone::parse(
                    &row.try_get::<String, _>("time_zone").map_err(get)?,
                )
                .map_err(|e| StoreError::unreadable("tenant time zone", e))?,
                created_at_ms: row.try_get("created_at_ms").map_err(get)?,
            })
        }

        fn api_key_from_row(row: &$row) -> Result<ApiKeyRecord, StoreError> {
            let get = |e: sqlx::Error| StoreError::unavailable("api key row", e);
            Ok(ApiKeyRecord {
                id: ApiKeyId::from_uuid(row.try_get::<Uuid, _>("id").map_err(get)?),
                tenant_id: TenantId::from_uuid(row.try_get::<Uuid, _>("tenant_id").map_err(get)?),
                prefix: row.try_get("prefix").map_err(get)?,
                description: row.try_get("description").map_err(get)?,
                created_at_ms: row.try_get("created_at_ms").map_err(get)?,
                expires_at_ms: row.try_get("expires_at_ms").map_err(get)?,
                revoked_at_ms: row.try_get("revoked_at_ms").map_err(get)?,
            })
        }

        fn app_password_from_row(row: &$row) -> Result<AppPassword, StoreError> {
            let get = |e: sqlx::Error| StoreError::unavailable("app password row", e);
            let msisdn: String = row.try_get("msisdn").map_err(get)?;
            let client_id: Option<String> = row.try_get("client_device_id").map_err(get)?;
            let client_kind: Option<String> = row.try_get("client_device_type").map_err(get)?;
            Ok(AppPassword {
                id: AppPasswordId::from_uuid(row.try_get::<Uuid, _>("id").map_err(get)?),
                tenant_id: TenantId::from_uuid(row.try_get::<Uuid, _>("tenant_id").map_err(get)?),
                account_id: AccountId::from_uuid(
                    row.try_get::<Uuid, _>("account_id").map_err(get)?,
                ),
                device_id: DeviceId::from_uuid(row.try_get::<Uuid, _>("device_id").map_err(get)?),
                msisdn: Msisdn::parse(&msisdn).map_err(|e| StoreError::unreadable("msisdn", e))?,
                label: row.try_get("label").map_err(get)?,
                created_at_ms: row.try_get("created_at_ms").map_err(get)?,
                client: client_id.map(|id| ClientDevice {
                    id,
                    kind: client_kind.unwrap_or_default(),
                }),
                last_used_at_ms: row.try_get("last_used_at_ms").map_err(get)?,
                policy_key: row
                    .try_get::<Option<i64>, _>("policy_key")
                    .map_err(get)?
                    .map(|key| {
                        u32::try_from(key).map_err(|e| StoreError::unreadable("policy_key", e))
                    })
                    .transpose()?,
                policy_digest: row
                    .try_get::<Option<String>, _>("policy_digest")
                    .map_err(get)?
                    .unwrap_or_default(),
                device_information: {
                    let text = |column: &str| -> Result<String, StoreError> {
                        Ok(row
                            .try_get::<Option<String>, _>(column)
                            .map_err(|e| StoreError::unavailable("app password row", e))?
                            .unwrap_or_default())
                    };
                    DeviceInformation {
                        model: text("device_model")?,
                        os: text("device_os")?,
                        friendly_name: text("device_name")?,
                        user_agent: text("device_user_agent")?,
                        mobile_operator: text("device_operator")?,
                    }
                },
                revoked_at_ms: row.try_get("revoked_at_ms").map_err(get)?,
                wipe: {
                    let kind: Option<String> = row.try_get("wipe_kind").map_err(get)?;
                    let ordered: Option<i64> = row.try_get("wipe_ordered_at_ms").map_err(get)?;
                    match (kind, ordered) {
                        (Some(kind), Some(ordered_at_ms)) => Some(Wipe {
                            kind: WipeKind::parse(&kind).ok_or_else(|| {
                                StoreError::Invalid(format!("unknown wipe kind {kind:?}"))
                            })?,
                            ordered_at_ms,
                            done_at_ms: row.try_get("wipe_done_at_ms").map_err(get)?,
                        }),
                        _ => None,
                    }
                },
            })
        }

        fn relay_credential_from_row(row: &$row) -> Result<RelayCredential, StoreError> {
            let get = |e: sqlx::Error| StoreError::unavailable("relay row", e);
            Ok(RelayCredential {
                id: RelayCredentialId::from_uuid(row.try_get::<Uuid, _>("id").map_err(get)?),
                tenant_id: TenantId::from_uuid(row.try_get::<Uuid, _>("tenant_id").map_err(get)?),
                username: row.try_get("username").map_err(get)?,
                description: row.try_get("description").map_err(get)?,
                created_at_ms: row.try_get("created_at_ms").map_err(get)?,
                revoked_at_ms: row.try_get("revoked_at_ms").map_err(get)?,
            })
        }

        fn recipient_from_row(row: &$row) -> Result<Recipient, StoreError> {
            let get = |e: sqlx::Error| StoreError::unavailable("recipient row", e);
            let kind: String = row.try_get("kind").map_err(get)?;
            Ok(Recipient {
                tenant: TenantId::from_uuid(row.try_get::<Uuid, _>("tenant_id").map_err(get)?),
                account: AccountId::from_uuid(row.try_get::<Uuid, _>("id").map_err(get)?),
                kind: AccountKind::parse(&kind)
                    .ok_or_else(|| StoreError::Invalid(format!("unknown account kind {kind:?}")))?,
                policy: relay_policy(
                    row.try_get("allowed_sources").map_err(get)?,
                    row.try_get("client_cert_sha256").map_err(get)?,
                )?,
            })
        }
    };
}
