//! Preferences at work: black list, quiet hours with their digest; the
//! tenant's push rate.

use std::time::Duration;

use pushmail_integration_tests::device::DeviceClient;
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::events::v1 as events;

use crate::Platform;

#[tokio::test]
async fn a_black_listed_sender_is_dropped_and_the_white_list_wins() {
    let mut platform = Platform::new().await;
    let (msisdn, registered) = platform.device(true).await;
    let device = registered.device.unwrap().device_id;
    let binding = platform.binding_of(&msisdn).await;
    platform
        .preferences(&binding, |p| {
            p.black_list = Some(pb::AddressList {
                entries: vec!["@spam.example".to_owned()],
            });
            p.white_list = Some(pb::AddressList {
                entries: vec!["friend@spam.example".to_owned()],
            });
        })
        .await;
    let (mut phone, _) = DeviceClient::connect(platform.devices, &registered.device_token, 0)
        .await
        .unwrap();
    platform.mail("offers@spam.example", "Buy now").await;
    let receipt = platform.receipt(&device).await;
    assert_eq!(receipt.status(), events::DeliveryStatus::Suppressed);
    platform.mail("friend@spam.example", "Lunch?").await;
    let n = phone
        .notification_within(Duration::from_secs(30))
        .await
        .expect("the white-listed mail");
    assert_eq!(
        n["subject"], "Lunch?",
        "the black-listed one never came: {n}"
    );
    phone.ack(n["seq"].as_u64().unwrap()).await.unwrap();
    assert_eq!(
        platform.receipt(&device).await.status(),
        events::DeliveryStatus::Acked
    );
    phone.close().await;
    assert!(
        platform.no_sms(Duration::from_secs(1)).await,
        "no wake-up for a dropped mail"
    );
    platform.stop().await;
}

#[tokio::test]
async fn quiet_hours_hold_mail_and_send_one_digest_when_they_end() {
    let mut platform = Platform::new().await;
    let (msisdn, registered) = platform.device(true).await;
    let device = registered.device.unwrap().device_id;
    let binding = platform.binding_of(&msisdn).await;
    // A window from this minute to the next, in Shanghai time; start past
    // the minute's first seconds so two mails fit inside it.
    let mut now = jiff::Timestamp::now();
    if now.as_second() % 60 > 45 {
        tokio::time::sleep(Duration::from_secs(16)).await;
        now = jiff::Timestamp::now();
    }
    let local = jiff::tz::db()
        .get("Asia/Shanghai")
        .unwrap()
        .to_datetime(now);
    let minute = u32::try_from(i32::from(local.hour()) * 60 + i32::from(local.minute())).unwrap();
    platform
        .preferences(&binding, |p| {
            p.quiet_hours = Some(pb::QuietHours {
                start_minute: minute,
                end_minute: (minute + 1) % 1_440,
                time_zone: "Asia/Shanghai".to_owned(),
            });
        })
        .await;
    let (mut phone, _) = DeviceClient::connect(platform.devices, &registered.device_token, 0)
        .await
        .unwrap();
    platform.mail("boss@corp.example", "Late one").await;
    platform.mail("boss@corp.example", "Later one").await;
    for _ in 0..2 {
        assert_eq!(
            platform.receipt(&device).await.status(),
            events::DeliveryStatus::Deferred
        );
    }
    // Held while the window lasts (nothing within the first seconds)...
    assert!(
        phone
            .notification_within(Duration::from_secs(2))
            .await
            .is_none(),
        "quiet"
    );
    // ...and one digest when it ends.
    let n = phone
        .notification_within(Duration::from_secs(75))
        .await
        .expect("the digest");
    assert_eq!(
        (n["subject"].as_str(), n["digest"].as_u64()),
        (Some("Later one"), Some(2)),
        "{n}"
    );
    phone.ack(n["seq"].as_u64().unwrap()).await.unwrap();
    assert!(
        phone
            .notification_within(Duration::from_secs(2))
            .await
            .is_none(),
        "one digest"
    );
    phone.close().await;
    platform.stop().await;
}

#[tokio::test]
async fn past_the_tenants_push_rate_mail_waits_for_the_next_window() {
    let mut platform = Platform::with(|c| c.delivery.rate_window_ms = 10_000).await;
    // 12 a minute: 2 in each 10-second window.
    platform.use_tenant_with_rate(12).await;
    let (_, registered) = platform.device(true).await;
    let device = registered.device.unwrap().device_id;
    let (mut phone, _) = DeviceClient::connect(platform.devices, &registered.device_token, 0)
        .await
        .unwrap();
    // Start early in a window, so the three mails fall in one.
    let into = pushmail_common::clock::now_ms() % 10_000;
    if into > 2_000 {
        tokio::time::sleep(Duration::from_millis(u64::try_from(10_000 - into).unwrap())).await;
    }
    for subject in ["One", "Two", "Three"] {
        platform.mail("boss@corp.example", subject).await;
    }
    for expected in ["One", "Two"] {
        let n = phone
            .notification_within(Duration::from_secs(30))
            .await
            .expect(expected);
        assert_eq!(n["subject"], expected, "{n}");
        phone.ack(n["seq"].as_u64().unwrap()).await.unwrap();
    }
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let receipt = platform.receipt(&device).await;
        if receipt.status() == events::DeliveryStatus::Deferred {
            assert_eq!(receipt.detail, "tenant push rate limit");
        }
        statuses.push(receipt.status());
    }
    assert_eq!(
        statuses,
        [
            events::DeliveryStatus::Acked,
            events::DeliveryStatus::Acked,
            events::DeliveryStatus::Deferred
        ]
    );
    // The third goes out when the window ends.
    let n = phone
        .notification_within(Duration::from_secs(30))
        .await
        .expect("the held mail");
    assert_eq!(n["subject"], "Three", "{n}");
    phone.ack(n["seq"].as_u64().unwrap()).await.unwrap();
    phone.close().await;
    platform.stop().await;
}
