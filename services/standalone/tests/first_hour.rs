//! The first hour with `make run`, as the README tells it: the platform
//! and its demo start; the newcomer reads the portal address and the demo
//! tenant's key from the terminal, signs in (headless Chromium, real
//! clicks and typing), adds their own IMAP mailbox (a private Dovecot; the
//! password mistyped, then corrected in the portal), binds a number with
//! the code read from the portal's SMS outbox page (no SMS centre here),
//! registers a phone over REST, runs `pushmail device` with its token,
//! and a mail appended to the mailbox over IMAP reaches the phone (and is
//! in the phone's sync of the inbox through the mailbox service); with
//! the phone gone, the next mail's SMS wake-up (a WAP Push) is printed and
//! listed with its URL. A screenshot of the SMS outbox is left in
//! `test-artifacts/first-hour.png`.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

mod support;

use std::net::SocketAddr;
use std::process::{Command, Stdio};

use pushmail_integration_tests::browser::{Browser, artifacts_dir};
use pushmail_integration_tests::dovecot::Dovecot;
use pushmail_integration_tests::{http, msisdn, unique};
use serde_json::{Value, json};
use support::{lines, start, wait_for};

fn visible(id: &str) -> String {
    format!("!document.getElementById('{id}').hidden")
}

/// The text after `marker` on the first printed line that has it.
fn after<'a>(seen: &'a [String], marker: &str) -> &'a str {
    seen.iter()
        .find_map(|l| l.split_once(marker).map(|(_, rest)| rest.trim()))
        .unwrap_or_else(|| panic!("no line with {marker:?}: {seen:#?}"))
}

async fn click(browser: &mut Browser, id: &str) {
    browser
        .click(&format!("document.getElementById('{id}')"))
        .await
        .unwrap();
}

