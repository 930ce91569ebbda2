//! The SMS outbox over gRPC (a tenant sees its own SMS, an operator every
//! tenant's, nobody anything where it is off) and `UpdateAccount` (checked
//! as creation is, scoped to the tenant, announced, and what ingest reads).

use super::*;

/// A replica that keeps the SMS outbox (standalone's setting).
fn outbox_config(platform: &Platform) -> pushmail_binding::Config {
    let mut config = platform.config();
    config.sms_outbox.enabled = true;
    config.sms_outbox.group = unique("binding-sms-outbox");
    config
}

async fn outbox(
    admin: &mut AdminServiceClient<Channel>,
    token: &str,
    tenant: &str,
) -> Result<Vec<pb::OutboundSms>, Status> {
    admin
        .list_outbound_sms(authed(
            token,
            pb::ListOutboundSmsRequest {
                tenant_id: tenant.to_owned(),
                page: None,
            },
        ))
        .await
        .map(|r| r.into_inner().messages)
}

#[tokio::test]
async fn the_sms_outbox_shows_a_tenant_its_own_an_operator_all_and_nothing_when_off() {
    let platform = Platform::new().await;
    let on = platform.replica_with(outbox_config(&platform)).await;
    let off = platform.replica().await;
    let mut admin = on.admin().await;
    let alice = tenant(&mut admin, 10).await;
    let bob = tenant(&mut admin, 10).await;
    let account = account(
        &mut admin,
        &alice,
        &format!("{}@example.net", unique("sms")),
    )
    .await;
    let msisdn = number();
    let started = admin
        .start_binding(authed(
            &alice.key,
            pb::StartBindingRequest {
                tenant_id: alice.id.clone(),
                account_id: account.account_id.clone(),
                msisdn: msisdn.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();

    // The code SMS shows up in Alice's outbox (the outbox consumes the
    // topic on its own): wait for it to be there.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let sms = loop {
        let listed = outbox(&mut admin, &alice.key, "").await.unwrap();
        if let Some(sms) = listed.into_iter().find(|s| s.msisdn == msisdn) {
            break sms;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no SMS in the outbox"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (
            sms.purpose.as_str(),
            sms.kind.as_str(),
            sms.tenant_id.as_str()
        ),
        ("otp", "text", alice.id.as_str())
    );
    assert_eq!(sms.account_id, account.account_id);
    // Its text is the code the number would have got: it verifies.
    let code = pushmail_integration_tests::otp_code(&sms.text).unwrap();
    let verified = admin
        .verify_binding(authed(
            &alice.key,
            pb::VerifyBindingRequest {
                tenant_id: alice.id.clone(),
                binding_id: started.binding_id,
                code,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(verified.state(), pb::BindingState::Verified);

    // Bob sees none of it and cannot ask for Alice's.
    let bobs = outbox(&mut admin, &bob.key, "").await.unwrap();
    assert!(bobs.iter().all(|s| s.tenant_id == bob.id), "{bobs:?}");
    refused(
        admin
            .list_outbound_sms(authed(
                &bob.key,
                pb::ListOutboundSmsRequest {
                    tenant_id: alice.id.clone(),
                    page: None,
                },
            ))
            .await,
        Code::PermissionDenied,
        "does not belong",
    );
    // An operator sees every tenant's, or one tenant's.
    let all = outbox(&mut admin, OPERATOR_TOKEN, "").await.unwrap();
    assert!(all.iter().any(|s| s.msisdn == msisdn), "{all:?}");
    let only_bob = outbox(&mut admin, OPERATOR_TOKEN, &bob.id).await.unwrap();
    assert!(only_bob.iter().all(|s| s.msisdn != msisdn));
    // No service credential reads it.
    refused(
        admin
            .list_outbound_sms(as_service(
                Service::Dispatch,
                pb::ListOutboundSmsRequest::default(),
            ))
            .await,
        Code::PermissionDenied,
        "not an admin credential",
    );

    // Where the outbox is off it does not exist, for anyone.
    let mut off_admin = off.admin().await;
    for (token, tenant) in [(alice.key.as_str(), ""), (OPERATOR_TOKEN, "")] {
        refused(
            outbox(&mut off_admin, token, tenant)
                .await
                .map(tonic::Response::new),
            Code::NotFound,
            "SMS outbox",
        );
    }
    for (replica, kept) in [(&on, true), (&off, false)] {
        let me = replica
            .admin()
            .await
            .who_am_i(authed(&alice.key, pb::WhoAmIRequest {}))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(me.sms_outbox, kept);
    }
    platform.finish(vec![on, off]).await;
}

async fn watched(replica: &Replica, account: &str) -> pb::WatchedAccount {
    replica
        .internal()
        .await
        .list_watched_accounts(as_service(
            Service::Ingest,
            pb::ListWatchedAccountsRequest { page: None },
        ))
        .await
        .unwrap()
        .into_inner()
        .accounts
        .into_iter()
        .find(|a| a.account_id == account)
        .expect("the account is watched")
}

fn update(
    tenant: &TestTenant,
    account: &str,
    server: Option<pb::ServerSettings>,
    password: Option<&str>,
) -> pb::UpdateAccountRequest {
    pb::UpdateAccountRequest {
        tenant_id: tenant.id.clone(),
        account_id: account.to_owned(),
        server,
        credentials: password.map(|p| pb::Credentials {
            password: p.to_owned(),
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn update_account_is_checked_like_creation_and_reaches_ingest() {
    let platform = Platform::new().await;
    let replica = platform.replica().await;
    let mut admin = replica.admin().await;
    let alice = tenant(&mut admin, 10).await;
    let bob = tenant(&mut admin, 10).await;
    let mut events = platform.events(&alice.id).await;
    let address = format!("{}@example.net", unique("moving"));
    let mailbox = account(&mut admin, &alice, &address).await;
    let id = mailbox.account_id.clone();
    let moved = pb::ServerSettings {
        host: "imap2.example.net".to_owned(),
        port: 143,
        tls: pb::TlsMode::Starttls.into(),
        username: "alice2".to_owned(),
    };
    let updated = admin
        .update_account(authed(
            &alice.key,
            update(&alice, &id, Some(moved.clone()), Some("n3w-pass")),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.server.as_ref(), Some(&moved));
    assert!(updated.has_credentials);
    // Ingest's next account list carries the new server and password.
    let seen = watched(&replica, &id).await;
    assert_eq!(seen.server.as_ref(), Some(&moved));
    assert_eq!(seen.credentials.unwrap().password, "n3w-pass");
    // Announced, so caches of the account drop what they hold.
    loop {
        let change = events.change().await;
        if change.kind() == pushmail_proto::events::v1::BindingChangeKind::AccountUpdated {
            assert_eq!(change.account_id, id);
            break;
        }
    }
    // The password alone; the settings stay.
    admin
        .update_account(authed(&alice.key, update(&alice, &id, None, Some("third"))))
        .await
        .unwrap();
    let seen = watched(&replica, &id).await;
    assert_eq!(
        (
            seen.server.as_ref(),
            seen.credentials.unwrap().password.as_str()
        ),
        (Some(&moved), "third")
    );

    // Refused whole, nothing changed: a host on an internal network, an
    // empty change, an empty password, a forwarded account, another tenant.
    let internal = pb::ServerSettings {
        host: "127.0.0.1".to_owned(),
        ..moved.clone()
    };
    refused(
        admin
            .update_account(authed(
                &alice.key,
                update(&alice, &id, Some(internal), None),
            ))
            .await,
        Code::InvalidArgument,
        "server.host",
    );
    refused(
        admin
            .update_account(authed(&alice.key, update(&alice, &id, None, None)))
            .await,
        Code::InvalidArgument,
        "nothing to change",
    );
    refused(
        admin
            .update_account(authed(&alice.key, update(&alice, &id, None, Some(""))))
            .await,
        Code::InvalidArgument,
        "credentials.password",
    );
    let forwarded = admin
        .create_account(authed(
            &alice.key,
            pb::CreateAccountRequest {
                tenant_id: alice.id.clone(),
                address: format!("{}@corp.example", unique("fwd")),
                kind: pb::AccountKind::EnterpriseForwarded.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    refused(
        admin
            .update_account(authed(
                &alice.key,
                update(&alice, &forwarded.account_id, Some(moved.clone()), None),
            ))
            .await,
        Code::FailedPrecondition,
        "no mailbox server",
    );
    refused(
        admin
            .update_account(authed(&bob.key, update(&bob, &id, None, Some("stolen"))))
            .await,
        Code::NotFound,
        "account",
    );
    refused(
        admin
            .update_account(authed(&bob.key, update(&alice, &id, None, Some("stolen"))))
            .await,
        Code::PermissionDenied,
        "does not belong",
    );
    let seen = watched(&replica, &id).await;
    assert_eq!(
        (
            seen.server.as_ref(),
            seen.credentials.unwrap().password.as_str()
        ),
        (Some(&moved), "third")
    );
    platform.finish(vec![replica]).await;
}
