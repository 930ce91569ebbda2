//! SMTP relay credentials: made once, checked for ingest with a lockout
//! against guessing, revoked at once; the relay policy travels with the
//! recipient.

use super::*;

fn login(username: &str, password: &str, peer: &str) -> Request<pb::AuthenticateRelayRequest> {
    as_service(
        Service::Ingest,
        pb::AuthenticateRelayRequest {
            username: username.to_owned(),
            password: password.to_owned(),
            peer_ip: peer.to_owned(),
        },
    )
}

fn retry_after(status: &Status) -> Option<u64> {
    status
        .metadata()
        .get("retry-after")?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

#[tokio::test]
async fn relay_credentials_log_in_lock_out_guessers_and_revoke_at_once() {
    let platform = Platform::new().await;
    let mut config = platform.config();
    config.relay.max_failures = 3;
    let replica = platform.replica_with(config).await;
    let mut admin = replica.admin().await;
    let mut ingest = replica.internal().await;
    let alice = tenant(&mut admin, 10).await;
    let mallory = tenant(&mut admin, 10).await;

    let made = admin
        .create_relay_credential(authed(
            &alice.key,
            pb::CreateRelayCredentialRequest {
                description: "mx1".to_owned(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(made.password.len() >= 64, "long and random");
    let listed = admin
        .list_relay_credentials(authed(
            &alice.key,
            pb::ListRelayCredentialsRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.credentials.len(), 1);
    assert_eq!(listed.credentials[0].username, made.username);
    assert!(
        !format!("{listed:?}").contains(&made.password),
        "never listed"
    );
    refused(
        admin
            .list_relay_credentials(authed(
                &mallory.key,
                pb::ListRelayCredentialsRequest {
                    tenant_id: alice.id.clone(),
                },
            ))
            .await,
        Code::PermissionDenied,
        "does not belong",
    );

    // The right pair names the tenant, from any peer, again and again.
    for peer in ["198.51.100.1", "2001:db8::7", "198.51.100.1"] {
        let ok = ingest
            .authenticate_relay(login(&made.username, &made.password, peer))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (ok.tenant_id.as_str(), ok.credential_id.as_str()),
            (alice.id.as_str(), made.credential_id.as_str())
        );
    }
    // One answer whatever was wrong.
    let wrong_password = ingest
        .authenticate_relay(login(&made.username, "pmr_guess", "203.0.113.9"))
        .await
        .unwrap_err();
    let wrong_user = ingest
        .authenticate_relay(login("relay-nobody", &made.password, "203.0.113.10"))
        .await
        .unwrap_err();
    assert_eq!(
        (wrong_password.code(), wrong_password.message()),
        (wrong_user.code(), wrong_user.message())
    );
    assert_eq!(wrong_password.code(), Code::Unauthenticated);
    // Only pushmail services may ask.
    refused(
        ingest
            .authenticate_relay(authed(
                &alice.key,
                pb::AuthenticateRelayRequest {
                    username: made.username.clone(),
                    password: made.password.clone(),
                    peer_ip: "198.51.100.1".to_owned(),
                },
            ))
            .await,
        Code::PermissionDenied,
        "pushmail services only",
    );

    // A guessing peer is locked out after its budget, even with a right pair.
    let make = || authed(&alice.key, pb::CreateRelayCredentialRequest::default());
    let second = admin
        .create_relay_credential(make())
        .await
        .unwrap()
        .into_inner();
    for n in 0..3 {
        let guess = ingest
            .authenticate_relay(login(&format!("relay-guess{n}"), "x", "203.0.113.66"))
            .await
            .unwrap_err();
        assert_eq!(guess.code(), Code::Unauthenticated);
    }
    let locked = ingest
        .authenticate_relay(login(&second.username, &second.password, "203.0.113.66"))
        .await
        .unwrap_err();
    assert_eq!(locked.code(), Code::ResourceExhausted, "{locked:?}");
    assert!(
        retry_after(&locked).is_some_and(|s| s > 0 && s <= 900),
        "{locked:?}"
    );
    // A guessed-at username is locked out from any peer…
    let third = admin
        .create_relay_credential(make())
        .await
        .unwrap()
        .into_inner();
    for n in 0..3 {
        ingest
            .authenticate_relay(login(&third.username, "x", &format!("192.0.2.{n}")))
            .await
            .unwrap_err();
    }
    let user_locked = ingest
        .authenticate_relay(login(&third.username, &third.password, "192.0.2.200"))
        .await
        .unwrap_err();
    assert_eq!(user_locked.code(), Code::ResourceExhausted);
    ingest
        .authenticate_relay(login(&second.username, &second.password, "192.0.2.201"))
        .await
        .expect("another username from another peer is not locked");
    // …but a relay whose login was verified lately still gets in: it knows
    // the password, so it is not guessing.
    for n in 0..2 {
        ingest
            .authenticate_relay(login(&made.username, "x", &format!("192.0.2.{}", 10 + n)))
            .await
            .unwrap_err();
    }
    ingest
        .authenticate_relay(login(&made.username, &made.password, "192.0.2.20"))
        .await
        .expect("a remembered login");

    // Revocation holds at once, though the login was remembered.
    admin
        .revoke_relay_credential(authed(
            &alice.key,
            pb::RevokeRelayCredentialRequest {
                credential_id: second.credential_id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    refused(
        ingest
            .authenticate_relay(login(&second.username, &second.password, "198.51.100.1"))
            .await,
        Code::Unauthenticated,
        "relay credentials refused",
    );
    refused(
        admin
            .revoke_relay_credential(authed(
                &mallory.key,
                pb::RevokeRelayCredentialRequest {
                    credential_id: third.credential_id.clone(),
                    ..Default::default()
                },
            ))
            .await,
        Code::NotFound,
        "relay credential",
    );
    platform.finish(vec![replica]).await;
}

#[tokio::test]
async fn the_relay_policy_is_validated_and_travels_with_the_recipient() {
    let platform = Platform::new().await;
    let replica = platform.replica().await;
    let mut admin = replica.admin().await;
    let mut ingest = replica.internal().await;
    let alice = tenant(&mut admin, 10).await;
    let empty = admin
        .get_relay_policy(authed(&alice.key, pb::GetRelayPolicyRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(empty.allowed_sources.is_empty() && empty.client_cert_sha256.is_empty());
    let set = |sources: Vec<&str>, certs: Vec<String>| {
        authed(
            &alice.key,
            pb::SetRelayPolicyRequest {
                allowed_sources: sources.into_iter().map(str::to_owned).collect(),
                client_cert_sha256: certs,
                ..Default::default()
            },
        )
    };
    refused(
        admin
            .set_relay_policy(set(vec!["mx.corp.example"], vec![]))
            .await,
        Code::InvalidArgument,
        "allowed_sources",
    );
    refused(
        admin
            .set_relay_policy(set(vec![], vec!["beef".to_owned()]))
            .await,
        Code::InvalidArgument,
        "client_cert_sha256",
    );
    let fingerprint = "AB".repeat(32);
    let saved = admin
        .set_relay_policy(set(
            vec!["203.0.113.0/24", "2001:db8::1"],
            vec![fingerprint],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(saved.allowed_sources, ["203.0.113.0/24", "2001:db8::1/128"]);
    assert_eq!(saved.client_cert_sha256, ["ab".repeat(32)]);
    let address = format!("{}@relay.example", unique("in"));
    admin
        .create_account(authed(
            &alice.key,
            pb::CreateAccountRequest {
                address: address.clone(),
                kind: pb::AccountKind::EnterpriseForwarded.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let resolved = ingest
        .resolve_recipient(as_service(
            Service::Ingest,
            pb::ResolveRecipientRequest {
                address,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.allowed_sources, saved.allowed_sources);
    assert_eq!(resolved.client_cert_sha256, saved.client_cert_sha256);
    platform.finish(vec![replica]).await;
}
