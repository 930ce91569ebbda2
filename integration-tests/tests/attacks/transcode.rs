//! Hostile attachments and bodies, fetched as a phone fetches them: mailed
//! to the honest account through its own relay (anyone may send it such a
//! mail), then every preview and the body asked of the gateway with the
//! device's token. Each answer is `422 cannot_convert` within a couple of
//! seconds; afterwards the platform still serves a normal mail, and the
//! hostile previews asked all at once do not stop it either.

use std::time::{Duration, Instant};

use pushmail_integration_tests::documents::{self, Attached};
use pushmail_integration_tests::{hostile, unique};

use crate::Target;

/// Far under the gateway's 5 s upstream deadline: the bounds answer at
/// once, the worker limits within the job timeout (4 s).
const QUICKLY: Duration = Duration::from_secs(3);

/// Mails `html` with `attachments` to the honest account; the URL of the
/// message the phone is told about.
async fn mail(target: &mut Target, html: &str, attachments: &[Attached<'_>]) -> String {
    let subject = unique("hostile");
    let raw = documents::multipart(&subject, html, attachments);
    pushmail_integration_tests::smtp::swaks_with(
        target.platform.smtp,
        &target.address,
        &raw,
        &["--local-interface", "127.0.0.2"],
    )
    .await
    .unwrap_or_else(|e| panic!("the honest relay was refused: {e:#}"));
    let pushed = target
        .phone
        .notification_within(Duration::from_secs(60))
        .await
        .unwrap_or_else(|| panic!("no push\n{}", target.platform.logs()));
    assert_eq!(pushed.subject.as_deref(), Some(subject.as_str()));
    pushed.url.expect("a fetch URL")
}

/// Asks `url` as the phone; asserts `422 cannot_convert`, quickly.
async fn refused(target: &Target, what: &str, url: &str) {
    let started = Instant::now();
    let fetched = pushmail_device::fetch::get(url, &target.device.device_token)
        .await
        .unwrap();
    let took = started.elapsed();
    let body = String::from_utf8_lossy(&fetched.body);
    assert_eq!(
        fetched.status,
        422,
        "{what}: {body}\n{}",
        target.platform.logs()
    );
    assert!(body.contains("cannot_convert"), "{what}: {body}");
    assert!(took < QUICKLY, "{what}: answered in {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_files_are_422_quickly_and_the_platform_serves_on() {
    let mut target = Target::start().await;
    let dir = tempfile::tempdir().unwrap();
    let files = hostile::attachments(dir.path());
    let attached: Vec<_> = files
        .iter()
        .map(|f| Attached {
            content_type: f.content_type,
            file_name: f.file_name,
            bytes: &f.bytes,
            content_id: None,
        })
        .collect();
    // The body is 30,000 levels deep to an HTML5 parser.
    let url = mail(&mut target, &hostile::nested_divs(), &attached).await;

    // The summary (its MIME parsed in a worker) still lists every part.
    let summary = pushmail_device::fetch::get(&url, &target.device.device_token)
        .await
        .unwrap();
    assert_eq!(
        summary.status,
        200,
        "{}",
        String::from_utf8_lossy(&summary.body)
    );
    let summary: serde_json::Value = serde_json::from_slice(&summary.body).unwrap();
    let parts: Vec<String> = summary["attachments"]
        .as_array()
        .expect("attachments listed")
        .iter()
        .map(|a| a["part"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(parts.len(), files.len(), "{summary}");

    refused(&target, "30,000 <div/> body", &format!("{url}/body")).await;
    for (file, part) in files.iter().zip(&parts) {
        let preview = format!("{url}/attachments/{part}/preview");
        refused(&target, file.name, &preview).await;
    }
    target.still_serves().await;

    // All of them at once, for another profile (failures are not cached:
    // each is converted again): every one refused or, when every worker
    // is taken, told to come back (503 busy); nothing hangs, nothing is
    // a 5xx of a dead service, and a normal mail goes through after.
    let started = Instant::now();
    let asks: Vec<_> = parts
        .iter()
        .map(|part| format!("{url}/attachments/{part}/preview?profile=tablet"))
        .chain([format!("{url}/body?profile=tablet")])
        .map(|preview| {
            let token = target.device.device_token.clone();
            tokio::spawn(async move {
                pushmail_device::fetch::get(&preview, &token)
                    .await
                    .map(|f| (preview, f.status))
            })
        })
        .collect();
    for ask in asks {
        let (preview, status) = ask.await.unwrap().unwrap();
        assert!(matches!(status, 422 | 503), "{preview}: {status}");
    }
    assert!(started.elapsed() < 2 * QUICKLY, "{:?}", started.elapsed());
    target.still_serves().await;
    target.stop().await;
}
