//! Traffic per account per day.

use super::*;

pub(crate) async fn behave(store: Arc<dyn BindingStore>) {
    let tenant = new_tenant(&store, &acme()).await;
    let other = new_tenant(&store, &acme()).await;
    let account = new_account(&store, tenant, "stats@example.net").await;
    let day = |d: &str| d.parse::<jiff::civil::Date>().unwrap();
    let push = Traffic {
        pushed_count: 1,
        pushed_bytes: 700,
        ..Traffic::default()
    };
    let fetch = Traffic {
        fetched_count: 1,
        fetched_bytes: 50_000,
        sms_count: 1,
        ..Traffic::default()
    };
    store
        .record_traffic(tenant, account, day("2026-11-25"), &push)
        .await
        .unwrap();
    store
        .record_traffic(tenant, account, day("2026-11-26"), &push)
        .await
        .unwrap();
    store
        .record_traffic(tenant, account, day("2026-11-26"), &fetch)
        .await
        .unwrap();
    store
        .record_traffic(tenant, account, day("2026-11-27"), &push)
        .await
        .unwrap();

    let days = store
        .traffic(tenant, account, day("2026-11-25"), day("2026-11-26"))
        .await
        .unwrap();
    assert_eq!(days.len(), 2, "range is inclusive and bounded");
    assert_eq!(days[0].traffic, push);
    let both = Traffic {
        pushed_count: 1,
        pushed_bytes: 700,
        fetched_count: 1,
        fetched_bytes: 50_000,
        sms_count: 1,
    };
    assert_eq!(
        (days[1].day, days[1].traffic),
        (day("2026-11-26"), both),
        "same day adds up"
    );

    let foreign = store
        .record_traffic(other, account, day("2026-11-26"), &push)
        .await;
    assert_eq!(foreign.unwrap_err(), StoreError::NotFound("account"));
    assert!(
        store
            .traffic(other, account, day("2026-01-01"), day("2026-12-31"))
            .await
            .unwrap()
            .is_empty()
    );
}
