//! Verification codes cannot be abused: a per-number cooldown and daily
//! cap answered RESOURCE_EXHAUSTED with `retry-after`, the guess budget
//! kept across resends, and a code budget apart from notification SMS.

use super::*;

fn retry_after(status: &Status) -> u64 {
    status
        .metadata()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or_else(|| panic!("no retry-after on {status:?}"))
}

fn start(
    tenant: &TestTenant,
    account: &pb::Account,
    msisdn: &str,
) -> Request<pb::StartBindingRequest> {
    authed(
        &tenant.key,
        pb::StartBindingRequest {
            tenant_id: tenant.id.clone(),
            account_id: account.account_id.clone(),
            msisdn: msisdn.to_owned(),
        },
    )
}

#[tokio::test]
async fn resends_wait_for_the_cooldown_and_codes_do_not_share_the_sms_quota() {
    let platform = Platform::new().await;
    let replica = platform.replica().await;
    let mut admin = replica.admin().await;
    let mut internal_client = replica.internal().await;
    let alice = tenant(&mut admin, 1).await;
    let mut events = platform.events(&alice.id).await;
    let account = account(
        &mut admin,
        &alice,
        &format!("{}@example.net", unique("otp")),
    )
    .await;
    let msisdn = number();
    admin
        .start_binding(start(&alice, &account, &msisdn))
        .await
        .unwrap();
    let again = admin
        .start_binding(start(&alice, &account, &msisdn))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::ResourceExhausted, "{again:?}");
    assert!((1..=60).contains(&retry_after(&again)), "{again:?}");
    assert!(again.message().contains("msisdn"), "{again:?}");

    // The tenant's one notification SMS today is spent…
    let charge = || {
        as_service(
            Service::Dispatch,
            pb::ChargeSmsRequest {
                tenant_id: alice.id.clone(),
                account_id: account.account_id.clone(),
            },
        )
    };
    internal_client.charge_sms(charge()).await.unwrap();
    refused(
        internal_client.charge_sms(charge()).await,
        Code::ResourceExhausted,
        "sms_per_day",
    );
    // …and a number is still verified: codes have their own budget.
    let other = number();
    bind(&mut admin, &mut events, &alice, &account, &other).await;
    platform.finish(vec![replica]).await;
}

#[tokio::test]
async fn a_number_gets_a_few_codes_a_day_and_a_few_guesses_whatever_is_resent() {
    let platform = Platform::new().await;
    let mut config = platform.config();
    config.verification.resend_cooldown_seconds = 0;
    config.verification.codes_per_number_per_day = 3;
    config.security.otp_max_attempts = 3;
    let replica = platform.replica_with(config).await;
    let mut admin = replica.admin().await;
    let alice = tenant(&mut admin, 10).await;
    let mut events = platform.events(&alice.id).await;
    let account = account(
        &mut admin,
        &alice,
        &format!("{}@example.net", unique("guess")),
    )
    .await;
    let msisdn = number();
    let pending = admin
        .start_binding(start(&alice, &account, &msisdn))
        .await
        .unwrap()
        .into_inner();
    let first = events.code_for(&msisdn).await;
    let verify = |code: &str| {
        authed(
            &alice.key,
            pb::VerifyBindingRequest {
                tenant_id: alice.id.clone(),
                binding_id: pending.binding_id.clone(),
                code: code.to_owned(),
            },
        )
    };
    let not = |code: &str| if code == "000000" { "111111" } else { "000000" }.to_owned();
    refused(
        admin.verify_binding(verify(&not(&first))).await,
        Code::InvalidArgument,
        "2 attempts left",
    );
    refused(
        admin.verify_binding(verify(&not(&first))).await,
        Code::InvalidArgument,
        "1 attempts left",
    );
    // A resend brings a fresh code but no fresh guesses.
    admin
        .start_binding(start(&alice, &account, &msisdn))
        .await
        .unwrap();
    let second = events.code_for(&msisdn).await;
    let spent = admin
        .verify_binding(verify(&not(&second)))
        .await
        .unwrap_err();
    assert_eq!(spent.code(), Code::ResourceExhausted, "{spent:?}");
    assert!(retry_after(&spent) <= 86_400);
    refused(
        admin.verify_binding(verify(&second)).await,
        Code::ResourceExhausted,
        "too many wrong codes",
    );
    let no_more = admin
        .start_binding(start(&alice, &account, &msisdn))
        .await
        .unwrap_err();
    assert!(
        no_more.message().contains("too many wrong codes"),
        "{no_more:?}"
    );

    // Another number: three codes today, the fourth waits for midnight.
    let other = number();
    for _ in 0..3 {
        admin
            .start_binding(start(&alice, &account, &other))
            .await
            .unwrap();
    }
    let capped = admin
        .start_binding(start(&alice, &account, &other))
        .await
        .unwrap_err();
    assert_eq!(capped.code(), Code::ResourceExhausted);
    assert!(capped.message().contains("3 codes today"), "{capped:?}");
    assert!((1..=86_400).contains(&retry_after(&capped)));
    platform.finish(vec![replica]).await;
}
