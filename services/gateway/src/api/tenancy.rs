//! A tenant's API keys, owned domains, SMTP relay credentials and relay
//! policy over REST; binding decides who may (a tenant its own, operators
//! any; only operators assign domains).

use axum::extract::{Path, State};
use pushmail_proto::binding::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{Body, Credential, MaybeBody};
use super::handlers::{Reply, Shared, admin, created, ok};
use super::wire::ms;

/// An API key of the tenant (never the key itself).
#[derive(Debug, Default, Serialize, ToSchema)]
pub(super) struct ApiKey {
    id: String,
    /// The key's first characters, to tell keys apart.
    prefix: String,
    description: String,
    created_at_ms: Option<i64>,
    expires_at_ms: Option<i64>,
    revoked_at_ms: Option<i64>,
    active: bool,
}

impl From<&pb::ApiKey> for ApiKey {
    fn from(k: &pb::ApiKey) -> Self {
        Self {
            id: k.key_id.clone(),
            prefix: k.prefix.clone(),
            description: k.description.clone(),
            created_at_ms: ms(k.created_at.as_ref()),
            expires_at_ms: ms(k.expires_at.as_ref()),
            revoked_at_ms: ms(k.revoked_at.as_ref()),
            active: k.active,
        }
    }
}

/// The tenant's API keys.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ApiKeyList {
    items: Vec<ApiKey>,
}

/// A new API key, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct CreatedApiKey {
    #[serde(flatten)]
    key: ApiKey,
    /// The key itself: shown once.
    api_key: String,
}

/// An SMTP relay credential (never its password).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RelayCredential {
    id: String,
    username: String,
    description: String,
    created_at_ms: Option<i64>,
    revoked_at_ms: Option<i64>,
}

impl From<&pb::RelayCredential> for RelayCredential {
    fn from(c: &pb::RelayCredential) -> Self {
        Self {
            id: c.credential_id.clone(),
            username: c.username.clone(),
            description: c.description.clone(),
            created_at_ms: ms(c.created_at.as_ref()),
            revoked_at_ms: ms(c.revoked_at.as_ref()),
        }
    }
}

/// The tenant's SMTP relay credentials.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RelayCredentialList {
    items: Vec<RelayCredential>,
}

/// A new SMTP relay credential, its password shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct CreatedRelayCredential {
    id: String,
    username: String,
    /// Shown once.
    password: String,
}

/// Where the tenant's inbound mail may come from.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RelayPolicy {
    /// CIDRs or addresses.
    #[serde(default)]
    allowed_sources: Vec<String>,
    /// SHA-256 fingerprints of client certificates, 64 hex digits each.
    #[serde(default)]
    client_cert_sha256: Vec<String>,
}

impl From<pb::RelayPolicy> for RelayPolicy {
    fn from(p: pb::RelayPolicy) -> Self {
        Self {
            allowed_sources: p.allowed_sources,
            client_cert_sha256: p.client_cert_sha256,
        }
    }
}

/// The tenant's list of API keys.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/keys", params(("tenant" = String, Path)),
    responses((status = 200, description = "never the keys themselves", body = ApiKeyList)))]
pub(super) async fn list_keys(
    State(api): Shared,
    credential: Credential,
    Path(tenant): Path<String>,
) -> Reply {
    let response = admin(
        &api,
        &credential,
        pb::ListApiKeysRequest { tenant_id: tenant },
        |mut c, r| async move { c.list_api_keys(r).await },
    )
    .await?;
    ok(ApiKeyList {
        items: response.keys.iter().map(ApiKey::from).collect(),
    })
}

/// `POST …/keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewKey {
    #[serde(default)]
    description: String,
    /// 0: until revoked.
    #[serde(default)]
    ttl_seconds: u64,
}

/// Create an API key (shown once): rotate by creating one, then revoking the old with a grace.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/keys", params(("tenant" = String, Path)),
    request_body = NewKey, responses((status = 201, body = CreatedApiKey)))]
pub(super) async fn create_key(
    State(api): Shared,
    credential: Credential,
    Path(tenant): Path<String>,
    Body(body): Body<NewKey>,
) -> Reply {
    let response = admin(
        &api,
        &credential,
        pb::CreateApiKeyRequest {
            tenant_id: tenant,
            description: body.description,
            ttl_seconds: body.ttl_seconds,
        },
        |mut c, r| async move { c.create_api_key(r).await },
    )
    .await?;
    // The key is shown this once (binding keeps only its hash).
    created(CreatedApiKey {
        key: response.key.as_ref().map(ApiKey::from).unwrap_or_default(),
        api_key: response.api_key,
    })
}

/// `POST …/keys/{key}/revoke`; no body: at once.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Revoke {
    /// The key works this long more (at most 30 days); 0: stops at once.
    #[serde(default)]
    grace_seconds: u64,
    /// Required to revoke the tenant's last working key.
    #[serde(default)]
    confirm_last_key: bool,
}

/// Revoke an API key, at once or after a grace period (the last working key needs confirm_last_key).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/keys/{key}/revoke",
    params(("tenant" = String, Path), ("key" = String, Path)),
    request_body(content = Option<Revoke>), responses((status = 200, body = ApiKey)))]
