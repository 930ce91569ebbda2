//! `make run`'s demo device: once the platform is ready, a demo tenant,
//! an enterprise account `demo@pushmail.local` and a phone bound to it
//! (the code read from the in-process SMS topic, as a phone would read its
//! SMS) are made through binding's admin API, kept in
//! `<data_dir>/demo.json` for the next run, and a device connects and
//! prints every push. Mail to the account over SMTP shows up at once.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use pushmail_common::bus::EventBus;
use pushmail_device::{Device, DeviceConfig, Heartbeat};
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::binding::v1::admin_service_client::AdminServiceClient;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::StandaloneConfig;
use crate::enroll::{CodeReader, authed, enroll};

/// The demo account's address.
pub(crate) const ADDRESS: &str = "demo@pushmail.local";
const MSISDN: &str = "+8613800000001";

#[derive(Debug, Serialize, Deserialize)]
struct Demo {
    tenant_id: String,
    api_key: String,
    device_id: String,
}

/// Makes (or reuses) the demo device and runs it until `shutdown`.
pub(crate) async fn run(
    config: &StandaloneConfig,
    bus: Arc<dyn EventBus>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let binding = format!("http://{}", config.binding.server.grpc_addr);
    let mut admin = AdminServiceClient::connect(binding)
        .await
        .context("binding")?;
    let path = config.data_dir.join("demo.json");
    let (demo, token) = match reuse(&path, &mut admin).await {
        Some(found) => found,
        None => create(config, &bus, &mut admin, &path).await?,
    };
    println!(
        "demo: device {} of {ADDRESS} (tenant {}). Send it mail:\n      swaks --server {} --to {ADDRESS} --header 'Subject: hello'",
        demo.device_id, demo.tenant_id, config.ingest.smtp.listen
    );
    crate::guide::print(config, Some(&demo.api_key));
    let mut device_config = DeviceConfig::new(
        format!("ws://{}", config.session.devices.addr),
        token.clone(),
    );
    device_config.heartbeat = Heartbeat::new(60, 60, 1_800, 5);
    let mut device = Device::new(device_config);
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let printer = tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            crate::device::print(&event);
            if let pushmail_device::Event::Notification(n) = &event {
                crate::device::show_fetch(n, &token).await;
            }
        }
    });
    let result = device.run(tx, shutdown).await;
    let _ = printer.await;
    result
}

/// The saved demo, with a fresh token, if binding still knows it.
async fn reuse(
    path: &Path,
    admin: &mut AdminServiceClient<tonic::transport::Channel>,
) -> Option<(Demo, String)> {
    let demo: Demo = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let issued = admin
        .issue_device_token(
            authed(
                &demo.api_key,
                pb::IssueDeviceTokenRequest {
                    tenant_id: demo.tenant_id.clone(),
                    device_id: demo.device_id.clone(),
                },
            )
            .ok()?,
        )
        .await
        .ok()?
        .into_inner();
    Some((demo, issued.device_token))
}

async fn create(
    config: &StandaloneConfig,
    bus: &Arc<dyn EventBus>,
    admin: &mut AdminServiceClient<tonic::transport::Channel>,
    path: &Path,
) -> anyhow::Result<(Demo, String)> {
    let operator = config.binding.security.operator_token.expose();
    let tenant = admin
        .create_tenant(authed(
            operator,
            pb::CreateTenantRequest {
                name: format!("demo-{}", pushmail_common::clock::now_ms()),
                max_accounts: 10,
                sms_per_day: 100,
                push_per_minute: 0,
                // The demo is a Chinese carrier's tenant: its days are Beijing's.
                time_zone: "Asia/Shanghai".to_owned(),
                ..Default::default()
            },
        )?)
        .await
        .context("demo tenant")?
        .into_inner();
    let mut codes =
        CodeReader::new(bus, format!("demo-{}", pushmail_common::clock::now_ms())).await?;
    let enrolled = enroll(admin, &mut codes, &tenant, ADDRESS, MSISDN, "demo phone")
        .await
        .context("demo phone")?;
    let demo = Demo {
        tenant_id: tenant.tenant_id,
        api_key: tenant.api_key,
        device_id: enrolled.device_id,
    };
    // Holds the tenant's API key: readable by this user only.
    write_private(path, &serde_json::to_vec_pretty(&demo)?)?;
    Ok((demo, enrolled.device_token))
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    Ok(())
}
