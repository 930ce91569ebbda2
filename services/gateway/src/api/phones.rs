//! A phone's lifecycle over REST (register it on a verified number and get
//! its token once, reissue the token, revoke it: `handlers::revoke_device`),
//! changing an account's mailbox settings, and the SMS outbox where the
//! platform keeps one (standalone). All through binding with the caller's
//! own credential.

use axum::extract::{Path, State};
use pushmail_proto::binding::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{Body, Credential, MaybeBody, Params};
use super::handlers::{Reply, Shared, admin, created, ok};
use super::params::Paging;
use super::wire::{self, Device, Page, ms};

/// A registered device with its token (shown this once).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RegisteredDevice {
    device: Option<Device>,
    /// The device token, shown once: the phone presents it to the session node.
    token: String,
    token_expires_at_ms: Option<i64>,
}

impl From<&pb::RegisterDeviceResponse> for RegisteredDevice {
    fn from(r: &pb::RegisterDeviceResponse) -> Self {
        Self {
            device: r.device.as_ref().map(|d| Device::of(d, None)),
            token: r.device_token.clone(),
            token_expires_at_ms: ms(r.token_expires_at.as_ref()),
        }
    }
}

/// One SMS of the outbox.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Sms {
    id: String,
    tenant_id: String,
    msisdn: String,
    /// otp, wake_up, notice or unspecified.
    purpose: String,
    /// text or wap_push.
    kind: String,
    /// The text, or the WAP Push's indication text.
    text: String,
    /// The WAP Push's URL; empty for a text.
    url: String,
    account_id: String,
    device_id: String,
    at_ms: Option<i64>,
}

impl From<&pb::OutboundSms> for Sms {
    fn from(m: &pb::OutboundSms) -> Self {
        Self {
            id: m.sms_id.clone(),
            tenant_id: m.tenant_id.clone(),
            msisdn: m.msisdn.clone(),
            purpose: m.purpose.clone(),
            kind: m.kind.clone(),
            text: m.text.clone(),
            url: m.url.clone(),
            account_id: m.account_id.clone(),
            device_id: m.device_id.clone(),
            at_ms: ms(m.at.as_ref()),
        }
    }
}

/// `POST …/devices`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewDevice {
    /// A number verified in the tenant.
    msisdn: String,
    #[serde(default)]
    label: String,
    /// Whether the phone runs a push client (holds a connection); without
    /// one it is woken by SMS only.
    #[serde(default = "yes")]
    #[schema(default = true)]
    has_push_client: bool,
}

fn yes() -> bool {
    true
}

/// Register a phone on a number verified in the tenant; its token is shown once.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/devices", params(("tenant" = String, Path)),
    request_body = NewDevice, responses((status = 201, body = RegisteredDevice)))]
pub(super) async fn register_device(
    State(api): Shared,
    credential: Credential,
    Path(tenant): Path<String>,
    Body(body): Body<NewDevice>,
) -> Reply {
    let registered = admin(
        &api,
        &credential,
        pb::RegisterDeviceRequest {
            tenant_id: tenant,
            msisdn: body.msisdn,
            label: body.label,
            has_push_client: body.has_push_client,
        },
        |mut c, r| async move { c.register_device(r).await },
    )
    .await?;
    // The token is shown this once; binding signs a new one on request.
    created(RegisteredDevice::from(&registered))
}

/// `POST …/devices/{device}/token` takes no body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NoBody {}

/// A fresh token for a registered, unrevoked device (shown once).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/devices/{device}/token",
    params(("tenant" = String, Path), ("device" = String, Path)),
    responses((status = 200, body = RegisteredDevice)))]
pub(super) async fn issue_token(
    State(api): Shared,
    credential: Credential,
    Path((tenant, device)): Path<(String, String)>,
    MaybeBody(NoBody {}): MaybeBody<NoBody>,
) -> Reply {
    let issued = admin(
        &api,
        &credential,
        pb::IssueDeviceTokenRequest {
            tenant_id: tenant,
            device_id: device,
        },
        |mut c, r| async move { c.issue_device_token(r).await },
    )
    .await?;
    ok(RegisteredDevice::from(&issued))
}

/// Change an IMAP/POP3 account's server settings, submission settings and/or password.
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/accounts/{account}",
    params(("tenant" = String, Path), ("account" = String, Path)),
    request_body = wire::AccountChange, responses((status = 200, body = wire::Account)))]
pub(super) async fn update_account(
    State(api): Shared,
    credential: Credential,
    Path((tenant, account)): Path<(String, String)>,
    Body(body): Body<wire::AccountChange>,
) -> Reply {
    let request = body.into_request(&tenant, &account);
    let account = admin(&api, &credential, request, |mut c, r| async move {
        c.update_account(r).await
    })
    .await?;
    ok(wire::Account::from(&account))
}

async fn outbox(
    api: &super::Api,
    credential: &Credential,
    tenant: String,
    paging: &Paging,
) -> Reply {
    let response = admin(
        api,
        credential,
        pb::ListOutboundSmsRequest {
            tenant_id: tenant,
            page: paging.page(),
        },
        |mut c, r| async move { c.list_outbound_sms(r).await },
    )
    .await?;
    ok(Page::of(
        response.messages.iter().map(Sms::from).collect(),
        response.page,
    ))
}

/// The SMS outbox: the tenant's SMS, newest first (only where the platform keeps one: no SMS centre).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/sms", params(("tenant" = String, Path), Paging),
    responses((status = 200, body = Page<Sms>)))]
pub(super) async fn tenant_sms(
    State(api): Shared,
    credential: Credential,
    Path(tenant): Path<String>,
    Params(paging): Params<Paging>,
) -> Reply {
    outbox(&api, &credential, tenant, &paging).await
}

/// The SMS outbox: every SMS the credential may see (an operator: every tenant's), newest first.
///
/// A tenant's key sees its own (binding decides, as everywhere).
#[utoipa::path(get, path = "/api/v1/sms", params(Paging),
    responses((status = 200, body = Page<Sms>)))]
pub(super) async fn all_sms(
    State(api): Shared,
    credential: Credential,
    Params(paging): Params<Paging>,
) -> Reply {
    outbox(&api, &credential, String::new(), &paging).await
}
