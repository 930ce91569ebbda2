//! One function per route; each turns the request into binding's, made
//! with the caller's credential, and binding's answer into JSON.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use pushmail_common::grpc::TracedChannel;
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::binding::v1::admin_service_client::AdminServiceClient;
use pushmail_proto::session::v1 as session_pb;
use serde::{Deserialize, Serialize};

use super::Api;
use super::extract::{Body, Credential, Params, Peer};
use super::params::{OnNumber, Paging, Search, TrafficQuery};
use super::wire::{self, Page};
use crate::reply::ApiError;

pub(super) type Shared = State<Arc<Api>>;
pub(super) type Reply = Result<Response, ApiError>;

/// One call to binding's admin surface with the caller's credential.
pub(super) async fn admin<Req, Res, Fut>(
    api: &Api,
    credential: &Credential,
    message: Req,
    call: impl FnOnce(AdminServiceClient<TracedChannel>, tonic::Request<Req>) -> Fut,
) -> Result<Res, ApiError>
where
    Fut: std::future::Future<Output = Result<tonic::Response<Res>, tonic::Status>>,
{
    call(api.admin.clone(), credential.request(message)?)
        .await
        .map(tonic::Response::into_inner)
        .map_err(|s| ApiError::from_admin(&s))
}

pub(super) fn ok(value: impl Serialize) -> Reply {
    Ok(Json(value).into_response())
}

pub(super) fn created(value: impl Serialize) -> Reply {
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", security(),
    responses((status = 200, description = "the OpenAPI 3.1 document", body = Object)))]
pub(super) async fn openapi() -> Reply {
    ok(super::openapi::document())
}

pub(super) async fn not_built() -> Reply {
    Err(ApiError::Upstream(
        "this route is documented but not built".to_owned(),
    ))
}

/// `POST /api/v1/session`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SignIn {
    /// An API key or the operator token.
    #[schema(write_only)]
    api_key: String,
}

async fn who(api: &Api, credential: &Credential) -> Result<wire::Me, ApiError> {
    let me = admin(
        api,
        credential,
        pb::WhoAmIRequest {},
        |mut c, r| async move { c.who_am_i(r).await },
    )
    .await?;
    Ok(if me.operator {
        wire::Me {
            role: wire::Role::Operator,
            tenant_id: None,
            sms_outbox: me.sms_outbox,
        }
    } else {
        wire::Me {
            role: wire::Role::Tenant,
            tenant_id: Some(me.tenant_id),
            sms_outbox: me.sms_outbox,
        }
    })
}

/// Sign in to the portal with an API key or operator token (sets the session cookie).
#[utoipa::path(post, path = "/api/v1/session", security(), request_body = SignIn,
    responses((status = 200, body = wire::Me)))]
pub(super) async fn sign_in(
    State(api): Shared,
    Peer(peer): Peer,
    Body(body): Body<SignIn>,
) -> Reply {
    let key = body.api_key.trim();
    if key.is_empty() {
        return Err(ApiError::BadRequest("api_key is required".to_owned()));
    }
    api.limiter
        .admit(key, peer)
        .map_err(|wait| ApiError::RateLimited {
            retry_after_seconds: wait.as_secs().max(1),
        })?;
    let credential = Credential(key.to_owned());
    let me = who(&api, &credential).await?;
    let cookie = api
        .sessions
        .open_session(key, pushmail_common::clock::now_ms())
        .map_err(|e| ApiError::Upstream(e.to_owned()))?;
    Ok(([(header::SET_COOKIE, cookie)], Json(me)).into_response())
}

/// Sign out (clears the session cookie).
#[utoipa::path(delete, path = "/api/v1/session", security(),
    responses((status = 204, description = "signed out")))]
pub(super) async fn sign_out(State(api): Shared) -> Reply {
    Ok((
        [(header::SET_COOKIE, api.sessions.close_session())],
        StatusCode::NO_CONTENT,
    )
        .into_response())
}

