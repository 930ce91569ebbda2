//! The ladder: held connection, outbox replay with one SMS wake-up, text
//! notices for phones without a push client.

use std::time::Duration;

use pushmail_integration_tests::device::DeviceClient;
use pushmail_proto::events::v1 as events;
use pushmail_proto::topics;

use crate::Platform;

#[tokio::test]
async fn an_online_device_gets_the_push_once() {
    let mut platform = Platform::new().await;
    let (_, registered) = platform.device(true).await;
    let device = registered.device.unwrap().device_id;
    let (mut phone, _) = DeviceClient::connect(platform.devices, &registered.device_token, 0)
        .await
        .unwrap();

    let key = platform.mail("boss@corp.example", "Q3 report").await;
    let n = phone
        .notification_within(Duration::from_secs(30))
        .await
        .expect("the push");
    assert_eq!(n["seq"], 1);
    assert_eq!(n["subject"], "Q3 report");
    assert_eq!(n["from"], "Sender <boss@corp.example>");
    assert_eq!(n["account"], platform.account.account_id.as_str());
    assert!(
        n["url"].as_str().unwrap().contains("/messages/sha256-0123"),
        "{n}"
    );
    assert!(n["trace"].as_str().is_some_and(|t| t.starts_with("00-")) || n.get("trace").is_none());
    phone.ack(1).await.unwrap();
    let receipt = platform.receipt(&device).await;
    assert_eq!(
        (
            receipt.status(),
            receipt.channel(),
            receipt.idempotency_key.as_str(),
            receipt.sequence
        ),
        (
            events::DeliveryStatus::Acked,
            events::DeliveryChannel::HeldConnection,
            key.as_str(),
            1
        )
    );

    // The same event again (a redelivery): nothing new reaches the phone.
    let event = platform.event(&key, "boss@corp.example", "Q3 report");
    platform.publish(&event).await;
    let second = platform.mail("boss@corp.example", "Next").await;
    let n = phone
        .notification_within(Duration::from_secs(30))
        .await
        .expect("the next push");
    assert_eq!(
        (n["seq"].as_u64(), n["subject"].as_str()),
        (Some(2), Some("Next")),
        "{n}"
    );
    phone.ack(2).await.unwrap();
    assert!(
        phone
            .notification_within(Duration::from_secs(2))
            .await
            .is_none()
    );
    let _ = second;
    // Counted for the portal: two pushes, their bytes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut traffic = platform.traffic_today().await;
    while traffic.pushed_count < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        traffic = platform.traffic_today().await;
    }
    assert_eq!(traffic.pushed_count, 2, "{traffic:?}");
    assert!(traffic.pushed_bytes > 0);
    // An online device costs no SMS.
    assert!(platform.no_sms(Duration::from_secs(1)).await);
    phone.close().await;
    platform.stop().await;
}

