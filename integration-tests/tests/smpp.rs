//! The SMPP connector between a broker of its own (tansu), Redis and an
//! SMS centre from another implementation (Net::SMPP, the connector being
//! on smpp34): what the SMS centre receives, and the receipts that come back.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pushmail_common::bus::{EventBus, EventContext, OutboundRecord, encode, header};
use pushmail_common::health::Readiness;
use pushmail_common::redact::Secret;
use pushmail_common::redis::{StateStoreConfig, StateStoreKind};
use pushmail_integration_tests::broker::PrivateBroker;
use pushmail_integration_tests::smsc::{Script, Smsc};
use pushmail_integration_tests::topics::TenantTopics;
use pushmail_integration_tests::{msisdn, unique, wait_ready};
use pushmail_proto::events::v1::{self as events, sms_outbound};
use pushmail_proto::topics;
use pushmail_smpp::config::SmscConfig;
use pushmail_sms_encoding as sms;
use tokio_util::sync::CancellationToken;

const PASSWORD: &str = "s3cret";

/// The connector and what it talks to, for one test.
struct Rig {
    _broker: PrivateBroker,
    bus: Arc<dyn EventBus>,
    tenant: String,
    watch: TenantTopics,
    admin: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Rig {
    async fn start(smsc: &Smsc, adjust: impl FnOnce(&mut SmscConfig)) -> Self {
        let broker = PrivateBroker::start().await.expect("private broker");
        let kafka = broker.kafka();
        let bus = broker.bus("smpp-test").await.unwrap();
        let tenant = unique("tenant");
        let watch = TenantTopics::on(
            &bus,
            &tenant,
            &[topics::DELIVERY.name(), topics::DISPATCH_DLQ.name()],
        )
        .await
        .unwrap();
        let mut smsc_config = SmscConfig {
            name: "test-smsc".to_owned(),
            address: smsc.address.clone(),
            password: Secret::new(PASSWORD),
            response_timeout_ms: 3_000,
            reconnect_initial_ms: 100,
            reconnect_max_ms: 400,
            throttled_pause_ms: 100,
            ..SmscConfig::default()
        };
        adjust(&mut smsc_config);
        let mut config = pushmail_smpp::Config {
            bus: pushmail_common::bus::BusConfig {
                kafka,
                ..Default::default()
            },
            state: StateStoreConfig {
                kind: StateStoreKind::Redis,
                redis: pushmail_integration_tests::redis_config(),
                ..Default::default()
            },
            smsc: vec![smsc_config],
            ..Default::default()
        };
        config.connector.group = unique("smpp");
        let listeners = pushmail_smpp::Listeners::ephemeral().await.unwrap();
        let admin = listeners.admin.local_addr().unwrap();
        let deps = pushmail_smpp::Deps {
            bus: bus.clone(),
            redis: config
                .state
                .connect(pushmail_common::redis::Durability::Cache)
                .await
                .unwrap(),
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                pushmail_smpp::run(config, deps, listeners, Readiness::new("smpp"), shutdown)
                    .await
                    .unwrap();
            }
        });
        Self {
            _broker: broker,
            bus,
            tenant,
            watch,
            admin,
            shutdown,
            task,
        }
    }

    fn sms(
        &self,
        msisdn: &str,
        purpose: events::SmsPurpose,
        body: sms_outbound::Body,
    ) -> events::SmsOutbound {
        let context = EventContext::new(self.tenant.clone());
        events::SmsOutbound {
            meta: Some(context.meta(pushmail_common::clock::now_ms())),
            msisdn: msisdn.to_owned(),
            purpose: purpose.into(),
            body: Some(body),
            segments: Vec::new(),
            request_id: unique("req"),
            expires_at: Some(pushmail_common::clock::timestamp(
                pushmail_common::clock::now_ms() + 3_600_000,
            )),
            account_id: unique("account"),
            device_id: unique("device"),
        }
    }

    async fn publish(&self, sms: &events::SmsOutbound) {
        let context = EventContext::new(self.tenant.clone());
        self.bus
            .publish(
                topics::SMS_OUTBOUND.name(),
                encode(topics::SMS_OUTBOUND, &sms.msisdn, &context, sms),
            )
            .await
            .unwrap();
    }

    async fn receipt(&mut self) -> events::DeliveryReceipt {
        self.watch.next(topics::DELIVERY).await.unwrap()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// The UTF-16 text of UCS-2 user data.
fn ucs2(data: &[u8]) -> String {
    let units: Vec<u16> = data
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).unwrap()
}