/// Who the credential is: an operator, or which tenant.
#[utoipa::path(get, path = "/api/v1/me", responses((status = 200, body = wire::Me)))]
pub(super) async fn me(State(api): Shared, credential: Credential) -> Reply {
    ok(who(&api, &credential).await?)
}

/// Create a tenant (operators); its API key is shown once.
#[utoipa::path(post, path = "/api/v1/tenants", request_body = wire::NewTenant,
    responses((status = 201, body = wire::CreatedTenant)))]
pub(super) async fn create_tenant(
    State(api): Shared,
    credential: Credential,
    Body(body): Body<wire::NewTenant>,
) -> Reply {
    let created_tenant = admin(
        &api,
        &credential,
        pb::CreateTenantRequest {
            name: body.name,
            max_accounts: body.max_accounts,
            sms_per_day: body.sms_per_day,
            push_per_minute: body.push_per_minute,
            domains: body.domains,
            codes_per_day: body.codes_per_day,
            time_zone: body.time_zone,
        },
        |mut c, r| async move { c.create_tenant(r).await },
    )
    .await?;
    // The key is shown this once (binding keeps only its hash).
    created(wire::CreatedTenant {
        tenant_id: created_tenant.tenant_id,
        api_key: created_tenant.api_key,
    })
}

/// List or search the tenant's accounts.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/accounts", params(("tenant" = String, Path), Search),
    responses((status = 200, body = Page<wire::Account>)))]
pub(super) async fn list_accounts(
    State(api): Shared,
    credential: Credential,
    Path(tenant): Path<String>,
    Params(search): Params<Search>,
) -> Reply {
    let response = admin(
        &api,
        &credential,
        pb::ListAccountsRequest {
            tenant_id: tenant,
            page: search.page(),
            query: search.query.unwrap_or_default(),
        },
        |mut c, r| async move { c.list_accounts(r).await },
    )
    .await?;
    ok(Page::of(
        response.accounts.iter().map(wire::Account::from).collect(),
        response.page,
    ))
}

/// Add an account.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/accounts", params(("tenant" = String, Path)),
    request_body = wire::NewAccount, responses((status = 201, body = wire::Account)))]
pub(super) async fn create_account(
    State(api): Shared,
    credential: Credential,
    Path(tenant): Path<String>,
    Body(body): Body<wire::NewAccount>,
) -> Reply {
    let request = body.into_request(&tenant);
    let account = admin(&api, &credential, request, |mut c, r| async move {
        c.create_account(r).await
    })
    .await?;
    created(wire::Account::from(&account))
}

/// One account.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/accounts/{account}",
    params(("tenant" = String, Path), ("account" = String, Path)),
    responses((status = 200, body = wire::Account)))]
pub(super) async fn get_account(
    State(api): Shared,
    credential: Credential,
    Path((tenant, account)): Path<(String, String)>,
) -> Reply {
    let account = admin(
        &api,
        &credential,
        pb::GetAccountRequest {
            tenant_id: tenant,
            account_id: account,
        },
        |mut c, r| async move { c.get_account(r).await },
    )
    .await?;
    ok(wire::Account::from(&account))
}

/// Delete an account and its bindings.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/accounts/{account}",
    params(("tenant" = String, Path), ("account" = String, Path)),
    responses((status = 204, description = "deleted")))]
pub(super) async fn delete_account(
    State(api): Shared,
    credential: Credential,
    Path((tenant, account)): Path<(String, String)>,
) -> Reply {
    let _: pb::DeleteAccountResponse = admin(
        &api,
        &credential,
        pb::DeleteAccountRequest {
            tenant_id: tenant,
            account_id: account,
        },
        |mut c, r| async move { c.delete_account(r).await },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The account's phone numbers.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/accounts/{account}/bindings",
    params(("tenant" = String, Path), ("account" = String, Path), Paging),
    responses((status = 200, body = Page<wire::Binding>)))]