#[tokio::test]
async fn an_offline_device_gets_one_wake_up_then_the_replay() {
    let mut platform = Platform::new().await;
    let (msisdn, registered) = platform.device(true).await;
    let device = registered.device.unwrap().device_id;

    platform.mail("boss@corp.example", "First").await;
    platform.mail("boss@corp.example", "Second").await;
    let sms: events::SmsOutbound = platform.watch.next(topics::SMS_OUTBOUND).await.unwrap();
    assert_eq!(sms.msisdn, msisdn);
    assert_eq!(sms.purpose(), events::SmsPurpose::WakeUp);
    assert_eq!(sms.device_id, device);
    let Some(events::sms_outbound::Body::WapPushPdu(pdu)) = &sms.body else {
        panic!("a wake-up is a WAP push: {sms:?}");
    };
    assert_eq!(&pdu[1..3], &[0x06, 0x03], "a WSP push PDU");
    let joined: Vec<u8> = sms
        .segments
        .iter()
        .flat_map(|s| s.user_data.clone())
        .collect();
    assert_eq!(&joined, pdu);
    assert!(
        sms.segments
            .iter()
            .all(|s| s.data_coding() == events::SmsDataCoding::Binary)
    );
    // One wake-up per window, however many mails.
    assert!(
        platform.no_sms(Duration::from_secs(3)).await,
        "a second wake-up within the window"
    );
    let statuses: Vec<_> = [
        platform.receipt(&device).await,
        platform.receipt(&device).await,
        platform.receipt(&device).await,
    ]
    .iter()
    .map(events::DeliveryReceipt::status)
    .collect();
    assert!(
        statuses.contains(&events::DeliveryStatus::Queued),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&events::DeliveryStatus::SmsSubmitted),
        "{statuses:?}"
    );

    // The phone wakes up and connects: the two mails come as one
    // notification (same account and mailbox, unseen), counted.
    let (mut phone, _) = DeviceClient::connect(platform.devices, &registered.device_token, 0)
        .await
        .unwrap();
    let n = phone
        .notification_within(Duration::from_secs(15))
        .await
        .expect("the replay");
    assert_eq!(
        (n["subject"].as_str(), n["digest"].as_u64()),
        (Some("Second"), Some(2)),
        "{n}"
    );
    let seq = n["seq"].as_u64().unwrap();
    phone.ack(seq).await.unwrap();
    assert!(
        phone
            .notification_within(Duration::from_secs(1))
            .await
            .is_none(),
        "once"
    );
    platform.acked(&device, seq).await;
    phone.close().await;
    // Acked: a later reconnect from the start replays nothing.
    let (mut again, _) = DeviceClient::connect(platform.devices, &registered.device_token, 0)
        .await
        .unwrap();
    assert!(
        again
            .notification_within(Duration::from_secs(1))
            .await
            .is_none()
    );
    again.close().await;
    platform.stop().await;
}

#[tokio::test]
async fn a_phone_without_a_push_client_gets_a_text_notice_per_mail() {
    let mut platform = Platform::new().await;
    let (msisdn, registered) = platform.device(false).await;
    let device = registered.device.unwrap().device_id;
    let key = platform.mail("boss@corp.example", "季度报告").await;
    let sms: events::SmsOutbound = platform.watch.next(topics::SMS_OUTBOUND).await.unwrap();
    assert_eq!(
        (sms.msisdn.as_str(), sms.purpose()),
        (msisdn.as_str(), events::SmsPurpose::Notice)
    );
    let Some(events::sms_outbound::Body::Text(text)) = &sms.body else {
        panic!("a notice is text: {sms:?}");
    };
    assert_eq!(text, "New mail from Sender: 季度报告");
    assert_eq!(sms.segments.len(), 1);
    assert_eq!(sms.segments[0].data_coding(), events::SmsDataCoding::Ucs2);
    let receipt = platform.receipt(&device).await;
    assert_eq!(
        (
            receipt.status(),
            receipt.channel(),
            receipt.idempotency_key.as_str()
        ),
        (
            events::DeliveryStatus::SmsSubmitted,
            events::DeliveryChannel::SmsNotice,
            key.as_str()
        )
    );
    // A redelivered event sends no second notice; the next mail does.
    let event = platform.event(&key, "boss@corp.example", "季度报告");
    platform.publish(&event).await;
    platform
        .mail("boss@corp.example", "Plain ASCII subject")
        .await;
    let sms: events::SmsOutbound = platform.watch.next(topics::SMS_OUTBOUND).await.unwrap();
    let Some(events::sms_outbound::Body::Text(text)) = &sms.body else {
        panic!("text");
    };
    assert_eq!(text, "New mail from Sender: Plain ASCII subject");
    assert_eq!(sms.segments[0].data_coding(), events::SmsDataCoding::Gsm7);
    platform.stop().await;
}

