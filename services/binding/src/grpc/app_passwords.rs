//! App passwords on the admin surface (a tenant's own, or any for an
//! operator) and the ActiveSync login check on the internal one.

use pushmail_proto::binding::v1 as pb;
use tonic::{Request, Response, Status};

use super::admin::scope;
use super::status::respond;
use crate::domain::{AccountId, AppPasswordId, ClientDevice};
use crate::registry::{ApiError, Registry};
use crate::wire;

/// Longest username or password a login is read with: anything longer is
/// wrong without a lookup.
const MAX_LOGIN_FIELD: usize = 256;

/// Metadata telling the activesync service that a refusal is the login's
/// own outcome (`refused`, `other-phone`), not its credential's or a
/// fault: only those reach the phone as 401 or 403.
pub(crate) const LOGIN_OUTCOME: &str = "x-pushmail-login";

pub(super) async fn create(
    registry: &Registry,
    request: Request<pb::CreateAppPasswordRequest>,
) -> Result<Response<pb::CreateAppPasswordResponse>, Status> {
    respond(
        async {
            let req = request.get_ref();
            let tenant = scope(registry, &request, &req.tenant_id).await?;
            let account = wire::id("account_id", &req.account_id, AccountId::parse)?;
            let msisdn = wire::msisdn("msisdn", &req.msisdn)?;
            let label = wire::label(&req.label)?;
            let made = registry
                .create_app_password(tenant, account, &msisdn, &label)
                .await?;
            Ok(pb::CreateAppPasswordResponse {
                app_password: Some(wire::app_password(&made.app_password)),
                password: made.password.expose().to_owned(),
            })
        }
        .await,
    )
}

pub(super) async fn list(
    registry: &Registry,
    request: Request<pb::ListAppPasswordsRequest>,
) -> Result<Response<pb::ListAppPasswordsResponse>, Status> {
    respond(
        async {
            let req = request.get_ref();
            let tenant = scope(registry, &request, &req.tenant_id).await?;
            let account = wire::id("account_id", &req.account_id, AccountId::parse)?;
            let listed = registry.app_passwords(tenant, account).await?;
            Ok(pb::ListAppPasswordsResponse {
                app_passwords: listed.iter().map(wire::app_password).collect(),
            })
        }
        .await,
    )
}

pub(super) async fn revoke(
    registry: &Registry,
    request: Request<pb::RevokeAppPasswordRequest>,
) -> Result<Response<pb::AppPassword>, Status> {
    respond(
        async {
            let req = request.get_ref();
            let tenant = scope(registry, &request, &req.tenant_id).await?;
            let id = wire::id(
                "app_password_id",
                &req.app_password_id,
                AppPasswordId::parse,
            )?;
            let revoked = registry.revoke_app_password(tenant, id).await?;
            Ok(wire::app_password(&revoked))
        }
        .await,
    )
}

pub(super) async fn wipe(
    registry: &Registry,
    request: Request<pb::WipeAppPasswordRequest>,
) -> Result<Response<pb::AppPassword>, Status> {
    respond(
        async {
            let req = request.get_ref();
            let tenant = scope(registry, &request, &req.tenant_id).await?;
            let id = wire::id(
                "app_password_id",
                &req.app_password_id,
                AppPasswordId::parse,
            )?;
            let kind = wire::wipe_kind(req.kind)?;
            let ordered = registry.wipe_app_password(tenant, id, kind).await?;
            Ok(wire::app_password(&ordered))
        }
        .await,
    )
}

/// A wipe acknowledged, once the caller is known to be the activesync
/// service.
pub(super) async fn acknowledge_wipe(
    registry: &Registry,
    req: &pb::AcknowledgeWipeRequest,
) -> Result<pb::AcknowledgeWipeResponse, ApiError> {
    let tenant = wire::id("tenant_id", &req.tenant_id, crate::domain::TenantId::parse)?;
    let id = wire::id(
        "app_password_id",
        &req.app_password_id,
        AppPasswordId::parse,
    )?;
    let kind = wire::wipe_kind(req.kind)?;
    registry.acknowledge_wipe(tenant, id, kind).await?;
    Ok(pb::AcknowledgeWipeResponse {})
}

