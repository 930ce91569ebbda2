//! API keys and owned domains on the admin surface: a tenant manages its
//! own keys; only operators assign domains.

use pushmail_proto::binding::v1 as pb;
use tonic::{Request, Response, Status};

use super::admin::scope;
use super::auth::caller;
use super::status::respond;
use crate::clock::now_ms;
use crate::domain::{ApiKeyId, MailDomain, TenantId};
use crate::registry::{ApiError, Registry};
use crate::wire;

fn domains(tenant: TenantId, domains: &[MailDomain]) -> pb::TenantDomains {
    pb::TenantDomains {
        tenant_id: tenant.to_string(),
        domains: domains.iter().map(ToString::to_string).collect(),
    }
}

pub(super) async fn set_tenant_domains(
    registry: &Registry,
    request: Request<pb::SetTenantDomainsRequest>,
) -> Result<Response<pb::TenantDomains>, Status> {
    respond(
        async {
            caller(registry, request.metadata())
                .await?
                .require_operator()?;
            let req = request.get_ref();
            let tenant = wire::id("tenant_id", &req.tenant_id, TenantId::parse)?;
            let wanted = wire::domains("domains", &req.domains)?;
            let set = registry.set_tenant_domains(tenant, wanted).await?;
            Ok(domains(tenant, &set))
        }
        .await,
    )
}

pub(super) async fn set_tenant_time_zone(
    registry: &Registry,
    request: Request<pb::SetTenantTimeZoneRequest>,
) -> Result<Response<pb::TenantTimeZone>, Status> {
    respond(
        async {
            let req = request.get_ref();
            let tenant = scope(registry, &request, &req.tenant_id).await?;
            let zone = crate::domain::TenantZone::parse(&req.time_zone)
                .map_err(|e| ApiError::invalid("time_zone", e.to_string()))?;
            let zone = registry.set_tenant_time_zone(tenant, zone).await?;
            Ok(pb::TenantTimeZone {
                tenant_id: tenant.to_string(),
                time_zone: zone.name().to_owned(),
            })
        }
        .await,
    )
}

pub(super) async fn get_tenant_domains(
    registry: &Registry,
    request: Request<pb::GetTenantDomainsRequest>,
) -> Result<Response<pb::TenantDomains>, Status> {
    respond(
        async {
            let tenant = scope(registry, &request, &request.get_ref().tenant_id).await?;
            Ok(domains(tenant, &registry.tenant_domains(tenant).await?))
        }
        .await,
    )
}

pub(super) async fn create_api_key(
    registry: &Registry,
    request: Request<pb::CreateApiKeyRequest>,
) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
    respond(
        async {
            let req = request.get_ref();
            let tenant = scope(registry, &request, &req.tenant_id).await?;
            let description = wire::description("description", &req.description)?;
            let (record, key) = registry
                .create_api_key(tenant, &description, req.ttl_seconds)
                .await?;
            Ok(pb::CreateApiKeyResponse {
                key: Some(wire::api_key(&record, now_ms())),
                api_key: key.expose().to_owned(),
            })
        }
        .await,
    )
}

pub(super) async fn list_api_keys(
    registry: &Registry,
    request: Request<pb::ListApiKeysRequest>,
) -> Result<Response<pb::ListApiKeysResponse>, Status> {
    respond(
        async {
            let tenant = scope(registry, &request, &request.get_ref().tenant_id).await?;
            let now = now_ms();
            Ok(pb::ListApiKeysResponse {
                keys: registry
                    .api_keys(tenant)
                    .await?
                    .iter()
                    .map(|k| wire::api_key(k, now))
                    .collect(),
            })
        }
        .await,
    )
}

pub(super) async fn revoke_api_key(
    registry: &Registry,
    request: Request<pb::RevokeApiKeyRequest>,
) -> Result<Response<pb::ApiKey>, Status> {
    respond(
        async {
            let req = request.get_ref();
            let tenant = scope(registry, &request, &req.tenant_id).await?;
            let id = wire::id("key_id", &req.key_id, ApiKeyId::parse)?;
            let revoked = registry
                .revoke_api_key(tenant, id, req.grace_seconds, req.confirm_last_key)
                .await?;
            Ok::<_, ApiError>(wire::api_key(&revoked, now_ms()))
        }
        .await,
    )
}
