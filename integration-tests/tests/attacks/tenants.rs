//! Attacks of one tenant on another and on the platform's SMS budget:
//! taking an address, attaching a device to someone else's number,
//! flooding verification codes, guessing codes across resends, reaching
//! internal networks through a mailbox host; and API key rotation.

use std::time::Duration;

use pushmail_common::service_identity::Service;
use pushmail_integration_tests::http::{self, Response};
use pushmail_integration_tests::{authed, credential, msisdn, unique};
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::binding::v1::binding_service_client::BindingServiceClient;
use pushmail_proto::events::v1::SmsOutbound;
use pushmail_proto::topics::SMS_OUTBOUND;
use serde_json::json;
use tonic::Code;

use super::Target;

/// A REST call to the gateway with `key`.
async fn rest(
    at: std::net::SocketAddr,
    key: &str,
    method: &str,
    path: &str,
    body: serde_json::Value,
) -> Response {
    let auth = format!("Bearer {key}");
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let mut headers = vec![("Authorization", auth.as_str())];
    if !body.is_empty() {
        headers.push(("Content-Type", "application/json"));
    }
    http::call(at, method, path, &headers, body.as_bytes())
        .await
        .unwrap()
}

fn forwarded(
    tenant: &pb::CreateTenantResponse,
    address: &str,
) -> tonic::Request<pb::CreateAccountRequest> {
    authed(
        &tenant.api_key,
        pb::CreateAccountRequest {
            tenant_id: tenant.tenant_id.clone(),
            address: address.to_owned(),
            kind: pb::AccountKind::EnterpriseForwarded.into(),
            ..Default::default()
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_cannot_take_an_address_or_disturb_its_delivery() {
    let mut target = Target::start().await;
    let api = &mut target.platform.api;
    let mallory = api.tenant().await.unwrap();
    let taken = api
        .admin
        .create_account(forwarded(&mallory, &target.address))
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists, "{taken:?}");
    // Another kind at the same address is Mallory's to have, and routes nothing.
    api.account(&mallory, &target.address, pb::AccountKind::Webhook, None)
        .await
        .unwrap();
    let eve = api.tenant().await.unwrap();
    let imap = pb::ServerSettings {
        host: "imap.eve.example".to_owned(),
        port: 993,
        tls: pb::TlsMode::Implicit.into(),
        username: "eve".to_owned(),
    };
    api.account(
        &eve,
        &target.address.to_uppercase(),
        pb::AccountKind::ExternalImap,
        Some((imap, "pw".to_owned())),
    )
    .await
    .unwrap();
    let mine = api
        .admin
        .list_accounts(authed(&mallory.api_key, pb::ListAccountsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(
        mine.accounts
            .iter()
            .all(|a| a.kind() != pb::AccountKind::EnterpriseForwarded),
        "Mallory holds no forwarded route: {mine:?}"
    );
    target.still_serves().await;
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_cannot_attach_to_another_tenants_or_an_unverified_number() {
    let mut target = Target::start().await;
    let victim = target.device.device.clone().unwrap().msisdn;
    let api = &mut target.platform.api;
    let mallory = api.tenant().await.unwrap();
    for number in [victim.clone(), msisdn()] {
        let refused = api
            .admin
            .register_device(authed(
                &mallory.api_key,
                pb::RegisterDeviceRequest {
                    tenant_id: mallory.tenant_id.clone(),
                    msisdn: number,
                    label: "mallory's phone".to_owned(),
                    has_push_client: true,
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
        assert!(
            refused.message().contains("no verified binding"),
            "{refused:?}"
        );
    }
    target.still_serves().await;
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_code_floods_are_cut_off_with_retry_after() {
    let mut target = Target::start().await;
    let gateway = target.platform.gateway_http;
    let api = &mut target.platform.api;
    let mallory = api
        .tenant_with(|t| {
            t.codes_per_day = 3;
            t.sms_per_day = 1;
        })
        .await
        .unwrap();
    let account = api
        .account(
            &mallory,
            &format!("{}@mallory.example", unique("flood")),
            pb::AccountKind::Webhook,
            None,
        )
        .await
        .unwrap();
    let bindings = format!(
        "/api/v1/tenants/{}/accounts/{}/bindings",
        mallory.tenant_id, account.account_id
    );

    // Forty POSTs to one number: one code, then 429 with Retry-After.
    let victim = msisdn();
    let mut statuses = Vec::new();
    for _ in 0..40 {
        let r = rest(
            gateway,
            &mallory.api_key,
            "POST",
            &bindings,
            json!({"msisdn": victim}),
        )
        .await;
        if r.status == 429 {
            let wait: u64 = r
                .header("retry-after")
                .expect("Retry-After")
                .parse()
                .unwrap();
            assert!(
                (1..=5).contains(&wait),
                "the platform's 5 s cooldown: {wait}"
            );
        }
        statuses.push(r.status);
    }
    assert_eq!(statuses[0], 201);
    assert!(statuses[1..].iter().all(|s| *s == 429), "{statuses:?}");

    // What reached the SMS topic: Mallory's codes to the number, counted up
    // to a marker code another tenant sends it afterwards (same key, same
    // partition: everything before it has arrived).
    let bus = pushmail_integration_tests::kafka_bus().await.unwrap();
    let mut topic = bus
        .subscribe(pushmail_common::bus::SubscribeOptions {
            group: unique("flood-count"),
            topics: vec![SMS_OUTBOUND.name().to_owned()],
        })
        .await
        .unwrap();
    let marker = api.tenant().await.unwrap();
    let marker_account = api
        .account(
            &marker,
            &format!("{}@marker.example", unique("m")),
            pb::AccountKind::Webhook,
            None,
        )
        .await
        .unwrap();
    api.admin
        .start_binding(authed(
            &marker.api_key,
            pb::StartBindingRequest {
                tenant_id: marker.tenant_id.clone(),
                account_id: marker_account.account_id,
                msisdn: victim.clone(),
            },
        ))
        .await
        .unwrap();
    let tenant_of = |r: &pushmail_common::bus::InboundRecord| {
        r.headers
            .get(pushmail_common::bus::header::TENANT_ID)
            .cloned()
            .unwrap_or_default()
    };
    let mut sent_by_mallory = 0;
    loop {
        let record = tokio::time::timeout(Duration::from_secs(60), topic.next())
            .await
            .expect("the marker within a minute")
            .unwrap();
        let sms: SmsOutbound = pushmail_common::bus::decode(SMS_OUTBOUND, &record).unwrap();
        if sms.msisdn != victim {
            continue;
        }
        if tenant_of(&record) == marker.tenant_id {
            break;
        }
        if tenant_of(&record) == mallory.tenant_id {
            sent_by_mallory += 1;
        }
    }
    assert_eq!(sent_by_mallory, 1, "one SMS for forty requests");

    // Many numbers: the tenant's own code budget (3 a day) ends the flood.
    let mut sent = 1;
    let mut limited = None;
    for _ in 0..10 {
        let r = rest(
            gateway,
            &mallory.api_key,
            "POST",
            &bindings,
            json!({"msisdn": msisdn()}),
        )
        .await;
        match r.status {
            201 => sent += 1,
            429 => {
                limited = Some(r);
                break;
            }
            other => panic!("{other}: {}", r.text()),
        }
    }
    assert_eq!(sent, 3);
    let limited = limited.expect("the budget ends the flood");
    assert!(
        limited.text().contains("codes_per_day"),
        "{}",
        limited.text()
    );
    let wait: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&wait));
    target.still_serves().await;
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_survive_a_resend_and_spent_sms_quota_leaves_verification_working() {
    let mut target = Target::start().await;
    let bus = pushmail_integration_tests::kafka_bus().await.unwrap();
    let api = &mut target.platform.api;
    // A tenant whose notification SMS for the day are spent.
    let tenant = api.tenant_with(|t| t.sms_per_day = 1).await.unwrap();
    let mut sms = pushmail_integration_tests::topics::TenantTopics::on(
        &bus,
        &tenant.tenant_id,
        &[SMS_OUTBOUND.name()],
    )
    .await
    .unwrap();
    let account = api
        .forwarded(&tenant, &format!("{}@corp.example", unique("g")))
        .await
        .unwrap();
    let mut internal =
        BindingServiceClient::connect(format!("http://{}", target.platform.grpc.binding))
            .await
            .unwrap();
    let charge = || {
        authed(
            &credential(Service::Dispatch),
            pb::ChargeSmsRequest {
                tenant_id: tenant.tenant_id.clone(),
                account_id: account.account_id.clone(),
            },
        )
    };
    internal.charge_sms(charge()).await.unwrap();
    assert_eq!(
        internal.charge_sms(charge()).await.unwrap_err().code(),
        Code::ResourceExhausted
    );

    // Guessing: four wrong answers, a resend, one more: the budget (five a
    // day) is spent, and the resent code no longer verifies.
    let number = msisdn();
    let start = pb::StartBindingRequest {
        tenant_id: tenant.tenant_id.clone(),
        account_id: account.account_id.clone(),
        msisdn: number.clone(),
    };
    let pending = api
        .admin
        .start_binding(authed(&tenant.api_key, start.clone()))
        .await
        .unwrap()
        .into_inner();
    let code_for = async |sms: &mut pushmail_integration_tests::topics::TenantTopics| loop {
        let m: SmsOutbound = sms.next(SMS_OUTBOUND).await.unwrap();
        if let (true, Some(pushmail_proto::events::v1::sms_outbound::Body::Text(text))) =
            (m.msisdn == number, m.body)
        {
            break pushmail_integration_tests::otp_code(&text).unwrap();
        }
    };
    let first = code_for(&mut sms).await;
    let not = |code: &str| if code == "000000" { "111111" } else { "000000" }.to_owned();
    let verify = |code: String| {
        authed(
            &tenant.api_key,
            pb::VerifyBindingRequest {
                tenant_id: tenant.tenant_id.clone(),
                binding_id: pending.binding_id.clone(),
                code,
            },
        )
    };
    for _ in 0..4 {
        let wrong = api
            .admin
            .verify_binding(verify(not(&first)))
            .await
            .unwrap_err();
        assert_eq!(wrong.code(), Code::InvalidArgument, "{wrong:?}");
    }
    // The resend waits out the platform's cooldown, as its Retry-After says.
    loop {
        match api
            .admin
            .start_binding(authed(&tenant.api_key, start.clone()))
            .await
        {
            Ok(_) => break,
            Err(status) if status.code() == Code::ResourceExhausted => {
                let wait: u64 = status
                    .metadata()
                    .get("retry-after")
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
            Err(status) => panic!("{status:?}"),
        }
    }
    let second = code_for(&mut sms).await;
    let spent = api
        .admin
        .verify_binding(verify(not(&second)))
        .await
        .unwrap_err();
    assert_eq!(spent.code(), Code::ResourceExhausted, "{spent:?}");
    let right = api.admin.verify_binding(verify(second)).await.unwrap_err();
    assert!(
        right.message().contains("too many wrong codes"),
        "{right:?}"
    );

    // Another number verifies, notification quota spent or not.
    let (_, device) = api.device(&tenant, &account, true, &mut sms).await.unwrap();
    assert!(device.device.is_some());
    target.still_serves().await;
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_works_through_its_grace_and_a_revoked_one_stops_at_once() {
    let mut target = Target::start().await;
    let gateway = target.platform.gateway_http;
    let old = target.tenant.api_key.clone();
    let t = format!("/api/v1/tenants/{}", target.tenant.tenant_id);
    let made = rest(
        gateway,
        &old,
        "POST",
        &format!("{t}/keys"),
        json!({"description": "rotated"}),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.text());
    let new = made.json()["api_key"].as_str().unwrap().to_owned();
    let keys = rest(
        gateway,
        &new,
        "GET",
        &format!("{t}/keys"),
        serde_json::Value::Null,
    )
    .await;
    let old_id = keys.json()["items"][0]["id"].as_str().unwrap().to_owned();
    let revoked = rest(
        gateway,
        &new,
        "POST",
        &format!("{t}/keys/{old_id}/revoke"),
        json!({"grace_seconds": 2}),
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    let me = async |key: String| {
        rest(gateway, &key, "GET", "/api/v1/me", serde_json::Value::Null)
            .await
            .status
    };
    assert_eq!(me(old.clone()).await, 200, "within the grace");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while me(old.clone()).await == 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the old key outlived its grace"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(me(old.clone()).await, 401, "refused after the grace");
    // A leaked key revoked with no grace stops at once.
    let leaked = rest(gateway, &new, "POST", &format!("{t}/keys"), json!({}))
        .await
        .json();
    let leaked_key = leaked["api_key"].as_str().unwrap().to_owned();
    assert_eq!(me(leaked_key.clone()).await, 200);
    let gone = rest(
        gateway,
        &new,
        "POST",
        &format!("{t}/keys/{}/revoke", leaked["id"].as_str().unwrap()),
        serde_json::Value::Null,
    )
    .await;
    assert_eq!(gone.status, 200, "{}", gone.text());
    assert_eq!(me(leaked_key).await, 401, "refused at once");
    target.still_serves().await;
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_hosts_on_internal_networks_are_refused() {
    let mut target = Target::start().await;
    let api = &mut target.platform.api;
    let mallory = api.tenant().await.unwrap();
    for host in [
        "169.254.169.254",
        "2852039166",
        "100.100.100.200",
        "10.0.0.1",
        "192.168.1.1",
        "172.16.0.1",
        "0.0.0.0",
        "fd00:ec2::254",
        "::ffff:169.254.169.254",
    ] {
        let server = pb::ServerSettings {
            host: host.to_owned(),
            port: 80,
            tls: pb::TlsMode::None.into(),
            username: "x".to_owned(),
        };
        let refused = api
            .account(
                &mallory,
                &format!("{}@mallory.example", unique("ssrf")),
                pb::AccountKind::ExternalImap,
                Some((server, "pw".to_owned())),
            )
            .await
            .unwrap_err();
        let status = refused.downcast_ref::<tonic::Status>().expect("a status");
        assert_eq!(status.code(), Code::InvalidArgument, "{host}: {status:?}");
        assert!(status.message().starts_with("server.host: "), "{status:?}");
    }
    let listed = api
        .admin
        .list_accounts(authed(&mallory.api_key, pb::ListAccountsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.accounts.is_empty(), "nothing created");
    target.still_serves().await;
    target.stop().await;
}
