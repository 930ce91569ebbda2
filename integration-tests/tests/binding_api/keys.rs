//! API key rotation and revocation, owned domains and platform-unique
//! forwarded addresses, devices only on verified numbers.

use super::*;

async fn who(admin: &mut AdminServiceClient<Channel>, key: &str) -> Result<String, Status> {
    admin
        .who_am_i(authed(key, pb::WhoAmIRequest {}))
        .await
        .map(|r| r.into_inner().tenant_id)
}

#[tokio::test]
async fn api_keys_rotate_with_a_grace_and_the_last_one_needs_saying_so() {
    let platform = Platform::new().await;
    let replica = platform.replica().await;
    let mut admin = replica.admin().await;
    let alice = tenant(&mut admin, 10).await;
    let mallory = tenant(&mut admin, 10).await;

    let listed = admin
        .list_api_keys(authed(&alice.key, pb::ListApiKeysRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert_eq!(listed.len(), 1, "the key made with the tenant");
    assert!(alice.key.starts_with(&listed[0].prefix) && listed[0].prefix.len() == 12);
    let first_id = listed[0].key_id.clone();

    // The tenant makes its own second key (shown once, recognisable).
    let made = admin
        .create_api_key(authed(
            &alice.key,
            pb::CreateApiKeyRequest {
                description: "ci".to_owned(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let second = made.api_key.clone();
    let second_id = made.key.unwrap().key_id;
    assert_eq!(who(&mut admin, &second).await.unwrap(), alice.id);

    // Rotation: the old key keeps working through its grace, then stops.
    let revoked = admin
        .revoke_api_key(authed(
            &second,
            pb::RevokeApiKeyRequest {
                key_id: first_id.clone(),
                grace_seconds: 1,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(revoked.active && revoked.revoked_at.is_some() && revoked.expires_at.is_some());
    assert_eq!(
        who(&mut admin, &alice.key).await.unwrap(),
        alice.id,
        "within the grace"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let refused_after = loop {
        match who(&mut admin, &alice.key).await {
            Err(status) => break status,
            Ok(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(_) => panic!("the old key still works 30 s after its 1 s grace"),
        }
    };
    assert_eq!(refused_after.code(), Code::Unauthenticated);

    // Another tenant neither lists nor revokes Alice's keys.
    refused(
        admin
            .list_api_keys(authed(
                &mallory.key,
                pb::ListApiKeysRequest {
                    tenant_id: alice.id.clone(),
                },
            ))
            .await,
        Code::PermissionDenied,
        "does not belong",
    );
    refused(
        admin
            .revoke_api_key(authed(
                &mallory.key,
                pb::RevokeApiKeyRequest {
                    key_id: second_id.clone(),
                    confirm_last_key: true,
                    ..Default::default()
                },
            ))
            .await,
        Code::NotFound,
        "api key",
    );

    // The last working key stays unless the caller says so; then it stops at once.
    let last = pb::RevokeApiKeyRequest {
        key_id: second_id.clone(),
        ..Default::default()
    };
    refused(
        admin.revoke_api_key(authed(&second, last.clone())).await,
        Code::FailedPrecondition,
        "last working key",
    );
    assert_eq!(who(&mut admin, &second).await.unwrap(), alice.id);
    refused(
        admin
            .revoke_api_key(authed(
                &second,
                pb::RevokeApiKeyRequest {
                    grace_seconds: 31 * 24 * 3_600,
                    ..last.clone()
                },
            ))
            .await,
        Code::InvalidArgument,
        "grace_seconds",
    );
    admin
        .revoke_api_key(authed(
            &second,
            pb::RevokeApiKeyRequest {
                confirm_last_key: true,
                ..last
            },
        ))
        .await
        .unwrap();
    refused(
        who(&mut admin, &second).await.map(tonic::Response::new),
        Code::Unauthenticated,
        "unknown API key",
    );
    // An operator can give the tenant a key again.
    let rescue = admin
        .create_api_key(operator(pb::CreateApiKeyRequest {
            tenant_id: alice.id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(who(&mut admin, &rescue.api_key).await.unwrap(), alice.id);
    platform.finish(vec![replica]).await;
}

#[tokio::test]
async fn a_forwarded_address_routes_to_one_tenant_and_owned_domains_are_the_owners() {
    let platform = Platform::new().await;
    let replica = platform.replica().await;
    let mut admin = replica.admin().await;
    let mut internal_client = replica.internal().await;
    let alice = tenant(&mut admin, 10).await;
    let mallory = tenant(&mut admin, 10).await;
    let forwarded = |tenant: &TestTenant, address: &str| {
        authed(
            &tenant.key,
            pb::CreateAccountRequest {
                address: address.to_owned(),
                kind: pb::AccountKind::EnterpriseForwarded.into(),
                ..Default::default()
            },
        )
    };
    let address = format!("{}@shared.example", unique("boss"));
    let first = admin
        .create_account(forwarded(&alice, &address))
        .await
        .unwrap()
        .into_inner();
    refused(
        admin.create_account(forwarded(&mallory, &address)).await,
        Code::AlreadyExists,
        "one account on the whole platform",
    );
    let resolve = |address: &str| {
        as_service(
            Service::Ingest,
            pb::ResolveRecipientRequest {
                address: address.to_owned(),
                ..Default::default()
            },
        )
    };
    let resolved = internal_client
        .resolve_recipient(resolve(&address))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            resolved.found,
            resolved.tenant_id.as_str(),
            resolved.account_id.as_str()
        ),
        (true, alice.id.as_str(), first.account_id.as_str()),
        "still Alice's"
    );

    // Domains: operators assign; the owner forwards in them, no one else.
    let domain = format!("{}.example", unique("corp"));
    refused(
        admin
            .set_tenant_domains(authed(
                &alice.key,
                pb::SetTenantDomainsRequest {
                    tenant_id: alice.id.clone(),
                    domains: vec![domain.clone()],
                },
            ))
            .await,
        Code::PermissionDenied,
        "operators only",
    );
    let set = admin
        .set_tenant_domains(operator(pb::SetTenantDomainsRequest {
            tenant_id: alice.id.clone(),
            domains: vec![domain.to_uppercase()],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(set.domains, std::slice::from_ref(&domain));
    let mine = admin
        .get_tenant_domains(authed(&alice.key, pb::GetTenantDomainsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.domains, std::slice::from_ref(&domain));
    refused(
        admin
            .create_account(forwarded(&mallory, &format!("ceo@{domain}")))
            .await,
        Code::PermissionDenied,
        "assigned to another tenant",
    );
    admin
        .create_account(forwarded(&alice, &format!("ceo@{domain}")))
        .await
        .unwrap();
    refused(
        admin
            .create_tenant(operator(pb::CreateTenantRequest {
                name: "Copycat".to_owned(),
                domains: vec![domain.clone()],
                ..Default::default()
            }))
            .await,
        Code::AlreadyExists,
        "belongs to another tenant",
    );
    refused(
        admin
            .set_tenant_domains(operator(pb::SetTenantDomainsRequest {
                tenant_id: mallory.id.clone(),
                domains: vec!["not a domain".to_owned()],
            }))
            .await,
        Code::InvalidArgument,
        "domains",
    );

    // Devices attach only to a number verified in the caller's tenant.
    let mut events = platform.events(&alice.id).await;
    let account = account(
        &mut admin,
        &alice,
        &format!("{}@example.net", unique("dev")),
    )
    .await;
    let msisdn = number();
    let register = |tenant: &TestTenant, msisdn: &str| {
        authed(
            &tenant.key,
            pb::RegisterDeviceRequest {
                msisdn: msisdn.to_owned(),
                label: "phone".to_owned(),
                has_push_client: true,
                ..Default::default()
            },
        )
    };
    refused(
        admin.register_device(register(&alice, &msisdn)).await,
        Code::FailedPrecondition,
        "no verified binding",
    );
    bind(&mut admin, &mut events, &alice, &account, &msisdn).await;
    refused(
        admin.register_device(register(&mallory, &msisdn)).await,
        Code::FailedPrecondition,
        "no verified binding",
    );
    admin
        .register_device(register(&alice, &msisdn))
        .await
        .expect("a verified number takes devices");
    platform.finish(vec![replica]).await;
}

#[tokio::test]
async fn mailbox_hosts_on_internal_networks_are_refused_unless_allowed() {
    let platform = Platform::new().await;
    let replica = platform.replica().await;
    let mut admin = replica.admin().await;
    let alice = tenant(&mut admin, 10).await;
    let imap_at = |host: &str| {
        authed(
            &alice.key,
            pb::CreateAccountRequest {
                address: format!("{}@example.net", unique("ssrf")),
                kind: pb::AccountKind::ExternalImap.into(),
                server: Some(pb::ServerSettings {
                    host: host.to_owned(),
                    port: 143,
                    tls: pb::TlsMode::Implicit.into(),
                    username: "u".to_owned(),
                }),
                credentials: Some(pb::Credentials {
                    password: "p".to_owned(),
                }),
                ..Default::default()
            },
        )
    };
    for host in [
        "127.0.0.1",
        "localhost",
        "169.254.169.254",
        "2852039166",
        "10.0.0.1",
        "::1",
        "::ffff:127.0.0.1",
    ] {
        refused(
            admin.create_account(imap_at(host)).await,
            Code::InvalidArgument,
            "server.host: ",
        );
    }
    let listed = admin
        .list_accounts(authed(&alice.key, pb::ListAccountsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.accounts.is_empty(), "nothing created: {listed:?}");
    platform.finish(vec![replica]).await;

    // The operator may allow a network (tests and standalone allow loopback).
    let platform = Platform::new().await;
    let mut config = platform.config();
    config.accounts = pushmail_common::egress::EgressConfig::loopback();
    let replica = platform.replica_with(config).await;
    let mut admin = replica.admin().await;
    let alice = tenant(&mut admin, 10).await;
    admin
        .create_account(authed(
            &alice.key,
            pb::CreateAccountRequest {
                address: "local@example.net".to_owned(),
                kind: pb::AccountKind::ExternalImap.into(),
                server: Some(pb::ServerSettings {
                    host: "127.0.0.1".to_owned(),
                    port: 143,
                    tls: pb::TlsMode::None.into(),
                    username: "u".to_owned(),
                }),
                credentials: Some(pb::Credentials {
                    password: "p".to_owned(),
                }),
                ..Default::default()
            },
        ))
        .await
        .expect("allowed by the operator");
    refused(
        admin
            .create_account(authed(
                &alice.key,
                pb::CreateAccountRequest {
                    address: "meta@example.net".to_owned(),
                    kind: pb::AccountKind::ExternalImap.into(),
                    server: Some(pb::ServerSettings {
                        host: "169.254.169.254".to_owned(),
                        port: 80,
                        tls: pb::TlsMode::None.into(),
                        username: "u".to_owned(),
                    }),
                    credentials: Some(pb::Credentials {
                        password: "p".to_owned(),
                    }),
                    ..Default::default()
                },
            ))
            .await,
        Code::InvalidArgument,
        "link-local",
    );
    platform.finish(vec![replica]).await;
}
