//! Device tokens: issued by binding, verified with the public key alone,
//! voided by revocation through the `BindingChanged` feed.

use pushmail_device_token::{Revocations, TokenError, TokenSigner, TokenVerifier};
use pushmail_proto::events::v1::BindingChangeKind;

use super::*;

fn verifier() -> TokenVerifier {
    let seed = pushmail_integration_tests::test_security().device_token_seed;
    let public = TokenSigner::from_seed_hex(seed.expose())
        .unwrap()
        .public_key_hex();
    TokenVerifier::from_public_key_hex(&public).unwrap()
}

fn now_ms() -> i64 {
    pushmail_binding::clock::now_ms()
}

#[tokio::test]
async fn device_tokens_are_issued_verified_and_revoked() {
    let platform = Platform::new().await;
    let replica = platform.replica().await;
    let mut admin = replica.admin().await;
    let tenant = tenant(&mut admin, 100).await;
    let mut events = platform.events(&tenant.id).await;
    let account = account(&mut admin, &tenant, "dev@example.net").await;
    let msisdn = number();
    bind(&mut admin, &mut events, &tenant, &account, &msisdn).await;

    let registered = admin
        .register_device(authed(
            &tenant.key,
            pb::RegisterDeviceRequest {
                tenant_id: tenant.id.clone(),
                msisdn: msisdn.clone(),
                label: "work phone".to_owned(),
                has_push_client: true,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let device = registered.device.unwrap();
    let revocations = Revocations::default();
    let claims = verifier()
        .verify(&registered.device_token, now_ms(), &revocations)
        .unwrap();
    assert_eq!(
        (
            claims.device_id.as_str(),
            claims.tenant_id.as_str(),
            claims.msisdn.as_str()
        ),
        (
            device.device_id.as_str(),
            tenant.id.as_str(),
            msisdn.as_str()
        )
    );
    let expires = registered.token_expires_at.unwrap();
    assert_eq!(claims.expires_at_ms / 1_000, expires.seconds);
    assert!(
        claims.expires_at_ms > now_ms() + 29 * 24 * 3_600 * 1_000,
        "30 days by default"
    );
    // The device is a target of the bound account, with its push client.
    let found = targets(&replica, &tenant, &account).await;
    assert_eq!(
        (found[0].device_id.as_str(), found[0].has_push_client),
        (device.device_id.as_str(), true)
    );

    // A renewed token, also valid.
    let renewed = admin
        .issue_device_token(authed(
            &tenant.key,
            pb::IssueDeviceTokenRequest {
                tenant_id: tenant.id.clone(),
                device_id: device.device_id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    verifier()
        .verify(&renewed.device_token, now_ms(), &revocations)
        .unwrap();
    // Forged or altered tokens are refused.
    let mut forged = renewed.device_token.clone();
    // A different tail whatever the token ends with (one in ~16,000 ends
    // with "AAA", which made this "forgery" the token itself).
    let tail = if forged.ends_with("AAA") {
        "BBB"
    } else {
        "AAA"
    };
    forged.replace_range(forged.len() - 3.., tail);
    assert!(matches!(
        verifier().verify(&forged, now_ms(), &revocations),
        Err(TokenError::Signature | TokenError::Malformed)
    ));
    assert_eq!(
        verifier().verify(
            &registered.device_token,
            claims.expires_at_ms + 1,
            &revocations
        ),
        Err(TokenError::Expired)
    );

    // Revocation: announced with its cut-off; a session node applying the
    // feed refuses every token issued before it.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let revoked = admin
        .revoke_device(authed(
            &tenant.key,
            pb::RevokeDeviceRequest {
                tenant_id: tenant.id.clone(),
                device_id: device.device_id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(revoked.revoked);
    let change = loop {
        let change = events.change().await;
        if change.kind() == BindingChangeKind::DeviceRevoked {
            break change;
        }
    };
    assert_eq!(
        (change.device_id.as_str(), change.account_id.as_str()),
        (device.device_id.as_str(), account.account_id.as_str())
    );
    let at = change.meta.unwrap().occurred_at.unwrap();
    revocations.revoke(
        &change.device_id,
        at.seconds * 1_000 + i64::from(at.nanos) / 1_000_000,
    );
    for token in [&registered.device_token, &renewed.device_token] {
        assert_eq!(
            verifier().verify(token, now_ms(), &revocations),
            Err(TokenError::Revoked)
        );
    }
    refused(
        admin
            .issue_device_token(authed(
                &tenant.key,
                pb::IssueDeviceTokenRequest {
                    tenant_id: tenant.id.clone(),
                    device_id: device.device_id.clone(),
                },
            ))
            .await,
        Code::FailedPrecondition,
        "revoked",
    );
    // Revoking again is harmless (and re-announces, for a retry after a bus failure).
    admin
        .revoke_device(authed(
            &tenant.key,
            pb::RevokeDeviceRequest {
                tenant_id: tenant.id.clone(),
                device_id: device.device_id.clone(),
            },
        ))
        .await
        .unwrap();
    let left = targets(&replica, &tenant, &account).await;
    assert_eq!(
        (left.len(), left[0].device_id.as_str()),
        (1, ""),
        "the number stays, SMS only"
    );
    refused(
        admin
            .register_device(authed(
                &tenant.key,
                pb::RegisterDeviceRequest {
                    tenant_id: tenant.id.clone(),
                    msisdn: msisdn.clone(),
                    label: "x".repeat(101),
                    has_push_client: true,
                },
            ))
            .await,
        Code::InvalidArgument,
        "label",
    );
    platform.finish(vec![replica]).await;
}
