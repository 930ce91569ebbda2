//! No caller reads or changes another tenant's rows, and every call needs
//! credentials that cover it.

use super::*;

#[tokio::test]
async fn tenants_cannot_reach_each_others_rows() {
    let platform = Platform::new().await;
    let replica = platform.replica().await;
    let mut admin = replica.admin().await;
    let alice = tenant(&mut admin, 100).await;
    let mallory = tenant(&mut admin, 100).await;
    let mut events = platform.events(&alice.id).await;
    let account = account(&mut admin, &alice, "victim@example.net").await;
    let msisdn = number();
    let binding = bind(&mut admin, &mut events, &alice, &account, &msisdn).await;
    let device = admin
        .register_device(authed(
            &alice.key,
            pb::RegisterDeviceRequest {
                tenant_id: alice.id.clone(),
                msisdn: msisdn.clone(),
                label: "phone".to_owned(),
                has_push_client: true,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .device
        .unwrap();

    // Mallory naming Alice's tenant: denied before anything is read.
    let as_alice = |key: &str| (key.to_owned(), alice.id.clone());
    let (key, tenant_id) = as_alice(&mallory.key);
    refused(
        admin
            .get_account(authed(
                &key,
                pb::GetAccountRequest {
                    tenant_id: tenant_id.clone(),
                    account_id: account.account_id.clone(),
                },
            ))
            .await,
        Code::PermissionDenied,
        "does not belong to this tenant",
    );
    refused(
        admin
            .list_accounts(authed(
                &key,
                pb::ListAccountsRequest {
                    tenant_id: tenant_id.clone(),
                    ..Default::default()
                },
            ))
            .await,
        Code::PermissionDenied,
        "does not belong",
    );

    // Mallory in her own tenant with Alice's ids: nothing is found, nothing changes.
    let own = |message| authed(&mallory.key, message);
    let mine = mallory.id.clone();
    refused(
        admin
            .get_account(own(pb::GetAccountRequest {
                tenant_id: mine.clone(),
                account_id: account.account_id.clone(),
            }))
            .await,
        Code::NotFound,
        "account not found",
    );
    refused(
        admin
            .delete_account(authed(
                &mallory.key,
                pb::DeleteAccountRequest {
                    tenant_id: mine.clone(),
                    account_id: account.account_id.clone(),
                },
            ))
            .await,
        Code::NotFound,
        "account",
    );
    refused(
        admin
            .start_binding(authed(
                &mallory.key,
                pb::StartBindingRequest {
                    tenant_id: mine.clone(),
                    account_id: account.account_id.clone(),
                    msisdn: number(),
                },
            ))
            .await,
        Code::NotFound,
        "account",
    );
    refused(
        admin
            .revoke_binding(authed(
                &mallory.key,
                pb::RevokeBindingRequest {
                    tenant_id: mine.clone(),
                    binding_id: binding.binding_id.clone(),
                },
            ))
            .await,
        Code::NotFound,
        "binding",
    );
    refused(
        admin
            .verify_binding(authed(
                &mallory.key,
                pb::VerifyBindingRequest {
                    tenant_id: mine.clone(),
                    binding_id: binding.binding_id.clone(),
                    code: "123456".to_owned(),
                },
            ))
            .await,
        Code::NotFound,
        "binding",
    );
    refused(
        admin
            .get_preferences(authed(
                &mallory.key,
                pb::GetPreferencesRequest {
                    tenant_id: mine.clone(),
                    binding_id: binding.binding_id.clone(),
                },
            ))
            .await,
        Code::NotFound,
        "binding",
    );
    refused(
        admin
            .update_preferences(authed(
                &mallory.key,
                pb::UpdatePreferencesRequest {
                    preferences: Some(pb::Preferences {
                        tenant_id: mine.clone(),
                        binding_id: binding.binding_id.clone(),
                        content_level: 1,
                        max_push_bytes: 4_096,
                        ..Default::default()
                    }),
                },
            ))
            .await,
        Code::NotFound,
        "binding",
    );
    refused(
        admin
            .revoke_device(authed(
                &mallory.key,
                pb::RevokeDeviceRequest {
                    tenant_id: mine.clone(),
                    device_id: device.device_id.clone(),
                },
            ))
            .await,
        Code::NotFound,
        "device",
    );
    refused(
        admin
            .issue_device_token(authed(
                &mallory.key,
                pb::IssueDeviceTokenRequest {
                    tenant_id: mine.clone(),
                    device_id: device.device_id.clone(),
                },
            ))
            .await,
        Code::NotFound,
        "device",
    );
    refused(
        admin
            .list_bindings(authed(
                &mallory.key,
                pb::ListBindingsRequest {
                    tenant_id: mine.clone(),
                    account_id: account.account_id.clone(),
                    page: None,
                },
            ))
            .await,
        Code::NotFound,
        "account",
    );
    refused(
        admin
            .get_traffic_stats(authed(
                &mallory.key,
                pb::GetTrafficStatsRequest {
                    tenant_id: mine.clone(),
                    account_id: account.account_id.clone(),
                    from_day: "2026-01-01".to_owned(),
                    to_day: "2026-01-31".to_owned(),
                },
            ))
            .await,
        Code::NotFound,
        "account",
    );
    let devices = admin
        .list_devices(authed(
            &mallory.key,
            pb::ListDevicesRequest {
                tenant_id: mine.clone(),
                msisdn: msisdn.clone(),
                page: None,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        devices.devices.is_empty(),
        "the same number in another tenant shows nothing"
    );
    let accounts = admin
        .list_accounts(authed(
            &mallory.key,
            pb::ListAccountsRequest {
                tenant_id: String::new(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(accounts.accounts.is_empty());
    let theirs = replica
        .internal()
        .await
        .get_delivery_targets(as_service(
            Service::Dispatch,
            pb::GetDeliveryTargetsRequest {
                tenant_id: mine.clone(),
                account_id: account.account_id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        theirs.targets.is_empty(),
        "internal reads are tenant-scoped too"
    );

    // Alice's rows are untouched.
    let still = targets(&replica, &alice, &account).await;
    assert_eq!(still.len(), 1);
    assert_eq!(still[0].device_id, device.device_id);
    platform.finish(vec![replica]).await;
}

#[tokio::test]
async fn every_call_needs_credentials_that_cover_it() {
    let platform = Platform::new().await;
    let replica = platform.replica().await;
    let mut admin = replica.admin().await;
    let mut internal_client = replica.internal().await;
    let alice = tenant(&mut admin, 100).await;
    let list = pb::ListAccountsRequest {
        tenant_id: alice.id.clone(),
        ..Default::default()
    };

    refused(
        admin.list_accounts(Request::new(list.clone())).await,
        Code::Unauthenticated,
        "authorization",
    );
    refused(
        admin
            .list_accounts(authed("pmk_not-a-key", list.clone()))
            .await,
        Code::Unauthenticated,
        "unknown API key",
    );
    let mut basic = Request::new(list.clone());
    basic
        .metadata_mut()
        .insert("authorization", "Basic YWxpY2U6cHc=".parse().unwrap());
    refused(
        admin.list_accounts(basic).await,
        Code::Unauthenticated,
        "Bearer",
    );
    // Tenants cannot create tenants or call the internal surface.
    refused(
        admin
            .create_tenant(authed(
                &alice.key,
                pb::CreateTenantRequest {
                    name: "x".to_owned(),
                    max_accounts: 1,
                    sms_per_day: 1,
                    push_per_minute: 0,
                    ..Default::default()
                },
            ))
            .await,
        Code::PermissionDenied,
        "operators only",
    );
    refused(
        internal_client
            .list_watched_accounts(authed(
                &alice.key,
                pb::ListWatchedAccountsRequest { page: None },
            ))
            .await,
        Code::PermissionDenied,
        "pushmail services only",
    );
    // A tenant's limits are for pushmail services, not for the tenant.
    let limits = pb::GetTenantLimitsRequest {
        tenant_id: alice.id.clone(),
    };
    refused(
        internal_client
            .get_tenant_limits(authed(&alice.key, limits.clone()))
            .await,
        Code::PermissionDenied,
        "pushmail services only",
    );
    let answer = internal_client
        .get_tenant_limits(as_service(Service::Dispatch, limits.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            answer.max_accounts,
            answer.sms_per_day,
            answer.push_per_minute
        ),
        (10, 100, 0)
    );
    refused(
        internal_client
            .get_tenant_limits(as_service(
                Service::Dispatch,
                pb::GetTenantLimitsRequest {
                    tenant_id: uuid::Uuid::now_v7().to_string(),
                },
            ))
            .await,
        Code::NotFound,
        "tenant",
    );
    refused(
        internal_client
            .get_tenant_limits(as_service(
                Service::Dispatch,
                pb::GetTenantLimitsRequest {
                    tenant_id: "not-a-tenant-id".to_owned(),
                },
            ))
            .await,
        Code::InvalidArgument,
        "tenant_id",
    );
    refused(
        internal_client
            .list_watched_accounts(operator(pb::ListWatchedAccountsRequest { page: None }))
            .await,
        Code::PermissionDenied,
        "pushmail services only",
    );
    refused(
        internal_client
            .list_watched_accounts(Request::new(pb::ListWatchedAccountsRequest { page: None }))
            .await,
        Code::Unauthenticated,
        "authorization",
    );
    // Services configure the token once, on their upstream channel.
    let upstream = pushmail_common::grpc::UpstreamConfig {
        token: pushmail_integration_tests::credential_secret(Service::Ingest),
        ..pushmail_common::grpc::UpstreamConfig::at(format!("http://{}", replica.addr))
    };
    let mut from_config =
        pushmail_proto::binding::v1::binding_service_client::BindingServiceClient::new(
            upstream.channel().unwrap(),
        );
    from_config
        .list_watched_accounts(pb::ListWatchedAccountsRequest { page: None })
        .await
        .expect("the configured token is sent on every call");
    // A service may call only its own methods, and never the admin surface.
    refused(
        internal_client
            .list_watched_accounts(as_service(
                Service::Gateway,
                pb::ListWatchedAccountsRequest { page: None },
            ))
            .await,
        Code::PermissionDenied,
        "may not",
    );
    refused(
        internal_client
            .get_tenant_limits(as_service(Service::Session, limits))
            .await,
        Code::PermissionDenied,
        "may not",
    );
    refused(
        admin
            .list_accounts(as_service(Service::Ingest, list.clone()))
            .await,
        Code::PermissionDenied,
        "not an admin credential",
    );
    // A credential signed by another issuer is no credential at all.
    let forged =
        pushmail_common::service_identity::CredentialIssuer::from_seed_hex(&"99".repeat(32))
            .unwrap()
            .mint(Service::Ingest, 0);
    refused(
        internal_client
            .list_watched_accounts(authed(
                forged.expose(),
                pb::ListWatchedAccountsRequest { page: None },
            ))
            .await,
        Code::Unauthenticated,
        "service credential",
    );
    // Operators act for any tenant; an operator must name it.
    admin.list_accounts(operator(list.clone())).await.unwrap();
    refused(
        admin
            .list_accounts(operator(pb::ListAccountsRequest::default()))
            .await,
        Code::InvalidArgument,
        "tenant_id: is required",
    );
    refused(
        admin
            .create_tenant(operator(pb::CreateTenantRequest {
                name: " ".to_owned(),
                max_accounts: 1,
                sms_per_day: 1,
                push_per_minute: 0,
                ..Default::default()
            }))
            .await,
        Code::InvalidArgument,
        "name",
    );
    refused(
        admin
            .list_deliveries(authed(
                &alice.key,
                pb::ListDeliveriesRequest {
                    tenant_id: alice.id.clone(),
                    ..Default::default()
                },
            ))
            .await,
        Code::InvalidArgument,
        "account_id",
    );
    platform.finish(vec![replica]).await;
}

#[tokio::test]
async fn only_the_mailbox_service_reads_one_accounts_access() {
    let platform = Platform::new().await;
    let replica = platform.replica().await;
    let mut admin = replica.admin().await;
    let mut internal_client = replica.internal().await;
    let alice = tenant(&mut admin, 10).await;
    let mallory = tenant(&mut admin, 10).await;
    let imap = account(&mut admin, &alice, "reader@example.net").await;
    let access = |tenant: &str, account: &str| pb::GetAccountAccessRequest {
        tenant_id: tenant.to_owned(),
        account_id: account.to_owned(),
    };
    let request = access(&alice.id, &imap.account_id);

    let got = internal_client
        .get_account_access(as_service(Service::Mailbox, request.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        got,
        pb::WatchedAccount {
            tenant_id: alice.id.clone(),
            account_id: imap.account_id.clone(),
            kind: pb::AccountKind::ExternalImap.into(),
            server: Some(pb::ServerSettings {
                host: "imap.example.net".to_owned(),
                port: 993,
                tls: pb::TlsMode::Implicit.into(),
                username: "reader@example.net".to_owned(),
            }),
            credentials: Some(pb::Credentials {
                password: "s3cret-imap".to_owned(),
            }),
            address: "reader@example.net".to_owned(),
            submission: None,
            submission_credentials: None,
            watched_folders: Vec::new(),
        }
    );

    // No other caller: every other service, the tenant itself, an operator.
    for service in Service::ALL {
        if service == Service::Mailbox {
            continue;
        }
        refused(
            internal_client
                .get_account_access(as_service(service, request.clone()))
                .await,
            Code::PermissionDenied,
            "may not",
        );
    }
    refused(
        internal_client
            .get_account_access(authed(&alice.key, request.clone()))
            .await,
        Code::PermissionDenied,
        "pushmail services only",
    );
    refused(
        internal_client
            .get_account_access(operator(request.clone()))
            .await,
        Code::PermissionDenied,
        "pushmail services only",
    );
    refused(
        internal_client
            .get_account_access(Request::new(request.clone()))
            .await,
        Code::Unauthenticated,
        "authorization",
    );
    // The mailbox credential lists nothing and is no admin credential
    // (every other method: `attacks/credentials.rs`).
    refused(
        internal_client
            .list_watched_accounts(as_service(
                Service::Mailbox,
                pb::ListWatchedAccountsRequest { page: None },
            ))
            .await,
        Code::PermissionDenied,
        "may not",
    );
    refused(
        admin
            .get_account(as_service(
                Service::Mailbox,
                pb::GetAccountRequest {
                    tenant_id: alice.id.clone(),
                    account_id: imap.account_id.clone(),
                },
            ))
            .await,
        Code::PermissionDenied,
        "not an admin credential",
    );

    // An unknown account and Alice's account under Mallory's tenant look
    // the same: not found.
    for (tenant_id, account_id) in [
        (alice.id.clone(), uuid::Uuid::now_v7().to_string()),
        (mallory.id.clone(), imap.account_id.clone()),
    ] {
        refused(
            internal_client
                .get_account_access(as_service(
                    Service::Mailbox,
                    access(&tenant_id, &account_id),
                ))
                .await,
            Code::NotFound,
            "account not found",
        );
    }
    refused(
        internal_client
            .get_account_access(as_service(Service::Mailbox, access(&alice.id, "not-an-id")))
            .await,
        Code::InvalidArgument,
        "account_id",
    );

    // Forwarded and webhook accounts have no server to log in to: their
    // mail is in the platform's own store, so they are answered with
    // their kind and address, and nothing to log in with.
    for kind in [
        pb::AccountKind::EnterpriseForwarded,
        pb::AccountKind::Webhook,
    ] {
        let address = format!("{}@corp.example", unique("serverless"));
        let created = admin
            .create_account(authed(
                &alice.key,
                pb::CreateAccountRequest {
                    tenant_id: alice.id.clone(),
                    address: address.clone(),
                    kind: kind.into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let answered = internal_client
            .get_account_access(as_service(
                Service::Mailbox,
                access(&alice.id, &created.account_id),
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answered.kind(), kind);
        assert_eq!(answered.address, address);
        assert_eq!(answered.account_id, created.account_id);
        assert!(answered.server.is_none(), "{answered:?}");
        assert!(answered.credentials.is_none(), "{answered:?}");
    }

    // An IMAP account whose password is not stored (the API never makes
    // one; a row written otherwise can be): nothing to log in with.
    let bare = account(&mut admin, &alice, "bare@example.net").await;
    let pool = sqlx::PgPool::connect(&platform.database.url).await.unwrap();
    sqlx::query("UPDATE accounts SET sealed_credentials = NULL WHERE id = $1")
        .bind(uuid::Uuid::parse_str(&bare.account_id).unwrap())
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    refused(
        internal_client
            .get_account_access(as_service(
                Service::Mailbox,
                access(&alice.id, &bare.account_id),
            ))
            .await,
        Code::FailedPrecondition,
        "no credentials",
    );
    platform.finish(vec![replica]).await;
}
