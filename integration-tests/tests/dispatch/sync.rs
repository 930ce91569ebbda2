//! Mailbox syncs (`MailArrived.mailbox_sync`, what ingest publishes when it
//! took a mailbox's current list as its baseline): a notification that
//! stands for no mail, pushed like one but never held, never by SMS.

use std::time::Duration;

use pushmail_common::bus::EventContext;
use pushmail_integration_tests::device::DeviceClient;
use pushmail_integration_tests::unique;
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::events::v1 as events;

use crate::Platform;

/// Publishes a mailbox sync of the account's INBOX, as ingest does; returns
/// its key.
async fn sync(platform: &Platform) -> String {
    let key = format!(
        "sync:{}:{}",
        platform.account.account_id,
        unique("baseline")
    );
    let now = pushmail_common::clock::now_ms();
    let event = events::MailArrived {
        meta: Some(EventContext::new(platform.tenant.tenant_id.clone()).meta(now)),
        account_id: platform.account.account_id.clone(),
        mailbox: "INBOX".to_owned(),
        idempotency_key: key.clone(),
        received_at: Some(pushmail_common::clock::timestamp(now)),
        source: events::IngestSource::Pop3.into(),
        mailbox_sync: true,
        ..Default::default()
    };
    platform.publish(&event).await;
    key
}

/// Quiet hours from a minute ago to an hour from now (Shanghai time), so
/// the test runs inside them whatever the clock says.
fn quiet_now() -> pb::QuietHours {
    let local = jiff::tz::db()
        .get("Asia/Shanghai")
        .unwrap()
        .to_datetime(jiff::Timestamp::now());
    let minute = u32::try_from(i32::from(local.hour()) * 60 + i32::from(local.minute())).unwrap();
    pb::QuietHours {
        start_minute: (minute + 1_439) % 1_440,
        end_minute: (minute + 60) % 1_440,
        time_zone: "Asia/Shanghai".to_owned(),
    }
}

/// The sync notification frame: the account and mailbox, no mail.
fn assert_sync(n: &serde_json::Value, platform: &Platform) {
    let account = platform.account.account_id.as_str();
    assert_eq!(
        (
            n["sync"].as_bool(),
            n["account"].as_str(),
            n["mailbox"].as_str(),
            n["collapse"].as_str()
        ),
        (
            Some(true),
            Some(account),
            Some("INBOX"),
            Some(format!("sync:{account}/INBOX").as_str())
        ),
        "{n}"
    );
    for mail in ["from", "subject", "snippet", "url", "attachments", "digest"] {
        assert!(n.get(mail).is_none(), "a sync carries no {mail}: {n}");
    }
}

/// The next receipt for `device` is `status` on `channel` for `key`.
async fn assert_receipt(
    platform: &mut Platform,
    device: &str,
    status: events::DeliveryStatus,
    channel: events::DeliveryChannel,
    key: &str,
) {
    let receipt = platform.receipt(device).await;
    assert_eq!(
        (
            receipt.status(),
            receipt.channel(),
            receipt.idempotency_key.as_str()
        ),
        (status, channel, key),
        "{receipt:?}"
    );
}

#[tokio::test]
async fn a_mailbox_sync_is_pushed_and_replayed_but_never_held_nor_sent_by_sms() {
    let mut platform = Platform::new().await;
    let (msisdn, registered) = platform.device(true).await;
    let device = registered.device.unwrap().device_id;
    let token = registered.device_token;
    // A number without a push client on the same account: a mail would
    // send it a text notice; a sync sends it nothing.
    let (bare, _) = platform.device(false).await;
    for number in [&msisdn, &bare] {
        let binding = platform.binding_of(number).await;
        platform
            .preferences(&binding, |p| p.quiet_hours = Some(quiet_now()))
            .await;
    }
    let (mut phone, _) = DeviceClient::connect(platform.devices, &token, 0)
        .await
        .unwrap();

    // Quiet hours hold a mail...
    platform
        .mail("boss@corp.example", "Held till morning")
        .await;
    assert_eq!(
        platform.receipt(&device).await.status(),
        events::DeliveryStatus::Deferred
    );
    // ...but not a sync: it is no mail.
    let first = sync(&platform).await;
    let n = phone
        .notification_within(Duration::from_secs(30))
        .await
        .expect("the sync, in quiet hours");
    assert_sync(&n, &platform);
    let seq = n["seq"].as_u64().unwrap();
    phone.ack(seq).await.unwrap();
    assert_receipt(
        &mut platform,
        &device,
        events::DeliveryStatus::Acked,
        events::DeliveryChannel::HeldConnection,
        &first,
    )
    .await;
    platform.acked(&device, seq).await;
    phone.close().await;

    // Offline, with a number: queued in the outbox, no wake-up.
    let second = sync(&platform).await;
    assert_receipt(
        &mut platform,
        &device,
        events::DeliveryStatus::Queued,
        events::DeliveryChannel::Replay,
        &second,
    )
    .await;
    assert!(
        platform.no_sms(Duration::from_secs(3)).await,
        "no wake-up and no notice for a sync"
    );

    // The phone comes back: the replay carries the sync, and only it (the
    // mail is still held).
    let (mut phone, _) = DeviceClient::connect(platform.devices, &token, seq)
        .await
        .unwrap();
    let n = phone
        .notification_within(Duration::from_secs(15))
        .await
        .expect("the replayed sync");
    assert_sync(&n, &platform);
    let replayed = n["seq"].as_u64().unwrap();
    assert!(replayed > seq, "{n}");
    phone.ack(replayed).await.unwrap();
    // Session reports the replay's ack.
    assert_receipt(
        &mut platform,
        &device,
        events::DeliveryStatus::Acked,
        events::DeliveryChannel::Replay,
        &second,
    )
    .await;
    assert!(
        phone
            .notification_within(Duration::from_secs(1))
            .await
            .is_none(),
        "the held mail stays held"
    );
    assert!(platform.no_sms(Duration::from_secs(1)).await);
    phone.close().await;
    platform.stop().await;
}
