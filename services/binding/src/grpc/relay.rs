//! Relay credentials and the relay policy on the admin surface (a tenant's
//! own, or any for an operator).

use pushmail_proto::binding::v1 as pb;
use tonic::{Request, Response, Status};

use super::admin::scope;
use super::status::respond;
use crate::domain::RelayCredentialId;
use crate::registry::Registry;
use crate::wire;

pub(super) async fn create_credential(
    registry: &Registry,
    request: Request<pb::CreateRelayCredentialRequest>,
) -> Result<Response<pb::CreateRelayCredentialResponse>, Status> {
    respond(
        async {
            let req = request.get_ref();
            let tenant = scope(registry, &request, &req.tenant_id).await?;
            let description = wire::description("description", &req.description)?;
            let made = registry
                .create_relay_credential(tenant, &description)
                .await?;
            Ok(pb::CreateRelayCredentialResponse {
                credential_id: made.credential.id.to_string(),
                username: made.credential.username,
                password: made.password.expose().to_owned(),
            })
        }
        .await,
    )
}

pub(super) async fn list_credentials(
    registry: &Registry,
    request: Request<pb::ListRelayCredentialsRequest>,
) -> Result<Response<pb::ListRelayCredentialsResponse>, Status> {
    respond(
        async {
            let tenant = scope(registry, &request, &request.get_ref().tenant_id).await?;
            let credentials = registry.relay_credentials(tenant).await?;
            Ok(pb::ListRelayCredentialsResponse {
                credentials: credentials.iter().map(wire::relay_credential).collect(),
            })
        }
        .await,
    )
}

pub(super) async fn revoke_credential(
    registry: &Registry,
    request: Request<pb::RevokeRelayCredentialRequest>,
) -> Result<Response<pb::RelayCredential>, Status> {
    respond(
        async {
            let req = request.get_ref();
            let tenant = scope(registry, &request, &req.tenant_id).await?;
            let id = wire::id(
                "credential_id",
                &req.credential_id,
                RelayCredentialId::parse,
            )?;
            let revoked = registry.revoke_relay_credential(tenant, id).await?;
            Ok(wire::relay_credential(&revoked))
        }
        .await,
    )
}

pub(super) async fn get_policy(
    registry: &Registry,
    request: Request<pb::GetRelayPolicyRequest>,
) -> Result<Response<pb::RelayPolicy>, Status> {
    respond(
        async {
            let tenant = scope(registry, &request, &request.get_ref().tenant_id).await?;
            let policy = registry.relay_policy(tenant).await?;
            Ok(wire::relay_policy_to_proto(tenant, &policy))
        }
        .await,
    )
}

pub(super) async fn set_policy(
    registry: &Registry,
    request: Request<pb::SetRelayPolicyRequest>,
) -> Result<Response<pb::RelayPolicy>, Status> {
    respond(
        async {
            let req = request.get_ref();
            let tenant = scope(registry, &request, &req.tenant_id).await?;
            let policy = wire::relay_policy(&req.allowed_sources, &req.client_cert_sha256)?;
            let saved = registry.set_relay_policy(tenant, &policy).await?;
            Ok(wire::relay_policy_to_proto(tenant, &saved))
        }
        .await,
    )
}

pub(super) async fn get_submission_relay(
    registry: &Registry,
    request: Request<pb::GetSubmissionRelayRequest>,
) -> Result<Response<pb::SubmissionRelay>, Status> {
    respond(
        async {
            let tenant = scope(registry, &request, &request.get_ref().tenant_id).await?;
            let relay = registry.submission_relay(tenant).await?;
            Ok(wire::submission_relay_to_proto(tenant, relay.as_ref()))
        }
        .await,
    )
}

pub(super) async fn set_submission_relay(
    registry: &Registry,
    request: Request<pb::SetSubmissionRelayRequest>,
) -> Result<Response<pb::SubmissionRelay>, Status> {
    respond(
        async {
            let req = request.get_ref();
            let tenant = scope(registry, &request, &req.tenant_id).await?;
            let (server, password) = wire::submission_relay(req)?;
            let saved = registry
                .set_submission_relay(tenant, &server, password.as_ref())
                .await?;
            Ok(wire::submission_relay_to_proto(tenant, Some(&saved)))
        }
        .await,
    )
}

pub(super) async fn clear_submission_relay(
    registry: &Registry,
    request: Request<pb::ClearSubmissionRelayRequest>,
) -> Result<Response<pb::SubmissionRelay>, Status> {
    respond(
        async {
            let tenant = scope(registry, &request, &request.get_ref().tenant_id).await?;
            registry.clear_submission_relay(tenant).await?;
            Ok(wire::submission_relay_to_proto(tenant, None))
        }
        .await,
    )
}
