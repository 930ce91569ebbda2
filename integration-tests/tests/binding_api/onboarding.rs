//! Tenants, accounts, binding by SMS code, preferences, and bad input.

use super::*;

#[tokio::test]
async fn a_number_is_bound_with_the_code_from_the_sms_topic() {
    let platform = Platform::new().await;
    let replica = platform.replica().await;
    let mut admin = replica.admin().await;
    let tenant = tenant(&mut admin, 100).await;
    let mut events = platform.events(&tenant.id).await;
    let account = account(&mut admin, &tenant, "Alice@Example.NET").await;
    assert_eq!(
        account.address, "alice@example.net",
        "addresses are normalised"
    );
    assert!(account.has_credentials);
    assert_eq!(
        events.change().await.kind(),
        pushmail_proto::events::v1::BindingChangeKind::AccountCreated
    );

    let msisdn = number();
    let start = pb::StartBindingRequest {
        tenant_id: tenant.id.clone(),
        account_id: account.account_id.clone(),
        msisdn: msisdn.clone(),
    };
    let pending = admin
        .start_binding(authed(&tenant.key, start.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pending.state(), pb::BindingState::Pending);
    let sms = events.sms().await;
    assert_eq!(sms.msisdn, msisdn);
    assert_eq!(sms.purpose(), pushmail_proto::events::v1::SmsPurpose::Otp);
    assert_eq!(sms.account_id, account.account_id);
    assert!(sms.expires_at.is_some() && !sms.request_id.is_empty());
    let Some(sms_outbound::Body::Text(text)) = &sms.body else {
        panic!("{sms:?}")
    };
    assert!(
        text.contains("验证码"),
        "mainland numbers get Chinese text: {text}"
    );
    let code: String = text
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap()
        .to_owned();

    // A wrong code counts an attempt and says how many are left.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let verify = |code: &str| {
        authed(
            &tenant.key,
            pb::VerifyBindingRequest {
                tenant_id: tenant.id.clone(),
                binding_id: pending.binding_id.clone(),
                code: code.to_owned(),
            },
        )
    };
    refused(
        admin.verify_binding(verify(wrong)).await,
        Code::InvalidArgument,
        "4 attempts left",
    );
    refused(
        admin.verify_binding(verify("12ab")).await,
        Code::InvalidArgument,
        "code: must be the six digits",
    );
    let verified = admin
        .verify_binding(verify(&code))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(verified.state(), pb::BindingState::Verified);
    refused(
        admin.verify_binding(verify(&code)).await,
        Code::AlreadyExists,
        "already verified",
    );
    refused(
        admin
            .start_binding(authed(&tenant.key, start.clone()))
            .await,
        Code::AlreadyExists,
        "already verified",
    );
    let change = events.change().await;
    assert_eq!(
        (
            change.kind(),
            change.account_id.as_str(),
            change.msisdn.as_str()
        ),
        (
            pushmail_proto::events::v1::BindingChangeKind::BindingVerified,
            account.account_id.as_str(),
            msisdn.as_str()
        )
    );

    // Dispatch sees the number (no device yet: SMS only) with default preferences.
    let found = targets(&replica, &tenant, &account).await;
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].msisdn.as_str(), found[0].device_id.as_str()),
        (msisdn.as_str(), "")
    );
    assert_eq!(found[0].binding_id, verified.binding_id);

    // Preferences: set, read back, pushed to dispatch's view at once.
    let preferences = pb::Preferences {
        tenant_id: tenant.id.clone(),
        binding_id: verified.binding_id.clone(),
        content_level: pushmail_proto::common::v1::ContentLevel::SubjectSenderSnippet.into(),
        max_push_bytes: 8_192,
        attachments: false,
        quiet_hours: Some(pb::QuietHours {
            start_minute: 22 * 60,
            end_minute: 7 * 60,
            time_zone: "Asia/Shanghai".to_owned(),
        }),
        black_list: Some(pb::AddressList {
            entries: vec!["@spam.example".to_owned()],
        }),
        white_list: Some(pb::AddressList {
            entries: vec!["Boss@Example.net".to_owned()],
        }),
        signature: "Sent from my phone".to_owned(),
    };
    let saved = admin
        .update_preferences(authed(
            &tenant.key,
            pb::UpdatePreferencesRequest {
                preferences: Some(preferences.clone()),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        saved.white_list.as_ref().unwrap().entries,
        ["boss@example.net"]
    );
    let read = admin
        .get_preferences(authed(
            &tenant.key,
            pb::GetPreferencesRequest {
                tenant_id: tenant.id.clone(),
                binding_id: verified.binding_id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, saved);
    // A target's preferences carry no ids of their own: the target names its binding.
    let pushed = targets(&replica, &tenant, &account).await[0]
        .preferences
        .clone()
        .unwrap();
    assert_eq!(
        pushed,
        pb::Preferences {
            tenant_id: String::new(),
            binding_id: String::new(),
            ..saved.clone()
        }
    );
    assert_eq!(
        events.change().await.kind(),
        pushmail_proto::events::v1::BindingChangeKind::PreferencesChanged
    );

    // Ingest's view: the watched account with its credentials opened.
    let watched = replica
        .internal()
        .await
        .list_watched_accounts(as_service(
            Service::Ingest,
            pb::ListWatchedAccountsRequest { page: None },
        ))
        .await
        .unwrap()
        .into_inner();
    let mine = watched
        .accounts
        .iter()
        .find(|a| a.account_id == account.account_id)
        .unwrap();
    assert_eq!(mine.credentials.as_ref().unwrap().password, "s3cret-imap");
    let resolved = replica
        .internal()
        .await
        .resolve_recipient(as_service(
            Service::Ingest,
            pb::ResolveRecipientRequest {
                address: "ALICE@example.net".to_owned(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (resolved.found, resolved.account_id.as_str()),
        (true, account.account_id.as_str())
    );
    assert_eq!(resolved.kind(), pb::AccountKind::ExternalImap);

    // Revoked: gone from dispatch's view, announced.
    admin
        .revoke_binding(authed(
            &tenant.key,
            pb::RevokeBindingRequest {
                tenant_id: tenant.id.clone(),
                binding_id: verified.binding_id.clone(),
            },
        ))
        .await
        .unwrap();
    assert!(targets(&replica, &tenant, &account).await.is_empty());
    assert_eq!(
        events.change().await.kind(),
        pushmail_proto::events::v1::BindingChangeKind::BindingRevoked
    );
    platform.finish(vec![replica]).await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_status_and_writes_nothing() {
    let platform = Platform::new().await;
    let mut config = platform.config();
    config.security.otp_ttl_seconds = 1;
    config.verification.resend_cooldown_seconds = 1;
    let replica = platform.replica_with(config).await;
    let mut admin = replica.admin().await;
    let tenant = tenant_with(
        &mut admin,
        pb::CreateTenantRequest {
            sms_per_day: 0,
            codes_per_day: 2,
            ..Default::default()
        },
    )
    .await;
    let mut events = platform.events(&tenant.id).await;
    let account = account(&mut admin, &tenant, "bob@example.net").await;
    let start = |msisdn: &str| {
        authed(
            &tenant.key,
            pb::StartBindingRequest {
                tenant_id: tenant.id.clone(),
                account_id: account.account_id.clone(),
                msisdn: msisdn.to_owned(),
            },
        )
    };

    refused(
        admin.start_binding(start("12345")).await,
        Code::InvalidArgument,
        "msisdn: ",
    );
    refused(
        admin.start_binding(start("+8612345678901")).await,
        Code::InvalidArgument,
        "mainland mobile",
    );
    refused(
        admin.start_binding(start("")).await,
        Code::InvalidArgument,
        "msisdn",
    );
    let unknown_tenant = pushmail_binding::domain::TenantId::generate().to_string();
    refused(
        admin
            .list_accounts(operator(pb::ListAccountsRequest {
                tenant_id: unknown_tenant.clone(),
                ..Default::default()
            }))
            .await,
        Code::NotFound,
        "tenant not found",
    );
    refused(
        admin
            .start_binding(operator(pb::StartBindingRequest {
                tenant_id: unknown_tenant,
                account_id: account.account_id.clone(),
                msisdn: number(),
            }))
            .await,
        Code::NotFound,
        "account not found",
    );
    refused(
        admin
            .create_account(authed(
                &tenant.key,
                pb::CreateAccountRequest {
                    tenant_id: tenant.id.clone(),
                    address: "BOB@example.net".to_owned(),
                    kind: pb::AccountKind::Webhook.into(),
                    ..Default::default()
                },
            ))
            .await,
        Code::AlreadyExists,
        "bob@example.net",
    );
    refused(
        admin
            .create_account(authed(
                &tenant.key,
                pb::CreateAccountRequest {
                    tenant_id: tenant.id.clone(),
                    address: "carol@example.net".to_owned(),
                    kind: pb::AccountKind::ExternalImap.into(),
                    ..Default::default()
                },
            ))
            .await,
        Code::InvalidArgument,
        "server: is required",
    );
    refused(
        admin
            .create_account(authed(
                &tenant.key,
                pb::CreateAccountRequest {
                    address: "not an address".to_owned(),
                    kind: 4,
                    ..Default::default()
                },
            ))
            .await,
        Code::InvalidArgument,
        "address: ",
    );

    // An expired code: refused, and a new start sends a fresh one.
    let msisdn = number();
    let pending = admin
        .start_binding(start(&msisdn))
        .await
        .unwrap()
        .into_inner();
    let code = events.code_for(&msisdn).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let verify = |code: &str| {
        authed(
            &tenant.key,
            pb::VerifyBindingRequest {
                tenant_id: tenant.id.clone(),
                binding_id: pending.binding_id.clone(),
                code: code.to_owned(),
            },
        )
    };
    refused(
        admin.verify_binding(verify(&code)).await,
        Code::FailedPrecondition,
        "expired",
    );
    // The tenant's two codes a day are spent (that send and this resend;
    // its notification SMS quota, 0, plays no part)…
    let resent = admin
        .start_binding(start(&msisdn))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        resent.binding_id, pending.binding_id,
        "a resend keeps the binding"
    );
    let _ = events.code_for(&msisdn).await;
    // …so a third is refused, and no binding is written for it.
    let other = number();
    let over = admin.start_binding(start(&other)).await;
    let retry = over
        .as_ref()
        .err()
        .and_then(|s| s.metadata().get("retry-after"))
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    assert!(retry.is_some_and(|s| (1..=86_400).contains(&s)), "{over:?}");
    refused(over, Code::ResourceExhausted, "codes_per_day");
    let listed = admin
        .list_bindings(authed(
            &tenant.key,
            pb::ListBindingsRequest {
                tenant_id: tenant.id.clone(),
                account_id: account.account_id.clone(),
                page: None,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.bindings.len(), 1, "{listed:?}");

    // Oversized and malformed preferences.
    let base = pb::Preferences {
        tenant_id: tenant.id.clone(),
        binding_id: pending.binding_id.clone(),
        content_level: 1,
        max_push_bytes: 4_096,
        ..Default::default()
    };
    let update = |preferences: pb::Preferences| {
        authed(
            &tenant.key,
            pb::UpdatePreferencesRequest {
                preferences: Some(preferences),
            },
        )
    };
    let long = pb::AddressList {
        entries: (0..501).map(|i| format!("u{i}@example.net")).collect(),
    };
    refused(
        admin
            .update_preferences(update(pb::Preferences {
                black_list: Some(long),
                ..base.clone()
            }))
            .await,
        Code::InvalidArgument,
        "at most 500 entries",
    );
    refused(
        admin
            .update_preferences(update(pb::Preferences {
                quiet_hours: Some(pb::QuietHours {
                    start_minute: 1,
                    end_minute: 2,
                    time_zone: "Mars/Olympus".to_owned(),
                }),
                ..base.clone()
            }))
            .await,
        Code::InvalidArgument,
        "unknown time zone",
    );
    refused(
        admin
            .update_preferences(update(pb::Preferences {
                content_level: 0,
                ..base.clone()
            }))
            .await,
        Code::InvalidArgument,
        "content_level",
    );
    refused(
        admin
            .update_preferences(update(pb::Preferences {
                max_push_bytes: 1,
                ..base.clone()
            }))
            .await,
        Code::InvalidArgument,
        "max_push_bytes",
    );
    let read = admin
        .get_preferences(authed(
            &tenant.key,
            pb::GetPreferencesRequest {
                tenant_id: tenant.id.clone(),
                binding_id: pending.binding_id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        read.black_list.unwrap().entries.is_empty(),
        "nothing half-written"
    );
    refused(
        admin
            .get_traffic_stats(authed(
                &tenant.key,
                pb::GetTrafficStatsRequest {
                    tenant_id: tenant.id.clone(),
                    account_id: account.account_id.clone(),
                    from_day: "2026-11-30".to_owned(),
                    to_day: "2026-11-01".to_owned(),
                },
            ))
            .await,
        Code::InvalidArgument,
        "to_day",
    );
    platform.finish(vec![replica]).await;
}
