//! MSISDN bindings and their one-time codes.

use super::*;

pub(crate) async fn behave(store: Arc<dyn BindingStore>) {
    let issuer = OtpIssuer::new(
        b"otp key",
        OtpPolicy {
            ttl_ms: 300_000,
            max_attempts: 3,
        },
    );
    let tenant = new_tenant(&store, &acme()).await;
    let other = new_tenant(&store, &acme()).await;
    let account = new_account(&store, tenant, "bind@example.net").await;
    let second = new_account(&store, tenant, "bind2@example.net").await;
    let number = Msisdn::parse("+8613800138000").unwrap();
    let now = 1_000;

    let (code, pending) = issuer.issue(now).unwrap();
    let binding = store
        .start_binding(tenant, account, &number, &pending, &limits())
        .await
        .unwrap();
    assert_eq!(binding.state, BindingState::Pending);
    // Starting a pending pair again is a resend: same binding, new code,
    // the first code void.
    let (first_code, _) = (code, ());
    let (code, again) = issuer.issue(now).unwrap();
    let resent = store
        .start_binding(tenant, account, &number, &again, &limits())
        .await
        .unwrap();
    assert_eq!(resent.id, binding.id, "a resend keeps the binding");
    // One number, several accounts; one account, several numbers.
    store
        .start_binding(tenant, second, &number, &again, &limits())
        .await
        .unwrap();
    let intl = Msisdn::parse("+442079460958").unwrap();
    store
        .start_binding(tenant, account, &intl, &again, &limits())
        .await
        .unwrap();
    // Another tenant can neither bind this account nor answer this binding.
    let foreign = store
        .start_binding(other, account, &number, &again, &limits())
        .await;
    assert_eq!(foreign.unwrap_err(), StoreError::NotFound("account"));
    let issuer = &issuer;
    let check = |answer: &str| {
        let answer = answer.to_owned();
        move |c: &mut PendingCode| issuer.check(c, &answer, now + 1)
    };
    let foreign = store
        .answer_binding(other, binding.id, DAY, &check("000000"))
        .await;
    assert_eq!(foreign.unwrap_err(), StoreError::NotFound("binding"));

    let wrong = if code.expose() == "999999" {
        "000000"
    } else {
        "999999"
    };
    // The first code no longer works (one attempt spent proving it).
    let mut remaining = 3;
    if first_code != code {
        let (outcome, _) = store
            .answer_binding(tenant, binding.id, DAY, &check(first_code.expose()))
            .await
            .unwrap();
        remaining -= 1;
        assert_eq!(
            outcome,
            OtpCheck::Wrong { remaining },
            "the resend replaced it"
        );
    }
    let (outcome, still) = store
        .answer_binding(tenant, binding.id, DAY, &check(wrong))
        .await
        .unwrap();
    remaining -= 1;
    assert_eq!(
        (outcome, still.state),
        (OtpCheck::Wrong { remaining }, BindingState::Pending)
    );
    let right = code.expose();
    let (outcome, done) = store
        .answer_binding(tenant, binding.id, DAY, &check(right))
        .await
        .unwrap();
    assert_eq!(
        (outcome, done.state),
        (OtpCheck::Accepted, BindingState::Verified)
    );
    let (outcome, _) = store
        .answer_binding(tenant, binding.id, DAY, &check(right))
        .await
        .unwrap();
    assert_eq!(outcome, OtpCheck::AlreadyUsed, "single use");

    let twice = store
        .start_binding(tenant, account, &number, &again, &limits())
        .await;
    assert!(
        matches!(twice, Err(StoreError::Conflict(_))),
        "a verified pair cannot be started again: {twice:?}"
    );
    let targets = store.delivery_targets(tenant, account).await.unwrap();
    assert_eq!(targets.len(), 1, "{targets:?}");
    assert_eq!(targets[0].binding_id, binding.id);
    assert_eq!(targets[0].device, None, "no device registered yet");
    assert!(
        store
            .delivery_targets(other, account)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.accounts_bound_to(tenant, &number).await.unwrap(),
        vec![account]
    );
    assert!(
        store
            .accounts_bound_to(other, &number)
            .await
            .unwrap()
            .is_empty()
    );

    let revoked = store.revoke_binding(tenant, binding.id).await.unwrap();
    assert_eq!(revoked.state, BindingState::Revoked);
    let late = store
        .answer_binding(tenant, binding.id, DAY, &check(right))
        .await;
    assert_eq!(late.unwrap_err(), StoreError::NotFound("pending binding"));
    assert_eq!(
        store.revoke_binding(other, binding.id).await.unwrap_err(),
        StoreError::NotFound("binding")
    );
    // After a revoke the pair may bind again.
    let (code2, pending2) = issuer.issue(now).unwrap();
    let rebind = store
        .start_binding(tenant, account, &number, &pending2, &limits())
        .await
        .unwrap();

    // Three wrong answers spend the code, even against the right one after.
    let wrong2 = if code2.expose() == "999999" {
        "000000"
    } else {
        "999999"
    };
    for _ in 0..3 {
        store
            .answer_binding(tenant, rebind.id, DAY, &check(wrong2))
            .await
            .unwrap();
    }
    let right2 = code2.expose();
    let (outcome, state) = store
        .answer_binding(tenant, rebind.id, DAY, &check(right2))
        .await
        .unwrap();
    assert_eq!(
        (outcome, state.state),
        (OtpCheck::Exhausted, BindingState::Pending)
    );

    let listed = store.list_bindings(tenant, account).await.unwrap();
    let states: Vec<_> = listed
        .iter()
        .map(|b| (b.msisdn.as_str().to_owned(), b.state))
        .collect();
    assert_eq!(states.len(), 3, "{states:?}");
    assert!(
        store
            .list_bindings(other, account)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.binding(other, rebind.id).await.unwrap(), None);
    assert!(
        store
            .delivery_targets(tenant, account)
            .await
            .unwrap()
            .is_empty(),
        "a revoked binding is no target"
    );
    sms_quota(&store).await;
}

/// Dispatch's SMS draw on the tenant's `sms_per_day`; verification codes
/// do not (they have their own budget: see `verification`).
async fn sms_quota(store: &Arc<dyn BindingStore>) {
    let tenant = new_tenant(
        store,
        &NewTenant {
            sms_per_day: 1,
            push_per_minute: 0,
            ..acme()
        },
    )
    .await;
    let account = new_account(store, tenant, "quota@example.net").await;
    verified(
        store,
        tenant,
        account,
        &Msisdn::parse("+8613900139000").unwrap(),
    )
    .await;
    verified(
        store,
        tenant,
        account,
        &Msisdn::parse("+8613900139001").unwrap(),
    )
    .await;
    store.charge_sms(tenant, account, DAY).await.unwrap();
    assert_eq!(
        store.charge_sms(tenant, account, DAY).await.unwrap_err(),
        StoreError::QuotaExceeded("sms_per_day")
    );
    let day = store.traffic(tenant, account, DAY, DAY).await.unwrap();
    assert_eq!(day[0].traffic.sms_count, 1, "the charged SMS only");
    store
        .charge_sms(tenant, account, DAY.tomorrow().unwrap())
        .await
        .expect("a new day");
    // Only the tenant's own accounts can be charged.
    let other = new_tenant(store, &acme()).await;
    assert_eq!(
        store.charge_sms(other, account, DAY).await.unwrap_err(),
        StoreError::NotFound("account")
    );
}
