//! Onboarding a phone through binding's admin API, as a tenant admin and
//! the phone would: account, number bound with the code read from the SMS
//! on its way out, device registered. Used by the demo and the load
//! generator (both hold the in-process SMS topic).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use pushmail_common::bus::{self, EventBus, SubscribeOptions, Subscription};
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::binding::v1::admin_service_client::AdminServiceClient;
use pushmail_proto::events::v1::sms_outbound;
use pushmail_proto::topics::SMS_OUTBOUND;

pub(crate) type Admin = AdminServiceClient<tonic::transport::Channel>;

/// A request carrying `token` as its bearer credential.
pub(crate) fn authed<T>(token: &str, message: T) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(request)
}

/// A phone enrolled for an account.
pub(crate) struct Enrolled {
    pub(crate) device_id: String,
    pub(crate) device_token: String,
}

/// Reads one-time codes from the SMS topic.
pub(crate) struct CodeReader {
    sms: Box<dyn Subscription>,
}

impl CodeReader {
    /// Subscribes before any code is sent, so none is missed.
    pub(crate) async fn new(bus: &Arc<dyn EventBus>, group: String) -> anyhow::Result<Self> {
        let sms = bus
            .subscribe(SubscribeOptions {
                group,
                topics: vec![SMS_OUTBOUND.name().to_owned()],
            })
            .await?;
        Ok(Self { sms })
    }

    /// The code sent to `msisdn` next (texts to other numbers are skipped).
    async fn code_for(&mut self, msisdn: &str) -> anyhow::Result<String> {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let record = self.sms.next().await?;
                self.sms.commit(&record).await?;
                let message = bus::decode(SMS_OUTBOUND, &record)?;
                if let (true, Some(sms_outbound::Body::Text(text))) =
                    (message.msisdn == msisdn, message.body)
                    && let Some(code) = text
                        .split(|c: char| !c.is_ascii_digit())
                        .find(|w| w.len() == 6)
                {
                    return anyhow::Ok(code.to_owned());
                }
            }
        })
        .await
        .with_context(|| format!("no code SMS for {msisdn} within 10 s"))?
    }
}

/// Makes an enterprise account `address` of `tenant`, binds `msisdn` to it
/// and registers a phone with a push client on the number.
pub(crate) async fn enroll(
    admin: &mut Admin,
    codes: &mut CodeReader,
    tenant: &pb::CreateTenantResponse,
    address: &str,
    msisdn: &str,
    label: &str,
) -> anyhow::Result<Enrolled> {
    bind(admin, codes, tenant, address, msisdn).await?;
    let key = &tenant.api_key;
    let registered = admin
        .register_device(authed(
            key,
            pb::RegisterDeviceRequest {
                tenant_id: tenant.tenant_id.clone(),
                msisdn: msisdn.to_owned(),
                label: label.to_owned(),
                has_push_client: true,
            },
        )?)
        .await
        .with_context(|| format!("device on {msisdn}"))?
        .into_inner();
    Ok(Enrolled {
        device_id: registered.device.map(|d| d.device_id).unwrap_or_default(),
        device_token: registered.device_token,
    })
}

/// Makes an enterprise account `address` of `tenant` and binds `msisdn`
/// to it with the code binding texts; the account.
pub(crate) async fn bind(
    admin: &mut Admin,
    codes: &mut CodeReader,
    tenant: &pb::CreateTenantResponse,
    address: &str,
    msisdn: &str,
) -> anyhow::Result<pb::Account> {
    let key = &tenant.api_key;
    let account = admin
        .create_account(authed(
            key,
            pb::CreateAccountRequest {
                tenant_id: tenant.tenant_id.clone(),
                address: address.to_owned(),
                kind: pb::AccountKind::EnterpriseForwarded.into(),
                server: None,
                credentials: None,
                submission: None,
            },
        )?)
        .await
        .with_context(|| format!("account {address}"))?
        .into_inner();
    let started = admin
        .start_binding(authed(
            key,
            pb::StartBindingRequest {
                tenant_id: tenant.tenant_id.clone(),
                account_id: account.account_id.clone(),
                msisdn: msisdn.to_owned(),
            },
        )?)
        .await
        .with_context(|| format!("binding {msisdn}"))?
        .into_inner();
    let code = codes.code_for(msisdn).await?;
    admin
        .verify_binding(authed(
            key,
            pb::VerifyBindingRequest {
                tenant_id: tenant.tenant_id.clone(),
                binding_id: started.binding_id,
                code,
            },
        )?)
        .await
        .with_context(|| format!("code for {msisdn}"))?;
    Ok(account)
}