pub(super) async fn revoke_key(
    State(api): Shared,
    credential: Credential,
    Path((tenant, key_id)): Path<(String, String)>,
    MaybeBody(body): MaybeBody<Revoke>,
) -> Reply {
    let revoked = admin(
        &api,
        &credential,
        pb::RevokeApiKeyRequest {
            tenant_id: tenant,
            key_id,
            grace_seconds: body.grace_seconds,
            confirm_last_key: body.confirm_last_key,
        },
        |mut c, r| async move { c.revoke_api_key(r).await },
    )
    .await?;
    ok(ApiKey::from(&revoked))
}

/// The mail domains the tenant owns.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/domains", params(("tenant" = String, Path)),
    responses((status = 200, body = Domains)))]
pub(super) async fn get_domains(
    State(api): Shared,
    credential: Credential,
    Path(tenant): Path<String>,
) -> Reply {
    let response = admin(
        &api,
        &credential,
        pb::GetTenantDomainsRequest { tenant_id: tenant },
        |mut c, r| async move { c.get_tenant_domains(r).await },
    )
    .await?;
    ok(Domains {
        domains: response.domains,
    })
}

/// A tenant's mail domains.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Domains {
    domains: Vec<String>,
}

/// Assign the tenant's mail domains (operators): only it may forward addresses in them.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/domains", params(("tenant" = String, Path)),
    request_body = Domains, responses((status = 200, body = Domains)))]
pub(super) async fn put_domains(
    State(api): Shared,
    credential: Credential,
    Path(tenant): Path<String>,
    Body(body): Body<Domains>,
) -> Reply {
    let response = admin(
        &api,
        &credential,
        pb::SetTenantDomainsRequest {
            tenant_id: tenant,
            domains: body.domains,
        },
        |mut c, r| async move { c.set_tenant_domains(r).await },
    )
    .await?;
    ok(Domains {
        domains: response.domains,
    })
}

/// The tenant's SMTP relay credentials (never their passwords).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/relay/credentials",
    params(("tenant" = String, Path)), responses((status = 200, body = RelayCredentialList)))]
pub(super) async fn list_credentials(
    State(api): Shared,
    credential: Credential,
    Path(tenant): Path<String>,
) -> Reply {
    let response = admin(
        &api,
        &credential,
        pb::ListRelayCredentialsRequest { tenant_id: tenant },
        |mut c, r| async move { c.list_relay_credentials(r).await },
    )
    .await?;
    ok(RelayCredentialList {
        items: response
            .credentials
            .iter()
            .map(RelayCredential::from)
            .collect(),
    })
}

/// `POST …/relay/credentials`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewCredential {
    #[serde(default)]
    description: String,
}

/// Create an SMTP relay credential (its password is shown once).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/relay/credentials",
    params(("tenant" = String, Path)), request_body = NewCredential,
    responses((status = 201, body = CreatedRelayCredential)))]
pub(super) async fn create_credential(
    State(api): Shared,
    credential: Credential,
    Path(tenant): Path<String>,
    Body(body): Body<NewCredential>,
) -> Reply {
    let made = admin(
        &api,
        &credential,
        pb::CreateRelayCredentialRequest {
            tenant_id: tenant,
            description: body.description,
        },
        |mut c, r| async move { c.create_relay_credential(r).await },
    )
    .await?;
    // The password is shown this once (binding keeps only its hash).
    created(CreatedRelayCredential {
        id: made.credential_id,
        username: made.username,
        password: made.password,
    })
}

/// Revoke an SMTP relay credential.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/relay/credentials/{credential}/revoke",
    params(("tenant" = String, Path), ("credential" = String, Path)),
    responses((status = 200, body = RelayCredential)))]
pub(super) async fn revoke_credential(
    State(api): Shared,
    credential: Credential,
    Path((tenant, credential_id)): Path<(String, String)>,
) -> Reply {
    let revoked = admin(
        &api,
        &credential,
        pb::RevokeRelayCredentialRequest {
            tenant_id: tenant,
            credential_id,
        },
        |mut c, r| async move { c.revoke_relay_credential(r).await },
    )
    .await?;
    ok(RelayCredential::from(&revoked))
}

/// Where the tenant's inbound mail may come from.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/relay/policy",
    params(("tenant" = String, Path)), responses((status = 200, body = RelayPolicy)))]
pub(super) async fn get_policy(
    State(api): Shared,
    credential: Credential,
    Path(tenant): Path<String>,
) -> Reply {
    let response = admin(
        &api,
        &credential,
        pb::GetRelayPolicyRequest { tenant_id: tenant },
        |mut c, r| async move { c.get_relay_policy(r).await },
    )
    .await?;
    ok(RelayPolicy::from(response))
}

/// Replace the relay policy: source networks and client-certificate fingerprints.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/relay/policy",
    params(("tenant" = String, Path)), request_body = RelayPolicy,
    responses((status = 200, body = RelayPolicy)))]
pub(super) async fn put_policy(
    State(api): Shared,
    credential: Credential,
    Path(tenant): Path<String>,
    Body(body): Body<RelayPolicy>,
) -> Reply {
    let response = admin(
        &api,
        &credential,
        pb::SetRelayPolicyRequest {
            tenant_id: tenant,
            allowed_sources: body.allowed_sources,
            client_cert_sha256: body.client_cert_sha256,
        },
        |mut c, r| async move { c.set_relay_policy(r).await },
    )
    .await?;
    ok(RelayPolicy::from(response))
}
