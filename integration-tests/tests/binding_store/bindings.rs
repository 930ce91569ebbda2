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
        .start_binding(tenant, account, &number, &pending)
        .await
        .unwrap();
    assert_eq!(binding.state, BindingState::Pending);
    let (_, again) = issuer.issue(now).unwrap();
    let dup = store.start_binding(tenant, account, &number, &again).await;
    assert!(
        matches!(dup, Err(StoreError::Conflict(_))),
        "live pair twice: {dup:?}"
    );
    // One number, several accounts; one account, several numbers.
    store
        .start_binding(tenant, second, &number, &again)
        .await
        .unwrap();
    let intl = Msisdn::parse("+442079460958").unwrap();
    store
        .start_binding(tenant, account, &intl, &again)
        .await
        .unwrap();
    // Another tenant can neither bind this account nor answer this binding.
    let foreign = store.start_binding(other, account, &number, &again).await;
    assert_eq!(foreign.unwrap_err(), StoreError::NotFound("account"));
    let issuer = &issuer;
    let check = |answer: &str| {
        let answer = answer.to_owned();
        move |c: &mut PendingCode| issuer.check(c, &answer, now + 1)
    };
    let foreign = store
        .answer_binding(other, binding.id, &check("000000"))
        .await;
    assert_eq!(foreign.unwrap_err(), StoreError::NotFound("binding"));

    let wrong = if code.expose() == "999999" {
        "000000"
    } else {
        "999999"
    };
    let (outcome, still) = store
        .answer_binding(tenant, binding.id, &check(wrong))
        .await
        .unwrap();
    assert_eq!(
        (outcome, still.state),
        (OtpCheck::Wrong { remaining: 2 }, BindingState::Pending)
    );
    let right = code.expose();
    let (outcome, done) = store
        .answer_binding(tenant, binding.id, &check(right))
        .await
        .unwrap();
    assert_eq!(
        (outcome, done.state),
        (OtpCheck::Accepted, BindingState::Verified)
    );
    let (outcome, _) = store
        .answer_binding(tenant, binding.id, &check(right))
        .await
        .unwrap();
    assert_eq!(outcome, OtpCheck::AlreadyUsed, "single use");

    let revoked = store.revoke_binding(tenant, binding.id).await.unwrap();
    assert_eq!(revoked.state, BindingState::Revoked);
    let late = store
        .answer_binding(tenant, binding.id, &check(right))
        .await;
    assert_eq!(late.unwrap_err(), StoreError::NotFound("pending binding"));
    assert_eq!(
        store.revoke_binding(other, binding.id).await.unwrap_err(),
        StoreError::NotFound("binding")
    );
    // After a revoke the pair may bind again.
    let (code2, pending2) = issuer.issue(now).unwrap();
    let rebind = store
        .start_binding(tenant, account, &number, &pending2)
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
            .answer_binding(tenant, rebind.id, &check(wrong2))
            .await
            .unwrap();
    }
    let right2 = code2.expose();
    let (outcome, state) = store
        .answer_binding(tenant, rebind.id, &check(right2))
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
    assert_eq!(
        store.binding(tenant, BindingId::generate()).await.unwrap(),
        None
    );
}
