//! The attack suite ([1/10]): the platform as separate processes on the
//! real broker, PostgreSQL and Redis, attacked as a hostile client would,
//! each attack asserting the safe answer, then a normal mail end to end
//! (SMTP in, pushed to the phone, fetched from the gateway) to show the
//! platform still serves everyone else. `docs/security.md` maps every
//! attack here to the defence it checks.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

mod credentials;
mod inbound;
mod listeners;
mod tenants;
mod transcode;

use std::time::Duration;

use pushmail_integration_tests::device::SimulatedPhone;
use pushmail_integration_tests::platform::{Binaries, ProcessPlatform, Wiring};
use pushmail_integration_tests::topics::TenantTopics;
use pushmail_integration_tests::{kafka_bus, kafka_config, unique};
use pushmail_proto::binding::v1 as pb;

fn binaries() -> Binaries {
    pushmail_integration_tests::binaries!()
}

/// Where the honest tenant's mail server connects from (loopback has the
/// whole 127/8; attackers connect from 127.0.0.1).
const HONEST_RELAY: &str = "127.0.0.2/32";

/// The platform under attack (ingest requiring relays to prove their
/// tenant, as in production), with one honest tenant whose forwarded
/// account has a connected phone.
struct Target {
    platform: ProcessPlatform,
    tenant: pb::CreateTenantResponse,
    address: String,
    account: pb::Account,
    device: pb::RegisterDeviceResponse,
    phone: SimulatedPhone,
}

impl Target {
    async fn start() -> Self {
        Self::start_with(false).await
    }

    /// With the listener bounds of `platform::tight`: deadlines a test can
    /// wait out, caps a few hundred sockets reach.
    async fn start_tight() -> Self {
        Self::start_with(true).await
    }

    async fn start_with(tight_listeners: bool) -> Self {
        let mut platform = ProcessPlatform::start(
            &binaries(),
            &Wiring {
                kafka: kafka_config(),
                otlp: None,
                coalesce_ms: 0,
                require_auth: true,
                tight_listeners,
                redis_url: None,
            },
        )
        .await
        .unwrap();
        let bus = kafka_bus().await.unwrap();
        let api = &mut platform.api;
        let tenant = api.tenant().await.unwrap();
        let mut watch = TenantTopics::sms(&bus, &tenant.tenant_id).await.unwrap();
        let address = format!("{}@corp.example", unique("honest"));
        let account = api.forwarded(&tenant, &address).await.unwrap();
        let (_, device) = api
            .device(&tenant, &account, true, &mut watch)
            .await
            .unwrap();
        // The honest tenant's mail server: the only source its policy allows.
        api.relay_policy(&tenant, &[HONEST_RELAY], &[])
            .await
            .unwrap();
        let mut phone = SimulatedPhone::start(platform.devices, &device.device_token);
        phone.connected().await.unwrap();
        Self {
            platform,
            tenant,
            address,
            account,
            device,
            phone,
        }
    }

    /// A normal mail still goes all the way: accepted over SMTP, pushed to
    /// the phone, its summary fetched from the gateway.
    async fn still_serves(&mut self) {
        let subject = unique("still serving");
        let raw = format!(
            "From: Boss <boss@example.net>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\
             Message-ID: <{id}@example.net>\r\nDate: Fri, 27 Nov 2026 08:00:00 +0000\r\n\r\n\
             Business as usual.\r\n",
            to = self.address,
            id = unique("m"),
        );
        pushmail_integration_tests::smtp::swaks_with(
            self.platform.smtp,
            &self.address,
            raw.as_bytes(),
            &["--local-interface", "127.0.0.2"],
        )
        .await
        .unwrap_or_else(|e| {
            panic!(
                "SMTP refused a normal mail: {e:#}\n{}",
                self.platform.logs()
            )
        });
        let pushed = self
            .phone
            .notification_within(Duration::from_secs(60))
            .await
            .unwrap_or_else(|| panic!("no push for a normal mail\n{}", self.platform.logs()));
        assert_eq!(pushed.subject.as_deref(), Some(subject.as_str()));
        let url = pushed.url.clone().expect("a fetch URL");
        let fetched = pushmail_device::fetch::get(&url, &self.device.device_token)
            .await
            .unwrap();
        assert_eq!(
            fetched.status,
            200,
            "{}\n{}",
            String::from_utf8_lossy(&fetched.body),
            self.platform.logs()
        );
    }

    /// Sends the honest account a mail with `content` attached as `name`
    /// (from its relay), waits for the push and returns the attachment's
    /// fetch URL (absolute, on the gateway).
    async fn attachment_url(&mut self, name: &str, content: &[u8]) -> String {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(content);
        let lines: Vec<&str> = encoded
            .as_bytes()
            .chunks(76)
            .map(|line| std::str::from_utf8(line).unwrap())
            .collect();
        let raw = format!(
            "From: Boss <boss@example.net>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\
             Message-ID: <{id}@example.net>\r\nDate: Fri, 27 Nov 2026 08:00:00 +0000\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n\
             --b\r\nContent-Type: application/octet-stream; name=\"{name}\"\r\n\
             Content-Disposition: attachment; filename=\"{name}\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{body}\r\n--b--\r\n",
            to = self.address,
            subject = unique("attached"),
            id = unique("m"),
            body = lines.join("\r\n"),
        );
        pushmail_integration_tests::smtp::swaks_with(
            self.platform.smtp,
            &self.address,
            raw.as_bytes(),
            &["--local-interface", "127.0.0.2"],
        )
        .await
        .unwrap();
        let pushed = self
            .phone
            .notification_within(Duration::from_secs(60))
            .await
            .unwrap_or_else(|| panic!("no push\n{}", self.platform.logs()));
        let url = pushed.url.clone().expect("a fetch URL");
        let summary = pushmail_device::fetch::get(&url, &self.device.device_token)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&summary.body).unwrap();
        let path = json["attachments"][0]["url"]
            .as_str()
            .unwrap_or_else(|| panic!("no attachment in {json}"));
        format!("http://{}{path}", self.platform.gateway_http)
    }

    async fn stop(self) {
        self.phone.stop().await.unwrap();
        self.platform.stop().await.unwrap();
    }
}

/// The honest path alone: if this fails, every attack test would too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_serves_a_normal_mail() {
    let mut target = Target::start().await;
    target.still_serves().await;
    target.stop().await;
}
