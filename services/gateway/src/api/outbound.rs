//! A tenant's outbound relay over REST: the SMTP server (with AUTH) that
//! mail from the phones of its forwarded and webhook accounts goes
//! through. Binding decides who may (a tenant its own, operators any).

use axum::extract::{Path, State};
use pushmail_proto::binding::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{Body, Credential};
use super::handlers::{Reply, Shared, admin, ok};
use super::wire::Server;

/// The tenant's outbound relay; `server` null: none is set, and its
/// forwarded and webhook accounts cannot send.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SubmissionRelay {
    server: Option<Server>,
}

impl From<pb::SubmissionRelay> for SubmissionRelay {
    fn from(relay: pb::SubmissionRelay) -> Self {
        Self {
            server: relay.server.as_ref().map(Server::of),
        }
    }
}

/// `PUT …/relay/submission`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RelayChange {
    /// Host, port, TLS mode and the SMTP AUTH username (required).
    server: Server,
    /// Write-only. Required the first time; left out, the stored one is
    /// kept.
    #[schema(write_only)]
    password: Option<String>,
}

/// The tenant's outbound relay (never its password).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/relay/submission",
    params(("tenant" = String, Path)), responses((status = 200, body = SubmissionRelay)))]
pub(super) async fn get(
    State(api): Shared,
    credential: Credential,
    Path(tenant): Path<String>,
) -> Reply {
    let response = admin(
        &api,
        &credential,
        pb::GetSubmissionRelayRequest { tenant_id: tenant },
        |mut c, r| async move { c.get_submission_relay(r).await },
    )
    .await?;
    ok(SubmissionRelay::from(response))
}

/// Set the outbound relay; its host must be in the networks mail servers
/// may be in.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/relay/submission",
    params(("tenant" = String, Path)), request_body = RelayChange,
    responses((status = 200, body = SubmissionRelay)))]
pub(super) async fn put(
    State(api): Shared,
    credential: Credential,
    Path(tenant): Path<String>,
    Body(body): Body<RelayChange>,
) -> Reply {
    let response = admin(
        &api,
        &credential,
        pb::SetSubmissionRelayRequest {
            tenant_id: tenant,
            server: Some(body.server.into_proto()),
            credentials: body.password.map(|password| pb::Credentials { password }),
        },
        |mut c, r| async move { c.set_submission_relay(r).await },
    )
    .await?;
    ok(SubmissionRelay::from(response))
}

/// Remove the outbound relay: the tenant's forwarded and webhook accounts
/// can no longer send.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/relay/submission",
    params(("tenant" = String, Path)), responses((status = 200, body = SubmissionRelay)))]
pub(super) async fn delete(
    State(api): Shared,
    credential: Credential,
    Path(tenant): Path<String>,
) -> Reply {
    let response = admin(
        &api,
        &credential,
        pb::ClearSubmissionRelayRequest { tenant_id: tenant },
        |mut c, r| async move { c.clear_submission_relay(r).await },
    )
    .await?;
    ok(SubmissionRelay::from(response))
}