async fn status_is(browser: &mut Browser, text: &str) {
    browser
        .wait_for(&format!(
            "document.getElementById('status').textContent.startsWith({text:?})"
        ))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newcomer_binds_their_own_mailbox_and_number_and_their_phone_gets_the_mail() {
    // `make run`: the platform with its demo, then the guide.
    let mut platform = start(true);
    let rx = lines(&mut platform.child);
    let mut seen = Vec::new();
    wait_for(
        &rx,
        &mut seen,
        "pushmail device --server",
        &mut platform.child,
    );
    let portal = after(&seen, "Open the portal ").to_owned();
    let key = after(&seen, "sign in with the demo tenant's key: ").to_owned();
    let devices = after(&seen, "pushmail device --server ")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let gateway: SocketAddr = portal
        .strip_prefix("http://")
        .and_then(|rest| rest.strip_suffix("/portal"))
        .unwrap()
        .parse()
        .unwrap();

    // Their own mailbox, on this machine.
    let address = format!("{}@example.test", unique("newcomer"));
    let dovecot = Dovecot::start(&[address.as_str()]).await.unwrap();
    let user = dovecot.users[0].clone();

    let mut browser = Browser::launch().await.unwrap();
    browser.open(&portal).await.unwrap();
    browser.wait_for(&visible("sign-in-view")).await.unwrap();
    browser.type_into("api-key", &key).await.unwrap();
    click(&mut browser, "sign-in").await;
    browser.wait_for(&visible("tenant-view")).await.unwrap();
    browser.wait_for(&visible("open-sms")).await.unwrap();

    // Add the mailbox (the password mistyped), open it, correct it.
    browser.type_into("new-address", &address).await.unwrap();
    browser
        .eval("(() => { const k = document.getElementById('new-kind'); k.value = 'external_imap'; k.dispatchEvent(new Event('change')); })()")
        .await
        .unwrap();
    browser.wait_for(&visible("server-fields")).await.unwrap();
    browser.type_into("new-host", "127.0.0.1").await.unwrap();
    browser
        .type_into("new-port", &dovecot.imap.port().to_string())
        .await
        .unwrap();
    browser
        .eval("document.getElementById('new-tls').value = 'none'")
        .await
        .unwrap();
    browser
        .type_into("new-username", &user.address)
        .await
        .unwrap();
    browser.type_into("new-password", "mistyped").await.unwrap();
    click(&mut browser, "add-account").await;
    status_is(&mut browser, "Account added.").await;
    let row = format!(
        "[...document.querySelectorAll('#accounts tbody tr')].find(r => r.textContent.includes('{address}'))"
    );
    browser.wait_for(&format!("!!{row}")).await.unwrap();
    browser.click(&row).await.unwrap();
    browser.wait_for(&visible("account-view")).await.unwrap();
    browser.wait_for(&visible("server-form")).await.unwrap();
    browser
        .type_into("edit-password", &user.password)
        .await
        .unwrap();
    click(&mut browser, "save-server").await;
    status_is(&mut browser, "Mailbox server saved").await;

    // Bind a number; the code is on the SMS outbox page.
    let number = msisdn();
    browser.type_into("msisdn", &number).await.unwrap();
    click(&mut browser, "bind").await;
    browser.wait_for(&visible("verify-form")).await.unwrap();
    browser.wait_for(&visible("verify-sms")).await.unwrap();
    click(&mut browser, "verify-sms").await;
    browser.wait_for(&visible("sms-view")).await.unwrap();
    let code_row = format!(
        "[...document.querySelectorAll('#sms tbody tr')].find(r => r.dataset.purpose === 'otp' && r.querySelector('.msisdn').textContent === '{number}')"
    );
    // The page lists the SMS as it leaves (and refreshes itself meanwhile).
    browser.wait_for(&format!("!!{code_row}")).await.unwrap();
    let text = browser
        .eval(&format!("{code_row}.querySelector('.text').textContent"))
        .await
        .unwrap();
    let code = pushmail_integration_tests::otp_code(text.as_str().unwrap()).unwrap();
    let shot = artifacts_dir().join("first-hour.png");
    browser.screenshot(&shot).await.unwrap();
    click(&mut browser, "open-accounts").await;
    browser.wait_for(&visible("account-view")).await.unwrap();
    browser.type_into("code", &code).await.unwrap();
    click(&mut browser, "verify").await;
    browser
        .wait_for(&format!(
            "[...document.querySelectorAll('#bindings tbody tr')].some(r => r.textContent.includes('{number}') && r.querySelector('.state').textContent === 'verified')"
        ))
        .await
        .unwrap();
    browser.close().await;
    // The terminal printed the same SMS.
    wait_for(
        &rx,
        &mut seen,
        &format!("sms → {number} [verification code]"),
        &mut platform.child,
    );

    // A phone on the number, registered over REST with the same key.
    let auth = format!("Bearer {key}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let me = http::call(gateway, "GET", "/api/v1/me", &headers[..1], b"")
        .await
        .unwrap()
        .json();
    let tenant = me["tenant_id"].as_str().unwrap().to_owned();
    let body = json!({"msisdn": number, "label": "my phone"}).to_string();
    let registered = http::call(
        gateway,
        "POST",
        &format!("/api/v1/tenants/{tenant}/devices"),
        &headers,
        body.as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(registered.status, 201, "{}", registered.text());
    let registered: Value = registered.json();
    let token = registered["token"].as_str().unwrap().to_owned();

    // The phone, as the guide says to run it.
    let mut phone = Command::new(env!("CARGO_BIN_EXE_pushmail"))
        .args(["device", "--server", &devices, "--token", &token, "--fetch"])
        .env_remove("PUSHMAIL_DEVICE_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let phone_lines = lines(&mut phone);
    let mut printed = Vec::new();
    wait_for(&phone_lines, &mut printed, "device: connected", &mut phone);

    // Ingest watches the corrected mailbox; then a mail is saved into it.
    dovecot.wait_idle(&user.address).await.unwrap();
    let subject = unique("first hour");
    let mail = format!(
        "From: Friend <friend@example.net>\r\nTo: {address}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@example.net>\r\n\r\nHello from the first hour.\r\n"
    );
    dovecot.append(&user, mail.as_bytes()).await.unwrap();
    wait_for(
        &phone_lines,
        &mut printed,
        &format!("subject: {subject}"),
        &mut phone,
    );
    wait_for(&phone_lines, &mut printed, "fetched summary", &mut phone);
    assert!(
        printed.iter().any(|l| l.contains("friend@example.net")),
        "{printed:#?}"
    );

    // The same mail in the phone's view of the mailbox: the gateway's
    // device mailbox API over the mailbox service, in this process too.
    let accounts = http::call(
        gateway,
        "GET",
        &format!("/api/v1/tenants/{tenant}/accounts"),
        &headers[..1],
        b"",
    )
    .await
    .unwrap()
    .json();
    let account = accounts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["address"] == address.as_str())
        .unwrap_or_else(|| panic!("{address} in {accounts}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let device = format!("Bearer {token}");
    let mailbox = format!("/v1/accounts/{account}/mailbox");
    let folders = http::call(
        gateway,
        "GET",
        &format!("{mailbox}/folders"),
        &[("Authorization", device.as_str())],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(folders.status, 200, "{}", folders.text());
    let folders = folders.json();
    let inbox = folders["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["role"] == "inbox")
        .unwrap_or_else(|| panic!("an inbox in {folders}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let changes = http::call(
        gateway,
        "GET",
        &format!("{mailbox}/folders/{inbox}/changes"),
        &[("Authorization", device.as_str())],
        b"",
    )
    .await
    .unwrap()
    .json();
    assert_eq!(
        changes["added"][0]["subject"],
        subject.as_str(),
        "{changes}"
    );

    // The phone goes away; the next mail wakes it by SMS: a WAP Push,
    // printed and kept in the outbox with the URL it carries.
    let _ = Command::new("kill")
        .args(["-INT", &phone.id().to_string()])
        .status();
    assert!(phone.wait().unwrap().success());
    let later = unique("while away");
    let mail = format!(
        "From: Friend <friend@example.net>\r\nTo: {address}\r\nSubject: {later}\r\nMessage-ID: <{later}@example.net>\r\n\r\nAre you there?\r\n"
    );
    dovecot.append(&user, mail.as_bytes()).await.unwrap();
    let wake_up = format!("sms → {number} [wake-up, WAP Push] ");
    wait_for(&rx, &mut seen, &wake_up, &mut platform.child);
    let printed_wake_up = after(&seen, &wake_up).to_owned();
    assert!(
        printed_wake_up.contains(&format!("→ http://{gateway}/")),
        "{printed_wake_up}"
    );
    // The phone hears of the wake-up as it is sent; the outbox page keeps
    // it once binding has read it off the bus, a moment later.
    let mut outbox = Value::Null;
    let kept = tokio::time::timeout(std::time::Duration::from_secs(15), async {
        loop {
            outbox = http::call(
                gateway,
                "GET",
                &format!("/api/v1/tenants/{tenant}/sms"),
                &headers[..1],
                b"",
            )
            .await
            .unwrap()
            .json();
            let found = outbox["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["purpose"] == "wake_up" && m["msisdn"] == number.as_str());
            if let Some(kept) = found {
                break kept.clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the wake-up never reached the outbox page: {outbox}"));
    assert_eq!(kept["kind"], "wap_push", "{kept}");
    assert!(
        kept["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("http://{gateway}/")),
        "{kept}"
    );

    let _ = Command::new("kill")
        .args(["-INT", &platform.child.id().to_string()])
        .status();
    let exit = platform.child.wait().unwrap();
    assert!(exit.success(), "clean exit, got {exit}");
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{}", shot.display());
    eprintln!("first hour screenshot: {}", shot.display());
}
