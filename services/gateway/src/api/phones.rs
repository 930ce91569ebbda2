//! A phone's lifecycle over REST (register it on a verified number and get
//! its token once, reissue the token, revoke it: `handlers::revoke_device`),
//! changing an account's mailbox settings, and the SMS outbox where the
//! platform keeps one (standalone). All through binding with the caller's
//! own credential.

use axum::extract::{Path, State};
use pushmail_proto::binding::v1 as pb;
use serde::Deserialize;

use super::extract::{Body, Credential, MaybeBody, Params};
use super::handlers::{Paging, Reply, Shared, admin, created, ok, page};
use super::wire;

/// `POST …/devices`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewDevice {
    msisdn: String,
    #[serde(default)]
    label: String,
    /// Whether the phone runs a push client (holds a connection); without
    /// one it is woken by SMS only.
    #[serde(default = "yes")]
    has_push_client: bool,
}

fn yes() -> bool {
    true
}

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
    created(wire::registered(&registered))
}

/// `POST …/devices/{device}/token` takes no body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NoBody {}

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
    ok(wire::registered(&issued))
}

pub(super) async fn update_account(
    State(api): Shared,
    credential: Credential,
    Path((tenant, account)): Path<(String, String)>,
    Body(body): Body<wire::AccountChange>,
) -> Reply {
    let request = body.into_request(&tenant, &account)?;
    let account = admin(&api, &credential, request, |mut c, r| async move {
        c.update_account(r).await
    })
    .await?;
    ok(wire::account(&account))
}

async fn outbox(
    api: &super::Api,
    credential: &Credential,
    tenant: String,
    paging: &Paging,
) -> Reply {
    paging.plain()?;
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
    ok(page(
        response.messages.iter().map(wire::sms).collect(),
        response.page,
    ))
}

/// A tenant's SMS (the tenant, or an operator for it).
pub(super) async fn tenant_sms(
    State(api): Shared,
    credential: Credential,
    Path(tenant): Path<String>,
    Params(paging): Params<Paging>,
) -> Reply {
    outbox(&api, &credential, tenant, &paging).await
}

/// Every SMS the credential may see: an operator every tenant's, a
/// tenant's key its own (binding decides, as everywhere).
pub(super) async fn all_sms(
    State(api): Shared,
    credential: Credential,
    Params(paging): Params<Paging>,
) -> Reply {
    outbox(&api, &credential, String::new(), &paging).await
}
