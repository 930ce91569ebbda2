//! A tenant's days are its own: traffic and SMS charges fall on the day of
//! the tenant's time zone (a Beijing day no longer splits at 08:00 UTC).

use super::*;

/// Today in `zone`, as the API writes days.
fn today_in(zone: &str) -> String {
    jiff::tz::TimeZone::get(zone)
        .unwrap()
        .to_datetime(jiff::Timestamp::now())
        .date()
        .to_string()
}

#[tokio::test]
async fn traffic_falls_on_the_tenants_day_and_the_zone_is_the_tenants_to_set() {
    let platform = Platform::new().await;
    let replica = platform.replica().await;
    let mut admin = replica.admin().await;
    let mut internal = replica.internal().await;
    let beijing = tenant_with(
        &mut admin,
        pb::CreateTenantRequest {
            time_zone: "Asia/Shanghai".to_owned(),
            ..Default::default()
        },
    )
    .await;
    let other = tenant(&mut admin, 10).await;
    let account = account(&mut admin, &beijing, "zoned@example.net").await;
    let me = admin
        .who_am_i(authed(&beijing.key, pb::WhoAmIRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.time_zone, "Asia/Shanghai");

    let before = today_in("Asia/Shanghai");
    internal
        .record_traffic(as_service(
            Service::Dispatch,
            pb::RecordTrafficRequest {
                tenant_id: beijing.id.clone(),
                account_id: account.account_id.clone(),
                pushed_count: 3,
                pushed_bytes: 300,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    // Between 16:00 and 24:00 UTC Beijing is a day ahead: a UTC day would
    // miss it then (the day function itself is unit-tested at fixed times).
    let after = today_in("Asia/Shanghai");
    let stats = admin
        .get_traffic_stats(authed(
            &beijing.key,
            pb::GetTrafficStatsRequest {
                tenant_id: beijing.id.clone(),
                account_id: account.account_id.clone(),
                from_day: before.clone(),
                to_day: after.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let pushed: u64 = stats.days.iter().map(|d| d.pushed_count).sum();
    assert_eq!(
        pushed, 3,
        "the push is on Beijing's today ({after}): {stats:?}"
    );

    // The tenant sets its own zone; not another tenant's; not a made-up one.
    let set = admin
        .set_tenant_time_zone(authed(
            &beijing.key,
            pb::SetTenantTimeZoneRequest {
                tenant_id: beijing.id.clone(),
                time_zone: "Europe/Berlin".to_owned(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(set.time_zone, "Europe/Berlin");
    refused(
        admin
            .set_tenant_time_zone(authed(
                &other.key,
                pb::SetTenantTimeZoneRequest {
                    tenant_id: beijing.id.clone(),
                    time_zone: "UTC".to_owned(),
                },
            ))
            .await,
        Code::PermissionDenied,
        "",
    );
    refused(
        admin
            .set_tenant_time_zone(authed(
                &beijing.key,
                pb::SetTenantTimeZoneRequest {
                    tenant_id: beijing.id.clone(),
                    time_zone: "Mars/Olympus".to_owned(),
                },
            ))
            .await,
        Code::InvalidArgument,
        "time_zone",
    );
    refused(
        admin
            .create_tenant(operator(pb::CreateTenantRequest {
                name: "nowhere".to_owned(),
                max_accounts: 1,
                time_zone: "Nowhere/City".to_owned(),
                ..Default::default()
            }))
            .await,
        Code::InvalidArgument,
        "time_zone",
    );
    platform.finish(vec![replica]).await;
}
