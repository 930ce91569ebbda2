//! Mail in over IMAP and SMTP → the online phone gets exactly one push
//! with the right summary; an offline phone gets an SMS wake-up, then the
//! mail when it connects; the mail's trace id is in the notification and
//! in a span of every service on the way.

use std::collections::BTreeSet;
use std::time::Duration;

use pushmail_ingest::marks::{ImapMarks as _, RedisMarks};
use pushmail_integration_tests::collector::OtlpCollector;
use pushmail_integration_tests::device::SimulatedPhone;
use pushmail_integration_tests::dovecot::Dovecot;
use pushmail_integration_tests::platform::{ProcessPlatform, Wiring};
use pushmail_integration_tests::topics::TenantTopics;
use pushmail_integration_tests::{kafka_bus, kafka_config, unique};
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::events::v1::{SmsOutbound, sms_outbound};
use pushmail_proto::topics;

use crate::{binaries, mail};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_over_imap_and_smtp_reaches_each_phone_once_with_one_trace_through_every_service() {
    let (collector, otlp) = OtlpCollector::start().await.unwrap();
    let home_address = format!("{}@example.net", unique("home"));
    let dovecot = Dovecot::start(&[home_address.as_str()]).await.unwrap();
    let mut platform = ProcessPlatform::start(
        &binaries(),
        &Wiring {
            kafka: kafka_config(),
            require_auth: false,
            tight_listeners: false,
            redis_url: None,
            otlp: Some(otlp),
            coalesce_ms: pushmail_outbox::OutboxSettings::default().coalesce_ms,
        },
    )
    .await
    .unwrap();
    let bus = kafka_bus().await.unwrap();
    let api = &mut platform.api;
    let tenant = api.tenant().await.unwrap();
    let mut watch = TenantTopics::sms(&bus, &tenant.tenant_id).await.unwrap();
    let office_address = format!("{}@corp.example", unique("office"));
    let office = api.forwarded(&tenant, &office_address).await.unwrap();
    let (_, office_device) = api
        .device(&tenant, &office, true, &mut watch)
        .await
        .unwrap();
    let user = &dovecot.users[0];
    let home = api
        .mailbox_account(
            &tenant,
            user,
            dovecot.imap.port(),
            pb::AccountKind::ExternalImap,
        )
        .await
        .unwrap();
    let (_, home_device) = api.device(&tenant, &home, true, &mut watch).await.unwrap();
    let away_address = format!("{}@corp.example", unique("away"));
    let away = api.forwarded(&tenant, &away_address).await.unwrap();
    let (away_msisdn, away_device) = api.device(&tenant, &away, true, &mut watch).await.unwrap();

    let mut office_phone = SimulatedPhone::start(platform.devices, &office_device.device_token);
    let mut home_phone = SimulatedPhone::start(platform.devices, &home_device.device_token);
    office_phone.connected().await.unwrap();
    home_phone.connected().await.unwrap();
    // What operations size and scale session by.
    let (_, metrics) = pushmail_integration_tests::http_get(platform.session.admin(), "/metrics")
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "pushmail_session_connections 2"),
        "{metrics}"
    );

    // SMTP, sent by swaks.
    pushmail_integration_tests::smtp::swaks(
        platform.smtp,
        &office_address,
        mail(&office_address, "Quarterly figures").as_bytes(),
    )
    .await
    .unwrap();
    let pushed = office_phone
        .notification_within(Duration::from_secs(60))
        .await
        .unwrap_or_else(|| panic!("no push for the SMTP mail\n{}", platform.logs()));
    assert_eq!(pushed.subject.as_deref(), Some("Quarterly figures"));
    assert!(
        pushed
            .from
            .as_deref()
            .unwrap_or_default()
            .contains("boss@example.net"),
        "{pushed:?}"
    );
    // The default content level withholds the snippet; the fetch URL is there.
    assert_eq!(pushed.snippet, None);
    assert!(
        pushed
            .url
            .as_deref()
            .unwrap_or_default()
            .contains(&office.account_id),
        "{pushed:?}"
    );
    assert_eq!(pushed.account, office.account_id);
    // The phone fetches the message the push points at, from the gateway
    // (transcode reads it from the blob ingest stored).
    let url = pushed.url.clone().unwrap();
    let fetched = pushmail_device::fetch::get(&url, &office_device.device_token)
        .await
        .unwrap();
    let summary = String::from_utf8_lossy(&fetched.body);
    assert_eq!(fetched.status, 200, "{summary}\n{}", platform.logs());
    assert!(summary.contains("Quarterly figures"), "{summary}");
    let refused = pushmail_device::fetch::get(&url, &home_device.device_token)
        .await
        .unwrap();
    assert_eq!(
        refused.status, 404,
        "another account's phone must not read it"
    );
    let traceparent = pushed
        .trace
        .clone()
        .expect("the notification names its trace");
    let trace_id = traceparent.split('-').nth(1).unwrap().to_owned();

    // IMAP: once the watcher has marked the mailbox, a mail delivered into it.
    let marks = RedisMarks::new(
        platform
            .ingest_config
            .marks
            .connect(pushmail_common::redis::Durability::Cache)
            .await
            .unwrap()
            .unwrap(),
        &platform.ingest_config.marks.redis.key_prefix,
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while marks
        .get(&home.account_id, "INBOX")
        .await
        .unwrap()
        .is_none()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the mailbox was never watched\n{}",
            platform.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    dovecot
        .deliver(
            &user.address,
            mail(&user.address, "Dinner on Friday").as_bytes(),
        )
        .await
        .unwrap();
    let pushed = home_phone
        .notification_within(Duration::from_secs(60))
        .await
        .unwrap_or_else(|| panic!("no push for the IMAP mail\n{}", platform.logs()));
    assert_eq!(pushed.subject.as_deref(), Some("Dinner on Friday"));
    assert_eq!(pushed.account, home.account_id);

    // Exactly one each: nothing more arrives (a duplicate would be a new
    // sequence; a replayed old one is dropped by the phone and not counted).
    assert!(
        office_phone
            .notification_within(Duration::from_secs(3))
            .await
            .is_none()
    );
    assert!(
        home_phone
            .notification_within(Duration::from_secs(1))
            .await
            .is_none()
    );

    // The offline phone: an SMS wake-up to its number, then the mail on connect.
    pushmail_integration_tests::smtp::swaks(
        platform.smtp,
        &away_address,
        mail(&away_address, "While you were out").as_bytes(),
    )
    .await
    .unwrap();
    let wake_up = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let sms: SmsOutbound = watch.next(topics::SMS_OUTBOUND).await.unwrap();
            if sms.msisdn == away_msisdn {
                return sms;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no SMS for the offline phone\n{}", platform.logs()));
    assert!(
        matches!(
            wake_up.body,
            Some(sms_outbound::Body::WapPushPdu(_) | sms_outbound::Body::Text(_))
        ),
        "{wake_up:?}"
    );
    let mut away_phone = SimulatedPhone::start(platform.devices, &away_device.device_token);
    let replayed = away_phone
        .notification_within(Duration::from_secs(60))
        .await
        .unwrap_or_else(|| panic!("nothing replayed on connect\n{}", platform.logs()));
    assert_eq!(replayed.subject.as_deref(), Some("While you were out"));
    assert!(
        away_phone
            .notification_within(Duration::from_secs(2))
            .await
            .is_none()
    );
    // Session saw the replay acked: the log ends in ACKED (channel replay)
    // and binding counts the push in the account's traffic.
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let log = platform
            .api
            .admin
            .list_deliveries(pushmail_integration_tests::authed(
                pushmail_integration_tests::OPERATOR_TOKEN,
                pb::ListDeliveriesRequest {
                    tenant_id: tenant.tenant_id.clone(),
                    account_id: away.account_id.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let traffic = platform
            .api
            .admin
            .get_traffic_stats(pushmail_integration_tests::authed(
                pushmail_integration_tests::OPERATOR_TOKEN,
                pb::GetTrafficStatsRequest {
                    tenant_id: tenant.tenant_id.clone(),
                    account_id: away.account_id.clone(),
                    // A day either side: the test may cross midnight.
                    from_day: today.yesterday().unwrap().to_string(),
                    to_day: today.tomorrow().unwrap().to_string(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let acked = log
            .entries
            .iter()
            .any(|e| e.status == "acked" && e.channel == "replay");
        let pushed: u64 = traffic.days.iter().map(|d| d.pushed_count).sum();
        if acked && pushed == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "replay not logged as acked or not counted once (pushed {pushed}): {:?}\n{}",
            log.entries,
            platform.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    for phone in [office_phone, home_phone, away_phone] {
        phone.stop().await.unwrap();
    }
    // SIGTERM flushes each process's spans to the collector.
    platform.stop().await.unwrap();
    let services: BTreeSet<String> = collector
        .spans()
        .into_iter()
        .filter(|s| s.trace_id == trace_id)
        .map(|s| s.service)
        .collect();
    for service in [
        "pushmail-ingest",
        "pushmail-binding",
        "pushmail-dispatch",
        "pushmail-session",
    ] {
        assert!(
            services.contains(service),
            "no {service} span in trace {trace_id}; services seen: {services:?}"
        );
    }
}
