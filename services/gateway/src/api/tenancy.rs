//! A tenant's API keys, owned domains, SMTP relay credentials and relay
//! policy over REST; binding decides who may (a tenant its own, operators
//! any; only operators assign domains).

use axum::extract::{Path, State};
use pushmail_proto::binding::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{Body, Credential, MaybeBody};
use super::handlers::{Reply, Shared, admin, created, ok};

fn ms(t: Option<&prost_types::Timestamp>) -> Option<i64> {
    t.map(|t| t.seconds.saturating_mul(1_000) + i64::from(t.nanos / 1_000_000))
}

fn key(k: &pb::ApiKey) -> Value {
    json!({
        "id": k.key_id,
        "prefix": k.prefix,
        "description": k.description,
        "created_at_ms": ms(k.created_at.as_ref()),
        "expires_at_ms": ms(k.expires_at.as_ref()),
        "revoked_at_ms": ms(k.revoked_at.as_ref()),
        "active": k.active,
    })
}

fn relay_credential(c: &pb::RelayCredential) -> Value {
    json!({
        "id": c.credential_id,
        "username": c.username,
        "description": c.description,
        "created_at_ms": ms(c.created_at.as_ref()),
        "revoked_at_ms": ms(c.revoked_at.as_ref()),
    })
}

fn policy(p: &pb::RelayPolicy) -> Value {
    json!({"allowed_sources": p.allowed_sources, "client_cert_sha256": p.client_cert_sha256})
}

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
    ok(json!({ "items": response.keys.iter().map(key).collect::<Vec<_>>() }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewKey {
    #[serde(default)]
    description: String,
    #[serde(default)]
    ttl_seconds: u64,
}

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
    let mut shown = response.key.as_ref().map(key).unwrap_or_default();
    shown["api_key"] = json!(response.api_key);
    created(shown)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Revoke {
    #[serde(default)]
    grace_seconds: u64,
    #[serde(default)]
    confirm_last_key: bool,
}

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
    ok(key(&revoked))
}

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
    ok(json!({ "domains": response.domains }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Domains {
    domains: Vec<String>,
}

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
    ok(json!({ "domains": response.domains }))
}

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
    ok(json!({ "items": response.credentials.iter().map(relay_credential).collect::<Vec<_>>() }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewCredential {
    #[serde(default)]
    description: String,
}

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
    created(json!({"id": made.credential_id, "username": made.username, "password": made.password}))
}

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
    ok(relay_credential(&revoked))
}

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
    ok(policy(&response))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewPolicy {
    #[serde(default)]
    allowed_sources: Vec<String>,
    #[serde(default)]
    client_cert_sha256: Vec<String>,
}

pub(super) async fn put_policy(
    State(api): Shared,
    credential: Credential,
    Path(tenant): Path<String>,
    Body(body): Body<NewPolicy>,
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
    ok(policy(&response))
}
