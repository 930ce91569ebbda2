//! The tenant portal in headless Chromium against a real gateway and
//! binding: sign in with the tenant's key, add an account, bind a number
//! with the code read from the SMS topic, see it verified, register a
//! phone (token shown once, reissued, revoked), make an app password for
//! a phone's own mail app (shown once, revoked), see the charts, add an
//! IMAP account with its submission server and edit both; a screenshot
//! is left in `test-artifacts/portal.png`.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use pushmail_integration_tests::browser::{Browser, artifacts_dir};
use pushmail_integration_tests::nodes::BindingNode;
use pushmail_integration_tests::topics::TenantTopics;
use pushmail_integration_tests::{edge, http, kafka_bus, msisdn, otp_code, unique};
use pushmail_proto::events::v1::{SmsOutbound, sms_outbound};
use pushmail_proto::topics::SMS_OUTBOUND;

fn visible(id: &str) -> String {
    format!("!document.getElementById('{id}').hidden")
}

#[tokio::test]
async fn a_tenant_admin_adds_an_account_and_binds_a_number_in_the_browser() {
    let mut binding = BindingNode::start().await.unwrap();
    let tenant = binding.tenant().await.unwrap();
    let gateway = edge::gateway(edge::gateway_config(binding.addr, binding.addr))
        .await
        .unwrap();
    edge::serving(gateway.addr).await;
    let bus = kafka_bus().await.unwrap();
    let mut sms = TenantTopics::on(&bus, &tenant.tenant_id, &[SMS_OUTBOUND.name()])
        .await
        .unwrap();

    let mut browser = Browser::launch().await.unwrap();
    browser
        .open(&format!("http://{}/", gateway.addr))
        .await
        .unwrap();
    browser.wait_for(&visible("sign-in-view")).await.unwrap();
    assert_eq!(browser.eval("location.pathname").await.unwrap(), "/portal");

    // A wrong key is refused on the page.
    browser.type_into("api-key", "pmk_wrong").await.unwrap();
    browser
        .click("document.getElementById('sign-in')")
        .await
        .unwrap();
    browser
        .wait_for("document.getElementById('status').textContent.length > 0")
        .await
        .unwrap();
    assert_eq!(browser.eval(&visible("tenant-view")).await.unwrap(), false);

    // Sign in; the key is not kept in the page or readable as a cookie.
    browser.type_into("api-key", &tenant.api_key).await.unwrap();
    browser
        .click("document.getElementById('sign-in')")
        .await
        .unwrap();
    browser.wait_for(&visible("tenant-view")).await.unwrap();
    assert_eq!(browser.eval("document.cookie").await.unwrap(), "");
    assert_eq!(
        browser
            .eval("document.getElementById('api-key').value")
            .await
            .unwrap(),
        ""
    );

    // Add an account; it is listed.
    let address = format!("{}@corp.example", unique("wang"));
    browser.type_into("new-address", &address).await.unwrap();
    browser
        .click("document.getElementById('add-account')")
        .await
        .unwrap();
    let row = format!(
        "[...document.querySelectorAll('#accounts tbody tr')].find(r => r.textContent.includes('{address}'))"
    );
    browser.wait_for(&format!("!!{row}")).await.unwrap();

    // Search finds it and only it.
    browser.type_into("search", "wang-").await.unwrap();
    browser
        .click("document.querySelector('#search-form button')")
        .await
        .unwrap();
    // The search's answer re-renders the rows: wait for it before clicking one.
    browser
        .wait_for("document.getElementById('accounts').dataset.query === 'wang-'")
        .await
        .unwrap();
    browser.wait_for(&format!("!!{row}")).await.unwrap();

    // Open it, bind a number, enter the code the number received.
    browser.click(&row).await.unwrap();
    browser.wait_for(&visible("account-view")).await.unwrap();
    let number = msisdn();
    browser.type_into("msisdn", &number).await.unwrap();
    browser
        .click("document.getElementById('bind')")
        .await
        .unwrap();
    browser.wait_for(&visible("verify-form")).await.unwrap();
    let code = loop {
        let message: SmsOutbound = sms.next(SMS_OUTBOUND).await.unwrap();
        if let (true, Some(sms_outbound::Body::Text(text))) =
            (message.msisdn == number, message.body)
        {
            break otp_code(&text).unwrap();
        }
    };
    browser.type_into("code", &code).await.unwrap();
    browser
        .click("document.getElementById('verify')")
        .await
        .unwrap();
    browser
        .wait_for(&format!(
            "[...document.querySelectorAll('#bindings tbody tr')].some(r => r.textContent.includes('{number}') && r.querySelector('.state').textContent === 'verified')"
        ))
        .await
        .unwrap();
    browser
        .wait_for("document.querySelectorAll('#charts svg.chart').length === 3")
        .await
        .unwrap();
    browser
        .wait_for(
            "document.querySelector('#deliveries tbody').textContent.includes('no deliveries yet')",
        )
        .await
        .unwrap();

    // A phone on the verified number: its token shown once, a fresh one
    // on request, then revoked (the operator confirms).
    browser.wait_for(&visible("register-form")).await.unwrap();
    browser
        .type_into("register-label", "desk phone")
        .await
        .unwrap();
    browser
        .click("document.getElementById('register')")
        .await
        .unwrap();
    browser.wait_for(&visible("new-device")).await.unwrap();
    let token_text = "document.getElementById('new-device-token').textContent";
    let first = browser.eval(token_text).await.unwrap();
    let first = first.as_str().unwrap().to_owned();
    assert!(first.starts_with("pmd1."), "{first}");
    let phone = "[...document.querySelectorAll('#bindings .device')].find(d => d.textContent.includes('desk phone'))";
    browser.wait_for(&format!("!!{phone}")).await.unwrap();
    browser
        .click(&format!(
            "[...{phone}.querySelectorAll('button')].find(b => b.textContent === 'New token')"
        ))
        .await
        .unwrap();
    browser
        .wait_for(&format!(
            "{token_text}.startsWith('pmd1.') && {token_text} !== '{first}'"
        ))
        .await
        .unwrap();
    browser.eval("window.confirm = () => true").await.unwrap();
    browser
        .click(&format!(
            "[...{phone}.querySelectorAll('button')].find(b => b.textContent === 'Revoke')"
        ))
        .await
        .unwrap();
    browser
        .wait_for("document.getElementById('status').textContent === 'Device revoked.'")
        .await
        .unwrap();
    browser.wait_for(&format!("!{phone}")).await.unwrap();

    // A phone's own mail app on the same number: its app password shown
    // once with the address to log in as, never in the list, which says
    // it has not logged in yet; the phone is a device of the number until
    // the password is revoked (the operator confirms).
    browser
        .wait_for(&visible("app-password-form"))
        .await
        .unwrap();
    assert_eq!(
        browser
            .eval("document.getElementById('app-password-number').value")
            .await
            .unwrap(),
        number.as_str()
    );
    browser
        .type_into("app-password-label", "iPhone 15")
        .await
        .unwrap();
    browser
        .click("document.getElementById('make-app-password')")
        .await
        .unwrap();
    let password_text = "document.getElementById('new-app-password-value').textContent";
    browser
        .wait_for(&format!(
            "/^[a-z2-9]{{4}}(-[a-z2-9]{{4}}){{3}}$/.test({password_text})"
        ))
        .await
        .unwrap();
    assert_eq!(
        browser.eval(&visible("new-app-password")).await.unwrap(),
        true
    );
    assert_eq!(
        browser
            .eval("document.getElementById('new-app-password-user').textContent")
            .await
            .unwrap(),
        address.as_str()
    );
    let app = "[...document.querySelectorAll('#app-passwords li')].find(p => p.textContent.includes('iPhone 15'))";
    browser
        .wait_for(&format!(
            "{app}?.textContent.startsWith('iPhone 15 ({number}): not used yet')"
        ))
        .await
        .unwrap();
    assert_eq!(
        browser
            .eval(&format!(
                "document.getElementById('app-passwords').textContent.includes({password_text})"
            ))
            .await
            .unwrap(),
        false
    );
    let app_phone = "[...document.querySelectorAll('#bindings .device')].find(d => d.textContent.includes('iPhone 15'))";
    browser.wait_for(&format!("!!{app_phone}")).await.unwrap();
    browser.eval("window.confirm = () => true").await.unwrap();
    browser
        .click(&format!(
            "[...{app}.querySelectorAll('button')].find(b => b.textContent === 'Revoke')"
        ))
        .await
        .unwrap();
    browser
        .wait_for("document.getElementById('status').textContent === 'App password revoked.'")
        .await
        .unwrap();
    browser
        .wait_for(&format!(
            "{app}.textContent.trim() === 'iPhone 15 ({number}): revoked' && !{app}.querySelector('button')"
        ))
        .await
        .unwrap();
    browser.wait_for(&format!("!{app_phone}")).await.unwrap();

    // A lost phone: a wipe ordered waits for the phone's next request.
    browser
        .type_into("app-password-label", "Pixel 8")
        .await
        .unwrap();
    browser
        .click("document.getElementById('make-app-password')")
        .await
        .unwrap();
    let lost = "[...document.querySelectorAll('#app-passwords li')].find(p => p.textContent.includes('Pixel 8'))";
    browser
        .wait_for(&format!("!!{lost}?.querySelector('button')"))
        .await
        .unwrap();
    browser
        .click(&format!(
            "[...{lost}.querySelectorAll('button')].find(b => b.textContent === 'Wipe phone')"
        ))
        .await
        .unwrap();
    browser
        .wait_for("document.getElementById('status').textContent.startsWith('Wipe ordered')")
        .await
        .unwrap();
    browser
        .wait_for(&format!(
            "{lost}.textContent.startsWith('Pixel 8 ({number}): not used yet; wipe (whole phone) waiting for the phone')"
        ))
        .await
        .unwrap();

    // Preferences: attachments off, saved through the API.
    browser
        .click("[...document.querySelectorAll('#bindings button')].find(b => b.textContent === 'Preferences')")
        .await
        .unwrap();
    browser
        .wait_for(&visible("preferences-view"))
        .await
        .unwrap();
    if browser
        .eval("document.getElementById('pref-attachments').checked")
        .await
        .unwrap()
        == true
    {
        browser
            .click("document.getElementById('pref-attachments')")
            .await
            .unwrap();
    }
    browser
        .click("document.getElementById('save-preferences')")
        .await
        .unwrap();
    browser
        .wait_for("document.getElementById('status').textContent === 'Preferences saved.'")
        .await
        .unwrap();

    // API keys: a new one shown once and listed by its prefix; the first
    // revoked with a grace still works until it ends.
    browser
        .type_into("key-description", "deploy bot")
        .await
        .unwrap();
    browser
        .click("document.getElementById('create-key')")
        .await
        .unwrap();
    browser.wait_for(&visible("new-key")).await.unwrap();
    let new_key = browser
        .eval("document.getElementById('new-key-value').textContent")
        .await
        .unwrap();
    let new_key = new_key.as_str().unwrap().to_owned();
    assert!(new_key.starts_with("pmk_"), "{new_key}");
    let listed = format!(
        "[...document.querySelectorAll('#keys tbody tr')].some(r => r.textContent.includes('{}'))",
        &new_key[..12]
    );
    browser.wait_for(&listed).await.unwrap();
    browser
        .eval("document.getElementById('revoke-grace').value = '86400'")
        .await
        .unwrap();
    browser
        .click("document.querySelector('#keys tbody tr:first-child button')")
        .await
        .unwrap();
    browser
        .wait_for("document.querySelector('#keys tbody tr:first-child .state').textContent.startsWith('revoked, works until')")
        .await
        .unwrap();

    // SMTP relay: a credential shown once, then the policy saved.
    browser.type_into("relay-description", "mx1").await.unwrap();
    browser
        .click("document.getElementById('create-relay')")
        .await
        .unwrap();
    browser.wait_for(&visible("new-relay")).await.unwrap();
    browser
        .wait_for("document.getElementById('new-relay-password').textContent.startsWith('pmr_')")
        .await
        .unwrap();
    browser
        .wait_for("document.querySelectorAll('#relay-credentials tbody tr').length === 1")
        .await
        .unwrap();
    browser
        .type_into("relay-sources", "203.0.113.0/24")
        .await
        .unwrap();
    browser
        .click("document.getElementById('save-relay-policy')")
        .await
        .unwrap();
    browser
        .wait_for("document.getElementById('status').textContent === 'Relay policy saved.'")
        .await
        .unwrap();

    // An IMAP account with its submission server (the username left blank:
    // the mailbox login), then both edited on the account's page; what was
    // saved is read back through the API.
    let imap = format!("{}@corp.example", unique("wang"));
    browser.type_into("new-address", &imap).await.unwrap();
    browser
        .eval("(() => { const k = document.getElementById('new-kind'); k.value = 'external_imap'; k.dispatchEvent(new Event('change')); })()")
        .await
        .unwrap();
    browser
        .wait_for(&visible("submission-fields"))
        .await
        .unwrap();
    browser
        .type_into("new-host", "imap.corp.example")
        .await
        .unwrap();
    browser.type_into("new-port", "993").await.unwrap();
    browser.type_into("new-username", &imap).await.unwrap();
    browser
        .type_into("new-password", "s3cret-pw")
        .await
        .unwrap();
    browser
        .type_into("new-submission-host", "smtp.corp.example")
        .await
        .unwrap();
    browser
        .type_into("new-submission-port", "587")
        .await
        .unwrap();
    browser
        .click("document.getElementById('add-account')")
        .await
        .unwrap();
    let imap_row = format!(
        "[...document.querySelectorAll('#accounts tbody tr')].find(r => r.textContent.includes('{imap}'))"
    );
    browser.wait_for(&format!("!!{imap_row}")).await.unwrap();
    let imap_id = browser
        .eval(&format!("{imap_row}.dataset.id"))
        .await
        .unwrap();
    let imap_id = imap_id.as_str().unwrap().to_owned();
    let account_path = format!("/api/v1/tenants/{}/accounts/{imap_id}", tenant.tenant_id);
    let bearer = format!("Bearer {}", tenant.api_key);
    let read_back = || async {
        let r = http::get(
            gateway.addr,
            &account_path,
            &[("Authorization", bearer.as_str())],
        )
        .await
        .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    };
    assert_eq!(
        read_back().await["submission"],
        serde_json::json!({"host": "smtp.corp.example", "port": 587, "tls": "starttls", "username": ""})
    );
    browser.click(&imap_row).await.unwrap();
    browser
        .wait_for(&format!(
            "{} && document.getElementById('account-title').textContent === '{imap}'",
            visible("server-form")
        ))
        .await
        .unwrap();
    assert_eq!(
        browser
            .eval("['host', 'port', 'tls', 'username'].map(f => document.getElementById('edit-submission-' + f).value)")
            .await
            .unwrap(),
        serde_json::json!(["smtp.corp.example", "587", "starttls", ""])
    );
    browser
        .type_into("edit-submission-host", "smtp2.corp.example")
        .await
        .unwrap();
    browser
        .type_into("edit-submission-port", "465")
        .await
        .unwrap();
    browser
        .eval("document.getElementById('edit-submission-tls').value = 'implicit'")
        .await
        .unwrap();
    browser
        .type_into("edit-submission-username", "wang")
        .await
        .unwrap();
    browser
        .click("document.getElementById('save-server')")
        .await
        .unwrap();
    browser
        .wait_for(
            "document.getElementById('status').textContent.startsWith('Mailbox server saved')",
        )
        .await
        .unwrap();
    let saved = read_back().await;
    assert_eq!(
        saved["submission"],
        serde_json::json!({"host": "smtp2.corp.example", "port": 465, "tls": "implicit", "username": "wang"})
    );
    assert_eq!(saved["server"]["host"], "imap.corp.example", "{saved}");
    // A blank host removes them.
    browser
        .eval("document.getElementById('status').textContent = ''")
        .await
        .unwrap();
    browser
        .eval("document.getElementById('edit-submission-host').value = ''")
        .await
        .unwrap();
    browser
        .click("document.getElementById('save-server')")
        .await
        .unwrap();
    browser
        .wait_for(
            "document.getElementById('status').textContent.startsWith('Mailbox server saved')",
        )
        .await
        .unwrap();
    assert_eq!(read_back().await["submission"], serde_json::Value::Null);

    let shot = artifacts_dir().join("portal.png");
    browser.screenshot(&shot).await.unwrap();
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{}",
        shot.display()
    );
    eprintln!("portal screenshot: {}", shot.display());

    browser.close().await;
    gateway.stop().await.unwrap();
    binding.stop().await.unwrap();
}
