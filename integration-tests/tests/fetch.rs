//! The device fetch API end to end: mail sent over SMTP (swaks) to ingest,
//! a device bound through binding (PostgreSQL, Redis, the broker), then
//! the phone's side over HTTP against the gateway and transcode: the
//! summary, the body, attachments and previews, a download cut off and
//! resumed, validators, other tenants' and accounts' devices refused, and
//! the bytes counted in the tenant's traffic statistics.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::time::Duration;

use image::GenericImageView as _;
use pushmail_integration_tests::documents::{self, Attached};
use pushmail_integration_tests::http;
use pushmail_integration_tests::nodes::{BindingNode, IngestNode, TenantEvents, ingest_config};
use pushmail_integration_tests::topics::TenantTopics;
use pushmail_integration_tests::{authed, edge, kafka_bus, unique};
use pushmail_proto::binding::v1 as pb;

struct Phone {
    token: String,
    tenant: pb::CreateTenantResponse,
    account: pb::Account,
}

async fn phone(binding: &mut BindingNode) -> Phone {
    let tenant = binding.tenant().await.unwrap();
    let address = format!("{}@corp.example", unique("user"));
    let account = binding.forwarded(&tenant, &address).await.unwrap();
    let bus = kafka_bus().await.unwrap();
    let mut watch = TenantTopics::sms(&bus, &tenant.tenant_id).await.unwrap();
    let (_, device) = binding
        .device(&tenant, &account, true, &mut watch)
        .await
        .unwrap();
    Phone {
        token: device.device_token,
        tenant,
        account,
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn a_phone_fetches_its_mail_resumes_downloads_and_sees_nothing_else() {
    let mut binding = BindingNode::start().await.unwrap();
    let alice = phone(&mut binding).await;
    let bob = phone(&mut binding).await;

    // The mail: an HTML body, a photo, and a 2 MB binary to download.
    let dir = tempfile::tempdir().unwrap();
    let photo = documents::imagemagick(
        dir.path(),
        &["-size", "1200x900", "gradient:yellow-navy"],
        "photo.jpg",
    );
    let big: Vec<u8> = (0..2_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let raw = documents::multipart(
        "Board pack",
        "<h1>Board pack</h1><p>Please read before Monday.</p><script>steal()</script>",
        &[
            Attached {
                content_type: "image/jpeg",
                file_name: "photo.jpg",
                bytes: &photo,
                content_id: None,
            },
            Attached {
                content_type: "application/octet-stream",
                file_name: "board pack 季度.bin",
                bytes: &big,
                content_id: None,
            },
        ],
    );
    let blobs = tempfile::tempdir().unwrap();
    let mut events = TenantEvents::new(&alice.tenant.tenant_id).await.unwrap();
    let ingest = IngestNode::on_test_broker(ingest_config(binding.addr, blobs.path()))
        .await
        .unwrap();
    pushmail_integration_tests::smtp::swaks(ingest.smtp, &alice.account.address, &raw)
        .await
        .unwrap();
    let event = events.next().await.unwrap();
    let transcode = edge::transcode(edge::transcode_config(blobs.path()))
        .await
        .unwrap();
    let mut config = edge::gateway_config(binding.addr, transcode.addr);
    config.fetch.targets_cache_ms = 0;
    let gateway = edge::gateway(config).await.unwrap();
    edge::serving(gateway.addr).await;
    let at = gateway.addr;
    let auth = bearer(&alice.token);
    let base = format!(
        "/v1/accounts/{}/messages/{}",
        alice.account.account_id, event.blob_ref
    );
    let parts: Vec<&str> = event
        .attachments
        .iter()
        .map(|a| a.part_id.as_str())
        .collect();
    assert_eq!(parts, ["2", "3"]);

    // The summary lists what the notification pointed at.
    let summary = http::get(at, &base, &[("Authorization", &auth)])
        .await
        .unwrap();
    assert_eq!(summary.status, 200, "{}", summary.text());
    let json = summary.json();
    assert_eq!(json["subject"], "Board pack");
    assert_eq!(json["from"]["address"], "boss@example.net");
    assert_eq!(json["html_body"], true);
    assert_eq!(json["body"], format!("{base}/body"));
    assert_eq!(json["attachments"][1]["name"], "board pack 季度.bin");
    assert_eq!(
        json["attachments"][0]["preview"],
        format!("{base}/attachments/2/preview")
    );

    // The body, sanitised, and as text for a phone that shows no HTML.
    let body = http::get(
        at,
        &format!("{base}/body?profile=smartphone"),
        &[("Authorization", &auth)],
    )
    .await
    .unwrap();
    assert_eq!(body.status, 200);
    assert_eq!(
        body.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(body.text().contains("Please read before Monday.") && !body.text().contains("steal"));
    let text = http::get(
        at,
        &format!("{base}/body?width=240&accept=text/plain"),
        &[("Authorization", &auth)],
    )
    .await
    .unwrap();
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; charset=utf-8")
    );

    // A preview for the screen; the token in the query works too.
    let preview = http::get(
        at,
        &format!(
            "{base}/attachments/2/preview?width=320&token={}",
            alice.token
        ),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(preview.status, 200, "{}", preview.text());
    assert_eq!(preview.header("content-type"), Some("image/jpeg"));
    assert_eq!(
        image::load_from_memory(&preview.body).unwrap().dimensions(),
        (320, 240)
    );

    // The original: cut off after 300 KB, resumed from there with If-Range.
    let url = format!("{base}/attachments/3");
    let cut = http::get_cut(at, &url, &[("Authorization", &auth)], 300_000)
        .await
        .unwrap();
    assert_eq!(cut.status, 200);
    assert_eq!(cut.header("content-length"), Some("2000000"));
    assert_eq!(cut.header("accept-ranges"), Some("bytes"));
    let disposition = cut.header("content-disposition").unwrap();
    assert!(
        disposition.contains("filename*=UTF-8''board%20pack%20%E5%AD%A3%E5%BA%A6.bin"),
        "{disposition}"
    );
    let etag = cut.header("etag").unwrap().to_owned();
    let have = cut.body.len();
    assert!(have >= 300_000 && have < big.len(), "{have}");
    let range = format!("bytes={have}-");
    let rest = http::get(
        at,
        &url,
        &[
            ("Authorization", &auth),
            ("Range", &range),
            ("If-Range", &etag),
        ],
    )
    .await
    .unwrap();
    assert_eq!(rest.status, 206);
    assert_eq!(
        rest.header("content-range").unwrap(),
        format!("bytes {have}-1999999/2000000")
    );
    let mut resumed = cut.body.clone();
    resumed.extend_from_slice(&rest.body);
    assert_eq!(
        sha(&resumed),
        sha(&big),
        "the resumed download is the original"
    );

    // Other ranges and validators.
    let suffix = http::get(
        at,
        &url,
        &[("Authorization", &auth), ("Range", "bytes=-100")],
    )
    .await
    .unwrap();
    assert_eq!(
        (suffix.status, suffix.body.as_slice()),
        (206, &big[big.len() - 100..])
    );
    let middle = http::get(
        at,
        &url,
        &[("Authorization", &auth), ("Range", "bytes=1000-1999")],
    )
    .await
    .unwrap();
    assert_eq!(
        (middle.status, middle.body.as_slice()),
        (206, &big[1000..2000])
    );
    let past = http::get(
        at,
        &url,
        &[("Authorization", &auth), ("Range", "bytes=2000000-")],
    )
    .await
    .unwrap();
    assert_eq!(past.status, 416);
    assert_eq!(past.header("content-range"), Some("bytes */2000000"));
    assert_eq!(past.json()["error"]["code"], "range_not_satisfiable");
    let stale = http::get(
        at,
        &url,
        &[
            ("Authorization", &auth),
            ("Range", "bytes=10-"),
            ("If-Range", "\"old\""),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        (stale.status, stale.body.len()),
        (200, big.len()),
        "a changed validator sends it all"
    );
    let cached = http::get(
        at,
        &url,
        &[("Authorization", &auth), ("If-None-Match", &etag)],
    )
    .await
    .unwrap();
    assert_eq!((cached.status, cached.body.len()), (304, 0));
    let ignored = http::get(
        at,
        &url,
        &[("Authorization", &auth), ("Range", "bytes=0-1,5-9")],
    )
    .await
    .unwrap();
    assert_eq!(
        (ignored.status, ignored.body.len()),
        (200, big.len()),
        "several ranges: the whole"
    );

    // Refusals: no token, a bad one, another tenant's phone, an unknown part,
    // another account's message, bad parameters.
    let code = |r: &http::Response| {
        r.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let none = http::get(at, &base, &[]).await.unwrap();
    assert_eq!(
        (none.status, code(&none).as_str()),
        (401, "unauthenticated")
    );
    let forged = http::get(at, &base, &[("Authorization", "Bearer pmd1.e30.AAAA")])
        .await
        .unwrap();
    assert_eq!(forged.status, 401);
    let bobs = bearer(&bob.token);
    for path in [
        base.clone(),
        format!("{base}/body"),
        url.clone(),
        format!("{base}/attachments/2/preview"),
    ] {
        let other = http::get(at, &path, &[("Authorization", &bobs)])
            .await
            .unwrap();
        assert_eq!(
            (other.status, code(&other).as_str()),
            (404, "not_found"),
            "{path}"
        );
    }
    let bobs_view = format!(
        "/v1/accounts/{}/messages/{}",
        bob.account.account_id, event.blob_ref
    );
    let not_his = http::get(at, &bobs_view, &[("Authorization", &bobs)])
        .await
        .unwrap();
    assert_eq!(
        not_his.status, 404,
        "a message never delivered to bob's account"
    );
    let unknown = http::get(
        at,
        &format!("{base}/attachments/9"),
        &[("Authorization", &auth)],
    )
    .await
    .unwrap();
    assert_eq!(unknown.status, 404);
    let bad = http::get(
        at,
        &format!("{base}/attachments/2/preview?rendition=video"),
        &[("Authorization", &auth)],
    )
    .await
    .unwrap();
    assert_eq!((bad.status, code(&bad).as_str()), (400, "bad_request"));
    let unknown_param = http::get(
        at,
        &format!("{base}?colour=red"),
        &[("Authorization", &auth)],
    )
    .await
    .unwrap();
    assert_eq!(unknown_param.status, 400);
    let bad_ref = http::get(
        at,
        &format!(
            "/v1/accounts/{}/messages/nonsense",
            alice.account.account_id
        ),
        &[("Authorization", &auth)],
    )
    .await
    .unwrap();
    assert_eq!(bad_ref.status, 400);

    // Attachments turned off in the device's preferences.
    binding
        .set_preferences(&alice.tenant, &alice.account, |p| p.attachments = false)
        .await
        .unwrap();
    let off = http::get(at, &url, &[("Authorization", &auth)])
        .await
        .unwrap();
    assert_eq!((off.status, code(&off).as_str()), (403, "forbidden"));
    let summary = http::get(at, &base, &[("Authorization", &auth)])
        .await
        .unwrap();
    assert_eq!(summary.json()["attachments"], serde_json::json!([]));

    // What the phone fetched is in the tenant's traffic statistics.
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date();
    let (from_day, to_day) = (
        today.yesterday().unwrap().to_string(),
        today.tomorrow().unwrap().to_string(),
    );
    let mut fetched = 0;
    for _ in 0..100 {
        let stats = binding
            .admin
            .get_traffic_stats(authed(
                &alice.tenant.api_key,
                pb::GetTrafficStatsRequest {
                    tenant_id: alice.tenant.tenant_id.clone(),
                    account_id: alice.account.account_id.clone(),
                    from_day: from_day.clone(),
                    to_day: to_day.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        fetched = stats.days.iter().map(|d| d.fetched_bytes).sum::<u64>();
        if fetched >= 3 * big.len() as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The cut download, its rest, the If-Range and multi-range answers in
    // full: at least three times the file.
    assert!(fetched >= 3 * big.len() as u64, "{fetched}");

    gateway.stop().await.unwrap();
    transcode.stop().await.unwrap();
    ingest.stop().await.unwrap();
    binding.stop().await.unwrap();
}

fn sha(bytes: &[u8]) -> String {
    pushmail_common::blob::BlobRef::of(bytes)
        .as_str()
        .to_owned()
}