pub(super) async fn list_bindings(
    State(api): Shared,
    credential: Credential,
    Path((tenant, account)): Path<(String, String)>,
    Params(paging): Params<Paging>,
) -> Reply {
    let response = admin(
        &api,
        &credential,
        pb::ListBindingsRequest {
            tenant_id: tenant,
            account_id: account,
            page: paging.page(),
        },
        |mut c, r| async move { c.list_bindings(r).await },
    )
    .await?;
    ok(Page::of(
        response.bindings.iter().map(wire::Binding::from).collect(),
        response.page,
    ))
}

/// `POST …/bindings`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewBinding {
    /// E.164, e.g. +8613800138000.
    msisdn: String,
}

/// Bind a number: a code goes to it by SMS.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/accounts/{account}/bindings",
    params(("tenant" = String, Path), ("account" = String, Path)),
    request_body = NewBinding, responses((status = 201, body = wire::Binding)))]
pub(super) async fn start_binding(
    State(api): Shared,
    credential: Credential,
    Path((tenant, account)): Path<(String, String)>,
    Body(body): Body<NewBinding>,
) -> Reply {
    let binding = admin(
        &api,
        &credential,
        pb::StartBindingRequest {
            tenant_id: tenant,
            account_id: account,
            msisdn: body.msisdn,
        },
        |mut c, r| async move { c.start_binding(r).await },
    )
    .await?;
    created(wire::Binding::from(&binding))
}

/// `POST …/verify`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Code {
    /// The code the number received.
    code: String,
}

/// Enter the code the number received.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/bindings/{binding}/verify",
    params(("tenant" = String, Path), ("binding" = String, Path)),
    request_body = Code, responses((status = 200, body = wire::Binding)))]
pub(super) async fn verify_binding(
    State(api): Shared,
    credential: Credential,
    Path((tenant, binding)): Path<(String, String)>,
    Body(body): Body<Code>,
) -> Reply {
    let binding = admin(
        &api,
        &credential,
        pb::VerifyBindingRequest {
            tenant_id: tenant,
            binding_id: binding,
            code: body.code,
        },
        |mut c, r| async move { c.verify_binding(r).await },
    )
    .await?;
    ok(wire::Binding::from(&binding))
}

/// Unbind a number.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/bindings/{binding}/revoke",
    params(("tenant" = String, Path), ("binding" = String, Path)),
    responses((status = 200, body = wire::Binding)))]
pub(super) async fn revoke_binding(
    State(api): Shared,
    credential: Credential,
    Path((tenant, binding)): Path<(String, String)>,
) -> Reply {
    let binding = admin(
        &api,
        &credential,
        pb::RevokeBindingRequest {
            tenant_id: tenant,
            binding_id: binding,
        },
        |mut c, r| async move { c.revoke_binding(r).await },
    )
    .await?;
    ok(wire::Binding::from(&binding))
}

/// A binding's push preferences.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/bindings/{binding}/preferences",
    params(("tenant" = String, Path), ("binding" = String, Path)),
    responses((status = 200, body = wire::Preferences)))]
pub(super) async fn get_preferences(
    State(api): Shared,
    credential: Credential,
    Path((tenant, binding)): Path<(String, String)>,
) -> Reply {
    let preferences = admin(
        &api,
        &credential,
        pb::GetPreferencesRequest {
            tenant_id: tenant,
            binding_id: binding,
        },
        |mut c, r| async move { c.get_preferences(r).await },
    )
    .await?;
    ok(wire::Preferences::from(&preferences))
}

/// Replace a binding's push preferences.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/bindings/{binding}/preferences",
    params(("tenant" = String, Path), ("binding" = String, Path)),
    request_body = wire::NewPreferences, responses((status = 200, body = wire::Preferences)))]
