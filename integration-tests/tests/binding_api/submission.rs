//! Submission settings: an IMAP/POP3 account's own SMTP submission server,
//! set at creation, replaced or removed by `UpdateAccount`, checked as the
//! mailbox server is (the egress policy too), refused for kinds without a
//! login of their own, and handed with the address to the mailbox service
//! (`GetAccountAccess`) and ingest (`ListWatchedAccounts`).

use super::*;

fn smtp(host: &str, port: u32, tls: pb::TlsMode, username: &str) -> pb::ServerSettings {
    pb::ServerSettings {
        host: host.to_owned(),
        port,
        tls: tls.into(),
        username: username.to_owned(),
    }
}

fn mailbox_server(username: &str) -> pb::ServerSettings {
    smtp("imap.example.net", 993, pb::TlsMode::Implicit, username)
}

/// An account of `kind` with a mailbox server and password where the kind
/// takes them, and `submission`.
fn create(
    tenant: &TestTenant,
    address: &str,
    kind: pb::AccountKind,
    submission: Option<pb::ServerSettings>,
) -> Request<pb::CreateAccountRequest> {
    let watched = matches!(
        kind,
        pb::AccountKind::ExternalImap | pb::AccountKind::ExternalPop3
    );
    authed(
        &tenant.key,
        pb::CreateAccountRequest {
            tenant_id: tenant.id.clone(),
            address: address.to_owned(),
            kind: kind.into(),
            server: watched.then(|| mailbox_server(address)),
            credentials: watched.then(|| pb::Credentials {
                password: "s3cret-imap".to_owned(),
            }),
            submission,
        },
    )
}

fn change(
    tenant: &TestTenant,
    account: &str,
    submission: Option<pb::ServerSettings>,
    clear_submission: bool,
) -> Request<pb::UpdateAccountRequest> {
    authed(
        &tenant.key,
        pb::UpdateAccountRequest {
            tenant_id: tenant.id.clone(),
            account_id: account.to_owned(),
            submission,
            clear_submission,
            ..Default::default()
        },
    )
}

async fn access(replica: &Replica, tenant: &TestTenant, account: &str) -> pb::WatchedAccount {
    replica
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
        .into_inner()
}

