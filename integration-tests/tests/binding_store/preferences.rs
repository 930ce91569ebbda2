//! Preferences per binding.

use super::*;

pub(crate) async fn behave(store: Arc<dyn BindingStore>) {
    let tenant = new_tenant(&store, &acme()).await;
    let other = new_tenant(&store, &acme()).await;
    let account = new_account(&store, tenant, "prefs@example.net").await;
    let number = Msisdn::parse("+8613700137000").unwrap();
    let issuer = OtpIssuer::new(
        b"k",
        OtpPolicy {
            ttl_ms: 1_000,
            max_attempts: 3,
        },
    );
    let binding = store
        .start_binding(
            tenant,
            account,
            &number,
            &issuer.issue(0).unwrap().1,
            &limits(),
        )
        .await
        .unwrap()
        .id;

    assert_eq!(
        store.preferences(tenant, binding).await.unwrap(),
        Preferences::default()
    );
    let chosen = Preferences {
        content_level: ContentLevel::SubjectSenderSnippet,
        max_push_bytes: 2_048,
        attachments: false,
        quiet_hours: Some(QuietHours::new(22 * 60, 7 * 60, "Asia/Shanghai").unwrap()),
        black_list: AddressList::parse(&["@spam.example", "noise@example.com"]).unwrap(),
        white_list: AddressList::parse(&["boss@spam.example"]).unwrap(),
        signature: "发自我的手机".to_owned(),
    };
    store
        .set_preferences(tenant, binding, &chosen)
        .await
        .unwrap();
    assert_eq!(store.preferences(tenant, binding).await.unwrap(), chosen);

    let invalid = Preferences {
        max_push_bytes: 10,
        ..Preferences::default()
    };
    let refused = store
        .set_preferences(tenant, binding, &invalid)
        .await
        .unwrap_err();
    assert!(matches!(refused, StoreError::Invalid(_)), "{refused:?}");
    assert_eq!(
        store.preferences(tenant, binding).await.unwrap(),
        chosen,
        "nothing half-written"
    );

    assert_eq!(
        store.preferences(other, binding).await.unwrap_err(),
        StoreError::NotFound("binding")
    );
    let foreign = store
        .set_preferences(other, binding, &Preferences::default())
        .await;
    assert_eq!(foreign.unwrap_err(), StoreError::NotFound("binding"));
    assert_eq!(
        store.preferences(tenant, binding).await.unwrap(),
        chosen,
        "untouched by the other tenant"
    );
}