#[tokio::test]
async fn a_code_and_a_wake_up_reach_the_sms_centre_and_their_receipts_come_back() {
    let smsc = Smsc::start(PASSWORD, 0).await.unwrap();
    let mut rig = Rig::start(&smsc, |_| {}).await;
    wait_ready(rig.admin, Duration::from_secs(30))
        .await
        .unwrap();

    // A code in Chinese: UCS-2, two concatenated parts.
    let text = "【pushmail】验证码 123456，10 分钟内有效。".repeat(3);
    let code = rig.sms(
        &msisdn(),
        events::SmsPurpose::Otp,
        sms_outbound::Body::Text(text.clone()),
    );
    rig.publish(&code).await;
    // A wake-up split by its sender, as dispatch does.
    let si = sms::wap::ServiceIndication {
        href: "https://push.example.com/v1/sync".to_owned(),
        si_id: "mail-1".to_owned(),
        created: 1_795_000_000,
        expires: 1_795_086_400,
        text: "1 new mail".to_owned(),
    };
    let pdu = sms::wap::push_pdu(&si, 7);
    let mut wake_up = rig.sms(
        &msisdn(),
        events::SmsPurpose::WakeUp,
        sms_outbound::Body::WapPushPdu(pdu.clone()),
    );
    wake_up.segments = sms::wap::segments(&pdu, 7)
        .into_iter()
        .map(|s| events::SmsSegment {
            data_coding: events::SmsDataCoding::Binary.into(),
            user_data_header: s.udh,
            user_data: s.user_data,
        })
        .collect();
    rig.publish(&wake_up).await;

    let parts = 2 + wake_up.segments.len();
    assert!(
        smsc.until(Duration::from_secs(60), |s| s.accepted.len() == parts)
            .await,
        "{:?}",
        smsc.seen().await
    );
    let accepted = smsc.seen().await.unwrap().accepted;
    let code_parts: Vec<_> = accepted
        .iter()
        .filter(|a| a.destination == code.msisdn.trim_start_matches('+'))
        .collect();
    assert_eq!(code_parts.len(), 2);
    let mut joined = String::new();
    for (i, part) in code_parts.iter().enumerate() {
        assert_eq!((part.esm_class, part.data_coding), (0x40, 0x08));
        assert_eq!(&part.short_message[..3], &[5, 0, 3]);
        assert_eq!(
            &part.short_message[4..6],
            &[2, u8::try_from(i + 1).unwrap()]
        );
        // The receipt is asked for once, on the last part.
        assert_eq!(part.registered_delivery, u8::from(i == 1));
        assert_eq!(part.validity_period.len(), 16);
        assert!(
            part.validity_period.ends_with("000+"),
            "{}",
            part.validity_period
        );
        joined.push_str(&ucs2(&part.short_message[6..]));
    }
    assert_eq!(joined, text);
    let wap_parts: Vec<_> = accepted
        .iter()
        .filter(|a| a.destination == wake_up.msisdn.trim_start_matches('+'))
        .collect();
    assert_eq!(wap_parts.len(), wake_up.segments.len());
    // Binary, with the WAP Push port pair (2948 from 9200) in the header.
    let port_ie = [0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0];
    assert_eq!(wap_parts[0].data_coding, 0x04);
    assert!(wap_parts[0].short_message.windows(6).any(|w| w == port_ie));

    // Both are reported submitted, naming the request.
    let mut submitted = vec![rig.receipt().await, rig.receipt().await];
    submitted.sort_by_key(|r| r.request_id != code.request_id);
    assert_eq!(submitted[0].request_id, code.request_id);
    assert_eq!(submitted[1].request_id, wake_up.request_id);
    for receipt in &submitted {
        assert_eq!(receipt.status(), events::DeliveryStatus::SmsSubmitted);
    }
    assert_eq!(submitted[1].channel(), events::DeliveryChannel::SmsWakeUp);
    assert_eq!(submitted[1].device_id, wake_up.device_id);

    // The SMS centre's receipts: with optional parameters...
    assert_eq!(smsc.receipt(&code_parts[1].message_id, 2).await.unwrap(), 0);
    let delivered = rig.receipt().await;
    assert_eq!(
        (delivered.status(), delivered.request_id.as_str()),
        (
            events::DeliveryStatus::SmsDelivered,
            code.request_id.as_str()
        )
    );
    assert!(delivered.detail.contains("DELIVRD"), "{}", delivered.detail);
    // ...and as text only, the id in decimal where submit_sm_resp gave hex.
    let last = wap_parts.last().unwrap();
    let decimal = u64::from_str_radix(&last.message_id, 16).unwrap();
    let text = format!(
        "id:{decimal} sub:001 dlvrd:000 submit date:2611270930 done date:2611271930 stat:UNDELIV err:001 text:"
    );
    assert_eq!(smsc.text_receipt(&text).await.unwrap(), 0);
    let failed = rig.receipt().await;
    assert_eq!(
        (failed.status(), failed.request_id.as_str()),
        (events::DeliveryStatus::Failed, wake_up.request_id.as_str())
    );
    assert!(
        failed.detail.contains("UNDELIV") && failed.detail.contains("001"),
        "{}",
        failed.detail
    );

    // Receipts for nothing we sent, a repeated one, a reply from a phone:
    // answered, and nothing published.
    assert_eq!(smsc.receipt("ffff0000", 2).await.unwrap(), 0);
    assert_eq!(smsc.receipt(&code_parts[1].message_id, 2).await.unwrap(), 0);
    assert_eq!(smsc.mobile_originated("STOP").await.unwrap(), 0);
    // A receipt the connector cannot read is refused for good
    // (ESME_RX_P_APPN), in a deliver_sm_resp whose length is right: the
    // SMS centre reads the next answer where it begins.
    assert_eq!(smsc.text_receipt("stat:DELIVRD").await.unwrap(), 0x65);
    assert_eq!(smsc.mobile_originated("HELP").await.unwrap(), 0);
    let extra = rig
        .watch
        .next_within(topics::DELIVERY, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(extra.is_none(), "{extra:?}");
    rig.stop().await;
    smsc.stop().await;
}

#[tokio::test]
async fn refusals_fail_and_throttling_full_queues_and_lost_links_are_retried_without_repeats() {
    let smsc = Smsc::start(PASSWORD, 0).await.unwrap();
    let mut rig = Rig::start(&smsc, |_| {}).await;
    wait_ready(rig.admin, Duration::from_secs(30))
        .await
        .unwrap();

    // Throttled three times, then the second part finds the queue full twice:
    // each part reaches the SMS centre once.
    smsc.script(Script {
        throttle_next: Some(3),
        queue_full_on_part_two: Some(2),
        ..Script::default()
    })
    .await
    .unwrap();
    let text =
        "pushmail: you have 3 new mails from Zhang Wei, the latest about the quarterly report. "
            .repeat(2);
    let notice = rig.sms(
        &msisdn(),
        events::SmsPurpose::Notice,
        sms_outbound::Body::Text(text),
    );
    rig.publish(&notice).await;
    let receipt = rig.receipt().await;
    assert_eq!(
        (receipt.status(), receipt.request_id.as_str()),
        (
            events::DeliveryStatus::SmsSubmitted,
            notice.request_id.as_str()
        )
    );
    let seen = smsc.seen().await.unwrap();
    assert_eq!(
        seen.refused,
        [0x58, 0x58, 0x58, 0x14, 0x14],
        "ESME_RTHROTTLED thrice, then ESME_RMSGQFUL twice"
    );
    let parts: Vec<u8> = seen.accepted.iter().map(|a| a.short_message[5]).collect();
    assert_eq!(parts, [1, 2], "GSM-7 parts 1 and 2, once each");
    assert_eq!(seen.accepted[0].data_coding, 0x00);

    // A number the SMS centre refuses: failed, with the SMPP status.
    smsc.script(Script {
        refuse_suffix: Some("0000".to_owned()),
        ..Script::default()
    })
    .await
    .unwrap();
    let refused = rig.sms(
        "+8613800000000",
        events::SmsPurpose::Otp,
        sms_outbound::Body::Text("code 123456".into()),
    );
    rig.publish(&refused).await;
    let receipt = rig.receipt().await;
    assert_eq!(receipt.status(), events::DeliveryStatus::Failed);
    assert!(
        receipt.detail.contains("ESME_RINVDSTADR"),
        "{}",
        receipt.detail
    );

    // Expired before it could go: failed without reaching the SMS centre.
    let mut stale = rig.sms(
        &msisdn(),
        events::SmsPurpose::WakeUp,
        sms_outbound::Body::Text("wake".into()),
    );
    stale.expires_at = Some(pushmail_common::clock::timestamp(
        pushmail_common::clock::now_ms() - 1_000,
    ));
    rig.publish(&stale).await;
    let receipt = rig.receipt().await;
    assert_eq!(receipt.status(), events::DeliveryStatus::Failed);
    assert!(receipt.detail.contains("expired"), "{}", receipt.detail);

    // A record that is not an SmsOutbound: dead-lettered whole.
    let mut headers = pushmail_common::bus::Headers::new();
    headers.insert(header::TENANT_ID.to_owned(), rig.tenant.clone());
    rig.bus
        .publish(
            topics::SMS_OUTBOUND.name(),
            OutboundRecord {
                key: b"garbage".to_vec(),
                payload: vec![0xFF, 0xFF, 0xFF],
                headers,
            },
        )
        .await
        .unwrap();
    let letter = rig.watch.next(topics::DISPATCH_DLQ).await.unwrap();
    assert_eq!(letter.payload, [0xFF, 0xFF, 0xFF]);
    assert_eq!(letter.source_topic, topics::SMS_OUTBOUND.name());

    // The SMS centre unbinds (maintenance): the connector answers, the
    // link binds again and the next message goes out.
    assert_eq!(smsc.unbind().await.unwrap(), 0);
    assert!(smsc.until(Duration::from_secs(30), |s| s.binds == 2).await);
    let after = rig.sms(
        &msisdn(),
        events::SmsPurpose::Otp,
        sms_outbound::Body::Text("code 654321".into()),
    );
    rig.publish(&after).await;
    let receipt = rig.receipt().await;
    assert_eq!(
        (receipt.status(), receipt.request_id.as_str()),
        (
            events::DeliveryStatus::SmsSubmitted,
            after.request_id.as_str()
        )
    );
    assert_eq!(smsc.seen().await.unwrap().accepted.len(), 3);
    rig.stop().await;
    smsc.stop().await;
}

#[tokio::test]
async fn a_refused_bind_holds_messages_until_it_binds_and_enquire_link_keeps_a_quiet_link() {
    // The SMS centre drops links silent for 2 s and never probes them itself.
    let smsc = Smsc::start("other", 2_000).await.unwrap();
    let mut rig = Rig::start(&smsc, |c| c.enquire_link_seconds = 1).await;
    let sms = rig.sms(
        &msisdn(),
        events::SmsPurpose::Otp,
        sms_outbound::Body::Text("code 111111".into()),
    );
    rig.publish(&sms).await;
    let unready = wait_ready(rig.admin, Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(
        unready
            .to_string()
            .contains("none of 1 SMS centres is bound"),
        "{unready}"
    );
    let seen = smsc.seen().await.unwrap();
    assert!(seen.accepted.is_empty() && seen.binds == 0, "{seen:?}");

    // The password is fixed at the SMS centre: the held message goes out.
    smsc.script(Script {
        password: Some(PASSWORD.to_owned()),
        ..Script::default()
    })
    .await
    .unwrap();
    wait_ready(rig.admin, Duration::from_secs(30))
        .await
        .unwrap();
    let receipt = rig.receipt().await;
    assert_eq!(receipt.request_id, sms.request_id);
    assert_eq!(smsc.seen().await.unwrap().accepted.len(), 1);

    // Quiet for twice the SMS centre's inactivity limit (the wait is the
    // scenario): still the same bind, never dropped as inactive.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let seen = smsc.seen().await.unwrap();
    assert_eq!(seen.binds, 1);
    assert!(
        !seen.closed.iter().any(|why| why == "inactivity"),
        "{seen:?}"
    );
    let later = rig.sms(
        &msisdn(),
        events::SmsPurpose::Otp,
        sms_outbound::Body::Text("code 222222".into()),
    );
    rig.publish(&later).await;
    assert_eq!(rig.receipt().await.request_id, later.request_id);
    assert_eq!(smsc.seen().await.unwrap().binds, 1);
    rig.stop().await;
    smsc.stop().await;
}