#[tokio::test]
async fn a_phone_whose_outbox_was_lost_is_acked_only_for_what_it_acks() {
    let mut platform = Platform::new().await;
    let (msisdn, registered) = platform.device(true).await;
    let device = registered.device.unwrap().device_id;
    let token = &registered.device_token;
    let (mut phone, _) = DeviceClient::connect(platform.devices, token, 0)
        .await
        .unwrap();
    platform.mail("boss@corp.example", "First").await;
    let n = phone
        .notification_within(Duration::from_secs(30))
        .await
        .expect("the push");
    assert_eq!(n["seq"], 1);
    phone.ack(1).await.unwrap();
    assert_eq!(
        platform.receipt(&device).await.status(),
        events::DeliveryStatus::Acked
    );
    phone.close().await;

    // The outbox is lost (a Redis flush); the phone keeps its cursor, 1,
    // and names no generation, as the phone of the issue did.
    let mut redis = pushmail_common::redis::connect(&platform.redis)
        .await
        .unwrap();
    let base = format!(
        "{}outbox:{{{}/{device}}}",
        platform.redis.key_prefix, platform.tenant.tenant_id
    );
    let _: u32 = redis::cmd("DEL")
        .arg(&["s", "m", "i", "c"].map(|k| format!("{base}:{k}")))
        .query_async(&mut redis)
        .await
        .unwrap();
    let (mut phone, _) = DeviceClient::connect(platform.devices, token, 1)
        .await
        .unwrap();
    let resync = phone.next_within(Duration::from_secs(15)).await.unwrap();
    assert_eq!(resync["t"], "resync", "{resync}");

    // The next mail is sequence 1 again: shown, and while the phone does
    // not ack it, dispatch hears "no ack" and falls back.
    let key = platform.mail("boss@corp.example", "Second").await;
    let n = phone
        .notification_within(Duration::from_secs(30))
        .await
        .expect("the push");
    assert_eq!(
        (n["seq"].as_u64(), n["subject"].as_str()),
        (Some(1), Some("Second"))
    );
    let receipt = platform.receipt(&device).await;
    assert_eq!(
        (
            receipt.status(),
            receipt.channel(),
            receipt.idempotency_key.as_str()
        ),
        (
            events::DeliveryStatus::Queued,
            events::DeliveryChannel::Replay,
            key.as_str()
        ),
        "{receipt:?}"
    );
    let sms: events::SmsOutbound = platform.watch.next(topics::SMS_OUTBOUND).await.unwrap();
    assert_eq!(
        (sms.msisdn.as_str(), sms.purpose()),
        (msisdn.as_str(), events::SmsPurpose::WakeUp)
    );

    // Acked by the phone, the next one counts as acked. Sequence 1 may
    // come again first: it was unacked when dispatch gave up waiting, and
    // delivery is at least once (a retried errand, a redelivered event),
    // so a phone shows each sequence once, as the demo device does.
    phone.ack(1).await.unwrap();
    platform.mail("boss@corp.example", "Third").await;
    let n = loop {
        let n = phone
            .notification_within(Duration::from_secs(30))
            .await
            .expect("the push");
        if n["seq"] != 1 {
            break n;
        }
    };
    assert_eq!(
        (n["seq"].as_u64(), n["subject"].as_str()),
        (Some(2), Some("Third"))
    );
    phone.ack(2).await.unwrap();
    // Dispatch logs the ack it waited for (2); session the one that came
    // after dispatch stopped waiting (1), counted in traffic by binding.
    let mut acked = Vec::new();
    while !acked.iter().any(|(seq, _, _)| *seq == 2) {
        let receipt = platform.receipt(&device).await;
        if receipt.status() == events::DeliveryStatus::Acked {
            acked.push((
                receipt.sequence,
                receipt.channel(),
                receipt.uncounted_push_bytes > 0,
            ));
        }
    }
    acked.sort_by_key(|(seq, _, _)| *seq);
    assert_eq!(
        acked,
        [
            (1, events::DeliveryChannel::HeldConnection, true),
            (2, events::DeliveryChannel::HeldConnection, false)
        ]
    );
    phone.close().await;
    platform.stop().await;
}
