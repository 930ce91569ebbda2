//! Verification-code limits: the per-number cooldown and daily cap, the
//! tenant's own code budget, and the number's guess budget across resends.

use super::*;

fn issuer() -> OtpIssuer {
    OtpIssuer::new(
        b"otp key",
        OtpPolicy {
            ttl_ms: 300_000,
            max_attempts: 3,
        },
    )
}

fn throttled(result: Result<pushmail_binding::domain::Binding, StoreError>) -> (String, i64) {
    match result {
        Err(StoreError::Throttled {
            reason,
            retry_after_ms,
        }) => (reason, retry_after_ms),
        other => panic!("expected a throttle, got {other:?}"),
    }
}

pub(crate) async fn behave(store: Arc<dyn BindingStore>) {
    let issuer = issuer();
    let tenant = new_tenant(
        &store,
        &NewTenant {
            codes_per_day: Some(4),
            sms_per_day: 0,
            ..acme()
        },
    )
    .await;
    let account = new_account(&store, tenant, "codes@example.net").await;
    let number = Msisdn::parse("+8613500135000").unwrap();
    let code = || issuer.issue(0).unwrap().1;
    let at = |now_ms: i64| SendLimits {
        now_ms,
        cooldown_ms: 60_000,
        per_number: 2,
        ..limits()
    };
    // sms_per_day is 0: codes have a budget of their own.
    let first = store
        .start_binding(tenant, account, &number, &code(), &at(100_000))
        .await
        .unwrap();

    // A resend within the cooldown is refused with the wait, and nothing
    // is counted.
    let (reason, wait) = throttled(
        store
            .start_binding(tenant, account, &number, &code(), &at(130_000))
            .await,
    );
    assert!(reason.starts_with("msisdn:"), "{reason}");
    assert_eq!(wait, 30_000);
    // The cooldown is the number's: another account's binding waits too.
    let second = new_account(&store, tenant, "codes2@example.net").await;
    throttled(
        store
            .start_binding(tenant, second, &number, &code(), &at(130_000))
            .await,
    );
    let resent = store
        .start_binding(tenant, account, &number, &code(), &at(160_000))
        .await
        .unwrap();
    assert_eq!(resent.id, first.id);

    // Two codes a day to this number: the third waits for tomorrow.
    let (reason, wait) = throttled(
        store
            .start_binding(tenant, second, &number, &code(), &at(400_000))
            .await,
    );
    assert!(reason.contains("2 codes today"), "{reason}");
    assert_eq!(wait, 86_400_000 - 400_000, "until UTC midnight");

    // The tenant's budget (4 a day) holds across numbers.
    let others =
        ["+8613500135001", "+8613500135002", "+8613500135003"].map(|n| Msisdn::parse(n).unwrap());
    store
        .start_binding(tenant, account, &others[0], &code(), &at(500_000))
        .await
        .unwrap();
    store
        .start_binding(tenant, account, &others[1], &code(), &at(500_000))
        .await
        .unwrap();
    let (reason, _) = throttled(
        store
            .start_binding(tenant, account, &others[2], &code(), &at(500_000))
            .await,
    );
    assert!(reason.starts_with("codes_per_day:"), "{reason}");
    assert_eq!(
        store.list_bindings(tenant, account).await.unwrap().len(),
        3,
        "nothing written for a refused code"
    );
    // The next UTC day starts afresh (for the number and the tenant).
    let tomorrow = SendLimits {
        day: DAY.tomorrow().unwrap(),
        ..at(86_400_000 + 400_000)
    };
    store
        .start_binding(tenant, second, &number, &code(), &tomorrow)
        .await
        .expect("a new day");
    // Codes never touch the notification quota.
    assert_eq!(
        store.charge_sms(tenant, account, DAY).await.unwrap_err(),
        StoreError::QuotaExceeded("sms_per_day")
    );
    guesses(&store).await;

    // Past days' counts are pruned; today's stay.
    let later = DAY.tomorrow().unwrap();
    assert!(store.prune_code_counts(later).await.unwrap() > 0);
    assert_eq!(store.prune_code_counts(later).await.unwrap(), 0);
    let soon = SendLimits {
        day: later,
        ..at(86_400_000 + 410_000)
    };
    let (reason, _) = throttled(
        store
            .start_binding(tenant, account, &number, &code(), &soon)
            .await,
    );
    assert!(
        reason.contains("less than 60 s ago"),
        "the later day was kept: {reason}"
    );
}

/// Wrong answers are the number's for the day: a resend brings no fresh
/// guesses, and once they are spent no code is sent.
async fn guesses(store: &Arc<dyn BindingStore>) {
    let issuer = issuer();
    let tenant = new_tenant(store, &acme()).await;
    let account = new_account(store, tenant, "guess@example.net").await;
    let number = Msisdn::parse("+8613500135009").unwrap();
    let (first, pending) = issuer.issue(0).unwrap();
    let binding = store
        .start_binding(tenant, account, &number, &pending, &limits())
        .await
        .unwrap();
    let issuer = &issuer;
    let answer = |text: String| move |c: &mut PendingCode| issuer.check(c, &text, 1);
    let not = |code: &str| if code == "000000" { "111111" } else { "000000" }.to_owned();
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        let (outcome, _) = store
            .answer_binding(tenant, binding.id, DAY, &answer(not(first.expose())))
            .await
            .unwrap();
        outcomes.push(outcome);
    }
    // The resend: a fresh code, the same budget.
    let (code, again) = issuer.issue(0).unwrap();
    store
        .start_binding(tenant, account, &number, &again, &limits())
        .await
        .unwrap();
    let (outcome, _) = store
        .answer_binding(tenant, binding.id, DAY, &answer(not(code.expose())))
        .await
        .unwrap();
    outcomes.push(outcome);
    assert_eq!(
        outcomes,
        [
            OtpCheck::Wrong { remaining: 2 },
            OtpCheck::Wrong { remaining: 1 },
            OtpCheck::Exhausted
        ]
    );
    let (outcome, state) = store
        .answer_binding(tenant, binding.id, DAY, &answer(code.expose().to_owned()))
        .await
        .unwrap();
    assert_eq!(
        (outcome, state.state),
        (OtpCheck::Exhausted, BindingState::Pending),
        "even the right code, after a resend"
    );
    let refused = store
        .start_binding(tenant, account, &number, &again, &limits())
        .await;
    assert!(
        matches!(refused, Err(StoreError::Throttled { ref reason, .. }) if reason.contains("wrong codes")),
        "{refused:?}"
    );
}