async fn listed_to_ingest(replica: &Replica, account: &str) -> pb::WatchedAccount {
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

#[tokio::test]
async fn submission_settings_are_set_replaced_and_cleared_and_reach_the_mailbox_service() {
    let platform = Platform::new().await;
    let replica = platform.replica().await;
    let mut admin = replica.admin().await;
    let alice = tenant(&mut admin, 10).await;
    let bob = tenant(&mut admin, 10).await;
    let mut events = platform.events(&alice.id).await;

    // Created with submission settings; the empty username (the same
    // login as the mailbox server's) is kept as given.
    let address = format!("{}@example.net", unique("sender"));
    let first = smtp("smtp.example.net", 587, pb::TlsMode::Starttls, "");
    let created = admin
        .create_account(create(
            &alice,
            &address,
            pb::AccountKind::ExternalImap,
            Some(first.clone()),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.submission.as_ref(), Some(&first));
    let id = created.account_id.clone();
    let got = admin
        .get_account(authed(
            &alice.key,
            pb::GetAccountRequest {
                tenant_id: alice.id.clone(),
                account_id: id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, created);

    // The mailbox service reads the address, the submission server and
    // the one password; ingest's list carries the same.
    let seen = access(&replica, &alice, &id).await;
    assert_eq!(
        seen,
        pb::WatchedAccount {
            tenant_id: alice.id.clone(),
            account_id: id.clone(),
            kind: pb::AccountKind::ExternalImap.into(),
            server: Some(mailbox_server(&address)),
            credentials: Some(pb::Credentials {
                password: "s3cret-imap".to_owned(),
            }),
            address: address.clone(),
            submission: Some(first.clone()),
            submission_credentials: None,
            watched_folders: Vec::new(),
        }
    );
    assert_eq!(listed_to_ingest(&replica, &id).await, seen);

    // Replaced whole; the mailbox server and password stay; announced.
    let second = smtp("smtp2.example.net", 465, pb::TlsMode::Implicit, "sender");
    let updated = admin
        .update_account(change(&alice, &id, Some(second.clone()), false))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.submission.as_ref(), Some(&second));
    assert_eq!(updated.server, Some(mailbox_server(&address)));
    loop {
        let change = events.change().await;
        if change.kind() == pushmail_proto::events::v1::BindingChangeKind::AccountUpdated {
            assert_eq!(change.account_id, id);
            break;
        }
    }
    let seen = access(&replica, &alice, &id).await;
    assert_eq!(
        (
            seen.submission.as_ref(),
            seen.credentials.unwrap().password.as_str()
        ),
        (Some(&second), "s3cret-imap")
    );

    // A change of the mailbox server or the password leaves them alone.
    let moved = smtp("imap2.example.net", 143, pb::TlsMode::Starttls, "alice2");
    let updated = admin
        .update_account(authed(
            &alice.key,
            pb::UpdateAccountRequest {
                tenant_id: alice.id.clone(),
                account_id: id.clone(),
                server: Some(moved.clone()),
                credentials: Some(pb::Credentials {
                    password: "n3w-pass".to_owned(),
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (updated.server.as_ref(), updated.submission.as_ref()),
        (Some(&moved), Some(&second))
    );

    // Refused whole, nothing changed: both set and clear, a bad port, no
    // TLS mode, an empty host, an over-long username, another tenant.
    for (request, code, needle) in [
        (
            change(&alice, &id, Some(first.clone()), true),
            Code::InvalidArgument,
            "clear_submission",
        ),
        (
            change(
                &alice,
                &id,
                Some(pb::ServerSettings {
                    port: 0,
                    ..first.clone()
                }),
                false,
            ),
            Code::InvalidArgument,
            "submission.port",
        ),
        (
            change(
                &alice,
                &id,
                Some(pb::ServerSettings {
                    port: 65_536,
                    ..first.clone()
                }),
                false,
            ),
            Code::InvalidArgument,
            "submission.port",
        ),
        (
            change(
                &alice,
                &id,
                Some(pb::ServerSettings {
                    tls: pb::TlsMode::Unspecified.into(),
                    ..first.clone()
                }),
                false,
            ),
            Code::InvalidArgument,
            "submission.tls",
        ),
        (
            change(
                &alice,
                &id,
                Some(pb::ServerSettings {
                    host: " ".to_owned(),
                    ..first.clone()
                }),
                false,
            ),
            Code::InvalidArgument,
            "submission.host",
        ),
        (
            change(
                &alice,
                &id,
                Some(pb::ServerSettings {
                    username: "u".repeat(255),
                    ..first.clone()
                }),
                false,
            ),
            Code::InvalidArgument,
            "submission.username",
        ),
        (change(&bob, &id, None, true), Code::NotFound, "account"),
    ] {
        refused(admin.update_account(request).await, code, needle);
    }
    refused(
        admin
            .create_account(create(
                &alice,
                &format!("{}@example.net", unique("badport")),
                pb::AccountKind::ExternalImap,
                Some(pb::ServerSettings {
                    port: 0,
                    ..first.clone()
                }),
            ))
            .await,
        Code::InvalidArgument,
        "submission.port",
    );
    assert_eq!(
        access(&replica, &alice, &id).await.submission.as_ref(),
        Some(&second)
    );

    // Cleared (nothing else asked): none left, for the mailbox service too.
    let cleared = admin
        .update_account(change(&alice, &id, None, true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cleared.submission, None);
    assert_eq!(cleared.server.as_ref(), Some(&moved));
    let seen = access(&replica, &alice, &id).await;
    assert_eq!(
        (
            seen.address.as_str(),
            seen.submission,
            seen.credentials.unwrap().password.as_str()
        ),
        (address.as_str(), None, "n3w-pass")
    );
    // Clearing what is not set is no error.
    admin
        .update_account(change(&alice, &id, None, true))
        .await
        .unwrap();

    // A POP3 account has a login too, so a submission server; one made
    // without any gets one later.
    let pop3 = admin
        .create_account(create(
            &alice,
            &format!("{}@example.net", unique("pop")),
            pb::AccountKind::ExternalPop3,
            Some(first.clone()),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pop3.submission.as_ref(), Some(&first));
    let plain = account(
        &mut admin,
        &alice,
        &format!("{}@example.net", unique("plain")),
    )
    .await;
    assert_eq!(plain.submission, None);
    assert_eq!(
        access(&replica, &alice, &plain.account_id).await.submission,
        None
    );
    let later = admin
        .update_account(change(
            &alice,
            &plain.account_id,
            Some(second.clone()),
            false,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(later.submission.as_ref(), Some(&second));
    platform.finish(vec![replica]).await;
}

#[tokio::test]
async fn submission_settings_are_refused_for_forwarded_and_webhook_accounts() {
    let platform = Platform::new().await;
    let replica = platform.replica().await;
    let mut admin = replica.admin().await;
    let alice = tenant(&mut admin, 10).await;
    let settings = smtp("smtp.example.net", 587, pb::TlsMode::Starttls, "");
    for kind in [
        pb::AccountKind::EnterpriseForwarded,
        pb::AccountKind::Webhook,
    ] {
        let address = format!("{}@corp.example", unique("relayed"));
        refused(
            admin
                .create_account(create(&alice, &address, kind, Some(settings.clone())))
                .await,
            Code::InvalidArgument,
            "submission: is only for IMAP and POP3 accounts",
        );
        // Nothing was created: the same address is free.
        let created = admin
            .create_account(create(&alice, &address, kind, None))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(created.submission, None);
        // Setting or clearing them later is refused alike, naming
        // `submission` (not the kind's missing mailbox server).
        for (submission, clear) in [(Some(settings.clone()), false), (None, true)] {
            refused(
                admin
                    .update_account(change(&alice, &created.account_id, submission, clear))
                    .await,
                Code::InvalidArgument,
                "submission: is only for IMAP and POP3 accounts",
            );
        }
    }
    platform.finish(vec![replica]).await;
}

#[tokio::test]
async fn submission_hosts_on_internal_networks_are_refused_unless_allowed() {
    let platform = Platform::new().await;
    let replica = platform.replica().await;
    let mut admin = replica.admin().await;
    let alice = tenant(&mut admin, 10).await;
    let mailbox = account(
        &mut admin,
        &alice,
        &format!("{}@example.net", unique("ssrf")),
    )
    .await;
    for host in [
        "127.0.0.1",
        "localhost",
        "169.254.169.254",
        "2852039166",
        "10.0.0.1",
        "::1",
        "::ffff:127.0.0.1",
    ] {
        let internal = smtp(host, 587, pb::TlsMode::Starttls, "");
        refused(
            admin
                .create_account(create(
                    &alice,
                    &format!("{}@example.net", unique("ssrf")),
                    pb::AccountKind::ExternalImap,
                    Some(internal.clone()),
                ))
                .await,
            Code::InvalidArgument,
            "submission.host: ",
        );
        refused(
            admin
                .update_account(change(&alice, &mailbox.account_id, Some(internal), false))
                .await,
            Code::InvalidArgument,
            "submission.host: ",
        );
    }
    let listed = admin
        .list_accounts(authed(&alice.key, pb::ListAccountsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed
            .accounts
            .iter()
            .map(|a| (a.account_id.as_str(), a.submission.as_ref()))
            .collect::<Vec<_>>(),
        [(mailbox.account_id.as_str(), None)],
        "nothing created or changed"
    );
    platform.finish(vec![replica]).await;

    // The operator's allowed networks (tests and standalone: loopback)
    // hold for submission hosts as for mailbox hosts; nothing more.
    let platform = Platform::new().await;
    let mut config = platform.config();
    config.accounts = pushmail_common::egress::EgressConfig::loopback();
    let replica = platform.replica_with(config).await;
    let mut admin = replica.admin().await;
    let alice = tenant(&mut admin, 10).await;
    let local = smtp("127.0.0.1", 587, pb::TlsMode::None, "");
    let created = admin
        .create_account(create(
            &alice,
            "local@example.net",
            pb::AccountKind::ExternalImap,
            Some(local.clone()),
        ))
        .await
        .expect("allowed by the operator")
        .into_inner();
    assert_eq!(created.submission.as_ref(), Some(&local));
    refused(
        admin
            .update_account(change(
                &alice,
                &created.account_id,
                Some(smtp("169.254.169.254", 587, pb::TlsMode::None, "")),
                false,
            ))
            .await,
        Code::InvalidArgument,
        "link-local",
    );
    admin
        .update_account(change(
            &alice,
            &created.account_id,
            Some(smtp("::1", 465, pb::TlsMode::Implicit, "")),
            false,
        ))
        .await
        .expect("loopback is allowed");
    platform.finish(vec![replica]).await;
}