pub(super) async fn put_preferences(
    State(api): Shared,
    credential: Credential,
    Path((tenant, binding)): Path<(String, String)>,
    Body(body): Body<wire::NewPreferences>,
) -> Reply {
    let request = body.into_request(&tenant, &binding);
    let preferences = admin(&api, &credential, request, |mut c, r| async move {
        c.update_preferences(r).await
    })
    .await?;
    ok(wire::Preferences::from(&preferences))
}

/// The devices on a number, with whether each is connected now.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/devices", params(("tenant" = String, Path), OnNumber),
    responses((status = 200, body = Page<wire::Device>)))]
pub(super) async fn list_devices(
    State(api): Shared,
    credential: Credential,
    Path(tenant): Path<String>,
    Params(query): Params<OnNumber>,
) -> Reply {
    let response = admin(
        &api,
        &credential,
        pb::ListDevicesRequest {
            tenant_id: tenant,
            page: query.page(),
            msisdn: query.msisdn,
        },
        |mut c, r| async move { c.list_devices(r).await },
    )
    .await?;
    // Presence is asked only for devices binding just listed for this
    // caller, so it reveals nothing beyond the caller's tenant.
    let presence = response.devices.iter().map(|d| {
        let mut session = api.session.clone();
        let request = session_pb::GetPresenceRequest {
            tenant_id: d.tenant_id.clone(),
            device_id: d.device_id.clone(),
        };
        async move {
            session
                .get_presence(request)
                .await
                .ok()
                .map(|r| r.into_inner().connected)
        }
    });
    let online = futures::future::join_all(presence).await;
    let items = response
        .devices
        .iter()
        .zip(online)
        .map(|(d, online)| wire::Device::of(d, online))
        .collect();
    ok(Page::of(items, response.page))
}

/// Revoke a device (its tokens stop working).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/devices/{device}/revoke",
    params(("tenant" = String, Path), ("device" = String, Path)),
    responses((status = 200, body = wire::Device)))]
pub(super) async fn revoke_device(
    State(api): Shared,
    credential: Credential,
    Path((tenant, device)): Path<(String, String)>,
) -> Reply {
    let device = admin(
        &api,
        &credential,
        pb::RevokeDeviceRequest {
            tenant_id: tenant,
            device_id: device,
        },
        |mut c, r| async move { c.revoke_device(r).await },
    )
    .await?;
    ok(wire::Device::of(&device, None))
}

/// An account's pushes, fetches and SMS per day (the tenant's time zone).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/traffic", params(("tenant" = String, Path), TrafficQuery),
    responses((status = 200, body = wire::Traffic)))]
pub(super) async fn traffic(
    State(api): Shared,
    credential: Credential,
    Path(tenant): Path<String>,
    Params(query): Params<TrafficQuery>,
) -> Reply {
    let response = admin(
        &api,
        &credential,
        pb::GetTrafficStatsRequest {
            tenant_id: tenant,
            account_id: query.account,
            from_day: query.from,
            to_day: query.to,
        },
        |mut c, r| async move { c.get_traffic_stats(r).await },
    )
    .await?;
    ok(wire::Traffic {
        days: response.days.iter().map(wire::TrafficDay::from).collect(),
    })
}

/// The account's delivery log, newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/accounts/{account}/deliveries",
    params(("tenant" = String, Path), ("account" = String, Path), Paging),
    responses((status = 200, body = Page<wire::Delivery>)))]
pub(super) async fn deliveries(
    State(api): Shared,
    credential: Credential,
    Path((tenant, account)): Path<(String, String)>,
    Params(paging): Params<Paging>,
) -> Reply {
    let response = admin(
        &api,
        &credential,
        pb::ListDeliveriesRequest {
            tenant_id: tenant,
            account_id: account,
            page: paging.page(),
        },
        |mut c, r| async move { c.list_deliveries(r).await },
    )
    .await?;
    ok(Page::of(
        response.entries.iter().map(wire::Delivery::from).collect(),
        response.page,
    ))
}
