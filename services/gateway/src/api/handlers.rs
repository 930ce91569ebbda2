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
use pushmail_proto::common::v1::PageRequest;
use pushmail_proto::session::v1 as session_pb;
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{Body, Credential, Params, Peer};
use super::{Api, wire};
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

pub(super) fn ok(value: Value) -> Reply {
    Ok(Json(value).into_response())
}

pub(super) fn created(value: Value) -> Reply {
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

/// Paging parameters of list routes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Paging {
    page_size: Option<u32>,
    cursor: Option<String>,
    query: Option<String>,
    msisdn: Option<String>,
}

impl Paging {
    /// Refuses the parameters only some lists take.
    pub(super) fn plain(&self) -> Result<(), ApiError> {
        if self.query.is_some() || self.msisdn.is_some() {
            return Err(ApiError::BadRequest(
                "only page_size and cursor are accepted".to_owned(),
            ));
        }
        Ok(())
    }

    pub(super) fn page(&self) -> Option<PageRequest> {
        Some(PageRequest {
            page_size: self.page_size.unwrap_or(50),
            cursor: self.cursor.clone().unwrap_or_default(),
        })
    }
}

pub(super) fn page(
    items: Vec<Value>,
    next: Option<pushmail_proto::common::v1::PageResponse>,
) -> Value {
    let next = next.map(|p| p.next_cursor).filter(|c| !c.is_empty());
    json!({ "items": items, "next_cursor": next })
}

pub(super) async fn openapi() -> Reply {
    ok(super::openapi::document())
}

pub(super) async fn not_built() -> Reply {
    Err(ApiError::Upstream(
        "this route is documented but not built".to_owned(),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SignIn {
    api_key: String,
}

async fn who(api: &Api, credential: &Credential) -> Result<Value, ApiError> {
    let me = admin(
        api,
        credential,
        pb::WhoAmIRequest {},
        |mut c, r| async move { c.who_am_i(r).await },
    )
    .await?;
    Ok(if me.operator {
        json!({ "role": "operator", "tenant_id": null, "sms_outbox": me.sms_outbox })
    } else {
        json!({ "role": "tenant", "tenant_id": me.tenant_id, "sms_outbox": me.sms_outbox })
    })
}

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

pub(super) async fn sign_out(State(api): Shared) -> Reply {
    Ok((
        [(header::SET_COOKIE, api.sessions.close_session())],
        StatusCode::NO_CONTENT,
    )
        .into_response())
}

pub(super) async fn me(State(api): Shared, credential: Credential) -> Reply {
    ok(who(&api, &credential).await?)
}

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
    created(json!({ "tenant_id": created_tenant.tenant_id, "api_key": created_tenant.api_key }))
}

pub(super) async fn list_accounts(
    State(api): Shared,
    credential: Credential,
    Path(tenant): Path<String>,
    Params(paging): Params<Paging>,
) -> Reply {
    if paging.msisdn.is_some() {
        return Err(ApiError::BadRequest("unknown parameter msisdn".to_owned()));
    }
    let response = admin(
        &api,
        &credential,
        pb::ListAccountsRequest {
            tenant_id: tenant,
            query: paging.query.clone().unwrap_or_default(),
            page: paging.page(),
        },
        |mut c, r| async move { c.list_accounts(r).await },
    )
    .await?;
    ok(page(
        response.accounts.iter().map(wire::account).collect(),
        response.page,
    ))
}

pub(super) async fn create_account(
    State(api): Shared,
    credential: Credential,
    Path(tenant): Path<String>,
    Body(body): Body<wire::NewAccount>,
) -> Reply {
    let request = body.into_request(&tenant)?;
    let account = admin(&api, &credential, request, |mut c, r| async move {
        c.create_account(r).await
    })
    .await?;
    created(wire::account(&account))
}

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
    ok(wire::account(&account))
}

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

pub(super) async fn list_bindings(
    State(api): Shared,
    credential: Credential,
    Path((tenant, account)): Path<(String, String)>,
    Params(paging): Params<Paging>,
) -> Reply {
    paging.plain()?;
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
    ok(page(
        response.bindings.iter().map(wire::binding).collect(),
        response.page,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewBinding {
    msisdn: String,
}

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
    created(wire::binding(&binding))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Code {
    code: String,
}

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
    ok(wire::binding(&binding))
}

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
    ok(wire::binding(&binding))
}

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
    ok(wire::preferences(&preferences))
}

pub(super) async fn put_preferences(
    State(api): Shared,
    credential: Credential,
    Path((tenant, binding)): Path<(String, String)>,
    Body(body): Body<wire::NewPreferences>,
) -> Reply {
    let request = body.into_request(&tenant, &binding)?;
    let preferences = admin(&api, &credential, request, |mut c, r| async move {
        c.update_preferences(r).await
    })
    .await?;
    ok(wire::preferences(&preferences))
}

pub(super) async fn list_devices(
    State(api): Shared,
    credential: Credential,
    Path(tenant): Path<String>,
    Params(paging): Params<Paging>,
) -> Reply {
    if paging.query.is_some() {
        return Err(ApiError::BadRequest("unknown parameter query".to_owned()));
    }
    let Some(msisdn) = paging.msisdn.clone() else {
        return Err(ApiError::BadRequest(
            "msisdn is required: the number whose devices to list".to_owned(),
        ));
    };
    let response = admin(
        &api,
        &credential,
        pb::ListDevicesRequest {
            tenant_id: tenant,
            msisdn,
            page: paging.page(),
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
        .map(|(d, online)| wire::device(d, online))
        .collect();
    ok(page(items, response.page))
}

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
    ok(wire::device(&device, None))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TrafficQuery {
    account: String,
    from: String,
    to: String,
}

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
    ok(json!({ "days": response.days.iter().map(wire::traffic_day).collect::<Vec<_>>() }))
}

pub(super) async fn deliveries(
    State(api): Shared,
    credential: Credential,
    Path((tenant, account)): Path<(String, String)>,
    Params(paging): Params<Paging>,
) -> Reply {
    paging.plain()?;
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
    ok(page(
        response.entries.iter().map(wire::delivery).collect(),
        response.page,
    ))
}