/// The login check, once the caller is known to be the activesync service.
pub(super) async fn authenticate(
    registry: &Registry,
    req: &pb::AuthenticateAppPasswordRequest,
) -> Result<pb::AuthenticateAppPasswordResponse, ApiError> {
    let peer: std::net::IpAddr = req
        .peer_ip
        .trim()
        .parse()
        .map_err(|_| ApiError::invalid("peer_ip", "must be an IP address"))?;
    let client = ClientDevice::parse(&req.client_device_id, &req.client_device_type).ok_or(
        ApiError::invalid(
            "client_device_id",
            "must be 1 to 64 printable ASCII characters (and the type at most 64)",
        ),
    )?;
    if req.username.trim().is_empty()
        || req.username.len() > MAX_LOGIN_FIELD
        || req.password.is_empty()
        || req.password.len() > MAX_LOGIN_FIELD
    {
        return Err(ApiError::Unauthenticated(crate::registry::REFUSED));
    }
    let login = registry
        .authenticate_app_password(&req.username, &req.password, peer, &client)
        .await?;
    let password = &login.app_password;
    // The phone's own target: its binding's preferences (cached, and
    // dropped with every binding change, as dispatch's).
    let preferences = registry
        .delivery_targets(password.tenant_id, password.account_id)
        .await?
        .iter()
        .find(|t| t.device.is_some_and(|d| d.id == password.device_id))
        .map(|t| wire::preferences_to_proto(&t.preferences));
    Ok(pb::AuthenticateAppPasswordResponse {
        tenant_id: password.tenant_id.to_string(),
        account_id: password.account_id.to_string(),
        device_id: password.device_id.to_string(),
        msisdn: password.msisdn.as_str().to_owned(),
        app_password_id: password.id.to_string(),
        address: login.address,
        policy_key: password.policy_key.unwrap_or(0),
        policy_digest: password.policy_digest.clone(),
        preferences,
        wipe: password
            .wipe
            .filter(crate::domain::Wipe::pending)
            .map_or(pb::WipeKind::Unspecified, |w| {
                wire::wipe_kind_to_proto(w.kind)
            })
            .into(),
    })
}

/// A login's result as tonic wants it, its own refusals marked.
pub(super) fn respond_login<T>(result: Result<T, ApiError>) -> Result<Response<T>, Status> {
    let outcome = match &result {
        Err(ApiError::Unauthenticated(why)) if *why == crate::registry::REFUSED => Some("refused"),
        Err(ApiError::PermissionDenied(why)) if *why == crate::registry::OTHER_PHONE => {
            Some("other-phone")
        }
        _ => None,
    };
    respond(result).map_err(|mut status| {
        if let Some(outcome) = outcome {
            status.metadata_mut().insert(
                LOGIN_OUTCOME,
                tonic::metadata::MetadataValue::from_static(outcome),
            );
        }
        status
    })
}

/// Device information, once the caller is known to be the activesync
/// service.
pub(super) async fn record_device_information(
    registry: &Registry,
    req: &pb::RecordDeviceInformationRequest,
) -> Result<pb::RecordDeviceInformationResponse, ApiError> {
    let tenant = wire::id("tenant_id", &req.tenant_id, crate::domain::TenantId::parse)?;
    let id = wire::id(
        "app_password_id",
        &req.app_password_id,
        AppPasswordId::parse,
    )?;
    let said = req.device_information.clone().unwrap_or_default();
    registry
        .record_device_information(
            tenant,
            id,
            crate::domain::DeviceInformation {
                model: said.model,
                os: said.os,
                friendly_name: said.friendly_name,
                user_agent: said.user_agent,
                mobile_operator: said.mobile_operator,
            },
        )
        .await?;
    Ok(pb::RecordDeviceInformationResponse {})
}

/// Provision, once the caller is known to be the activesync service.
pub(super) async fn provision(
    registry: &Registry,
    req: &pb::ProvisionDeviceRequest,
) -> Result<pb::ProvisionDeviceResponse, ApiError> {
    let tenant = wire::id("tenant_id", &req.tenant_id, crate::domain::TenantId::parse)?;
    let id = wire::id(
        "app_password_id",
        &req.app_password_id,
        AppPasswordId::parse,
    )?;
    let acknowledged = (req.acknowledged_policy_key != 0).then_some(req.acknowledged_policy_key);
    let digest = req.policy_digest.trim();
    if digest.len() > 128 || !digest.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(
            "policy_digest",
            "must be at most 128 printable ASCII characters",
        ));
    }
    let policy_key = registry
        .provision_app_password(tenant, id, acknowledged, digest)
        .await?;
    Ok(pb::ProvisionDeviceResponse { policy_key })
}
