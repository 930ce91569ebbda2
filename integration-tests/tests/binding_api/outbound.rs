//! A tenant's outbound relay: set (its host checked against the egress
//! policy, the first time with a password), changed keeping or replacing
//! the password, cleared, never shown with its password on the admin
//! surface, never to another tenant, and handed to the mailbox service
//! with the password as the submission server of the tenant's forwarded
//! and webhook accounts only.

use super::*;

fn relay_server(host: &str, port: u32, username: &str) -> pb::ServerSettings {
    pb::ServerSettings {
        host: host.to_owned(),
        port,
        tls: pb::TlsMode::Starttls.into(),
        username: username.to_owned(),
    }
}

fn set(
    tenant: &TestTenant,
    server: pb::ServerSettings,
    password: Option<&str>,
) -> Request<pb::SetSubmissionRelayRequest> {
    authed(
        &tenant.key,
        pb::SetSubmissionRelayRequest {
            tenant_id: tenant.id.clone(),
            server: Some(server),
            credentials: password.map(|p| pb::Credentials {
                password: p.to_owned(),
            }),
        },
    )
}

async fn shown(
    admin: &mut AdminServiceClient<Channel>,
    tenant: &TestTenant,
) -> pb::SubmissionRelay {
    admin
        .get_submission_relay(authed(
            &tenant.key,
            pb::GetSubmissionRelayRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn local_account(
    admin: &mut AdminServiceClient<Channel>,
    tenant: &TestTenant,
    kind: pb::AccountKind,
) -> String {
    admin
        .create_account(authed(
            &tenant.key,
            pb::CreateAccountRequest {
                address: format!("{}@corp.example", unique("out")),
                kind: kind.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .account_id
}

/// The submission server and its password as the mailbox service is told.
async fn sends_through(
    replica: &Replica,
    tenant: &TestTenant,
    account: &str,
) -> (Option<pb::ServerSettings>, Option<String>) {
    let access = replica
        .internal()
        .await
        .get_account_access(as_service(
            Service::Mailbox,
            pb::GetAccountAccessRequest {
                tenant_id: tenant.id.clone(),
                account_id: account.to_owned(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(access.credentials.is_none(), "no mailbox login of its own");
    (
        access.submission,
        access.submission_credentials.map(|c| c.password),
    )
}

#[tokio::test]
async fn what_a_relay_needs_is_checked_and_nothing_is_stored_when_refused() {
    let platform = Platform::new().await;
    let replica = platform.replica().await;
    let mut admin = replica.admin().await;
    let alice = tenant(&mut admin, 10).await;
    let bob = tenant(&mut admin, 10).await;
    assert_eq!(
        shown(&mut admin, &alice).await.server,
        None,
        "none at first"
    );
    let good = relay_server("smtp.corp.example", 587, "relay-user");
    for (request, code, field) in [
        (
            set(&alice, good.clone(), None),
            Code::InvalidArgument,
            "credentials.password",
        ),
        (
            set(
                &alice,
                relay_server("smtp.corp.example", 587, ""),
                Some("pw"),
            ),
            Code::InvalidArgument,
            "server.username",
        ),
        (
            set(
                &alice,
                relay_server("smtp.corp.example", 0, "u"),
                Some("pw"),
            ),
            Code::InvalidArgument,
            "server.port",
        ),
        (
            set(&alice, relay_server("127.0.0.1", 587, "u"), Some("pw")),
            Code::InvalidArgument,
            "server.host",
        ),
        (
            set(
                &alice,
                relay_server("169.254.169.254", 587, "u"),
                Some("pw"),
            ),
            Code::InvalidArgument,
            "server.host",
        ),
        (
            authed(
                &bob.key,
                pb::SetSubmissionRelayRequest {
                    tenant_id: alice.id.clone(),
                    server: Some(good.clone()),
                    credentials: Some(pb::Credentials {
                        password: "pw".to_owned(),
                    }),
                },
            ),
            Code::PermissionDenied,
            "",
        ),
    ] {
        refused(admin.set_submission_relay(request).await, code, field);
    }
    let mut missing = set(&alice, good, Some("pw"));
    missing.get_mut().server = None;
    refused(
        admin.set_submission_relay(missing).await,
        Code::InvalidArgument,
        "server",
    );
    assert_eq!(
        shown(&mut admin, &alice).await.server,
        None,
        "nothing stored"
    );
    refused(
        admin
            .get_submission_relay(authed(
                &bob.key,
                pb::GetSubmissionRelayRequest {
                    tenant_id: alice.id.clone(),
                },
            ))
            .await,
        Code::PermissionDenied,
        "",
    );
    platform.finish(vec![replica]).await;
}

#[tokio::test]
async fn a_tenants_relay_is_how_its_forwarded_and_webhook_accounts_send() {
    let platform = Platform::new().await;
    let replica = platform.replica().await;
    let mut admin = replica.admin().await;
    let alice = tenant(&mut admin, 10).await;
    let bob = tenant(&mut admin, 10).await;
    let forwarded = local_account(&mut admin, &alice, pb::AccountKind::EnterpriseForwarded).await;
    let webhook = local_account(&mut admin, &alice, pb::AccountKind::Webhook).await;
    let bobs = local_account(&mut admin, &bob, pb::AccountKind::EnterpriseForwarded).await;
    assert_eq!(
        sends_through(&replica, &alice, &forwarded).await,
        (None, None)
    );

    let first = relay_server("smtp.corp.example", 587, "relay-user");
    let saved = admin
        .set_submission_relay(set(&alice, first.clone(), Some("relay-pw-1")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(saved.server.as_ref(), Some(&first), "never the password");
    assert_eq!(shown(&mut admin, &alice).await.server, Some(first.clone()));
    for account in [&forwarded, &webhook] {
        assert_eq!(
            sends_through(&replica, &alice, account).await,
            (Some(first.clone()), Some("relay-pw-1".to_owned()))
        );
    }
    assert_eq!(
        sends_through(&replica, &bob, &bobs).await,
        (None, None),
        "another tenant's accounts do not use it"
    );

    // Changed without a password: the stored one is kept.
    let moved = pb::ServerSettings {
        tls: pb::TlsMode::Implicit.into(),
        ..relay_server("smtp2.corp.example", 465, "relay-user-2")
    };
    admin
        .set_submission_relay(set(&alice, moved.clone(), None))
        .await
        .unwrap();
    assert_eq!(
        sends_through(&replica, &alice, &forwarded).await,
        (Some(moved.clone()), Some("relay-pw-1".to_owned()))
    );
    admin
        .set_submission_relay(set(&alice, moved.clone(), Some("relay-pw-2")))
        .await
        .unwrap();
    assert_eq!(
        sends_through(&replica, &alice, &webhook).await,
        (Some(moved), Some("relay-pw-2".to_owned()))
    );

    let cleared = admin
        .clear_submission_relay(authed(
            &alice.key,
            pb::ClearSubmissionRelayRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cleared.server, None);
    assert_eq!(
        sends_through(&replica, &alice, &forwarded).await,
        (None, None)
    );
    // After a clear, the next relay needs its password again.
    refused(
        admin.set_submission_relay(set(&alice, first, None)).await,
        Code::InvalidArgument,
        "credentials.password",
    );
    platform.finish(vec![replica]).await;
}
