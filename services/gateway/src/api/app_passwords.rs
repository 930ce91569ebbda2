//! App passwords over REST: a phone's own mail app (Exchange ActiveSync)
//! logs in with the account's address and one of these, made for that
//! phone and shown once. Binding decides who may (a tenant its own,
//! operators any) and registers the phone as a device.

use axum::extract::{Path, State};
use pushmail_proto::binding::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{Body, Credential};
use super::handlers::{Reply, Shared, admin, created, ok};
use super::wire::ms;

/// An app password as listed (never the password).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct AppPassword {
    id: String,
    account_id: String,
    /// The device it registered.
    device_id: String,
    msisdn: String,
    label: String,
    created_at_ms: Option<i64>,
    /// The phone's own ActiveSync DeviceId and DeviceType, pinned at its
    /// first login; empty until then.
    client_device_id: String,
    client_device_type: String,
    last_used_at_ms: Option<i64>,
    revoked_at_ms: Option<i64>,
    /// What the phone says it is (empty until it has said).
    device: DeviceInformation,
    /// The remote wipe ordered for the phone; absent: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    wipe: Option<WipeState>,
}

/// What a remote wipe erases: `device`, the whole phone; `account`, only
/// the account's data (phones speaking ActiveSync 16.1; an older phone
/// is refused instead, and keeps what it has).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum WipeKind {
    Device,
    Account,
}

/// A remote wipe and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct WipeState {
    kind: WipeKind,
    ordered_at_ms: Option<i64>,
    /// When the phone acknowledged it (its password was then revoked);
    /// absent while it waits for the phone's next request.
    done_at_ms: Option<i64>,
}

/// `POST …/app-passwords/{app_password}/wipe`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct WipeOrder {
    kind: WipeKind,
}

/// What a phone says it is: model, OS, the name its user gave it, user
/// agent, mobile operator (its IMEI and number are not kept).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct DeviceInformation {
    model: String,
    os: String,
    friendly_name: String,
    user_agent: String,
    mobile_operator: String,
}

impl From<&pb::AppPassword> for AppPassword {
    fn from(p: &pb::AppPassword) -> Self {
        Self {
            id: p.app_password_id.clone(),
            account_id: p.account_id.clone(),
            device_id: p.device_id.clone(),
            msisdn: p.msisdn.clone(),
            label: p.label.clone(),
            created_at_ms: ms(p.created_at.as_ref()),
            client_device_id: p.client_device_id.clone(),
            client_device_type: p.client_device_type.clone(),
            last_used_at_ms: ms(p.last_used_at.as_ref()),
            revoked_at_ms: ms(p.revoked_at.as_ref()),
            wipe: match p.wipe() {
                pb::WipeKind::Device => Some(WipeKind::Device),
                pb::WipeKind::Account => Some(WipeKind::Account),
                pb::WipeKind::Unspecified => None,
            }
            .map(|kind| WipeState {
                kind,
                ordered_at_ms: ms(p.wipe_ordered_at.as_ref()),
                done_at_ms: ms(p.wipe_done_at.as_ref()),
            }),
            device: {
                let d = p.device_information.clone().unwrap_or_default();
                DeviceInformation {
                    model: d.model,
                    os: d.os,
                    friendly_name: d.friendly_name,
                    user_agent: d.user_agent,
                    mobile_operator: d.mobile_operator,
                }
            },
        }
    }
}

/// An account's app passwords, oldest first, revoked ones included.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct AppPasswordList {
    items: Vec<AppPassword>,
}

/// `POST …/accounts/{account}/app-passwords`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewAppPassword {
    /// A number verified bound to the account: the phone's.
    msisdn: String,
    /// The phone as the user knows it, at most 100 characters.
    #[serde(default)]
    label: String,
}

/// An app password just made, with the password: shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct CreatedAppPassword {
    app_password: AppPassword,
    /// Four groups of four letters and digits; the phone's mail app takes
    /// it as the account's password.
    password: String,
}

/// The account's app passwords.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/accounts/{account}/app-passwords",
    params(("tenant" = String, Path), ("account" = String, Path)),
    responses((status = 200, body = AppPasswordList)))]
pub(super) async fn list(
    State(api): Shared,
    credential: Credential,
    Path((tenant, account)): Path<(String, String)>,
) -> Reply {
    let response = admin(
        &api,
        &credential,
        pb::ListAppPasswordsRequest {
            tenant_id: tenant,
            account_id: account,
        },
        |mut c, r| async move { c.list_app_passwords(r).await },
    )
    .await?;
    ok(AppPasswordList {
        items: response
            .app_passwords
            .iter()
            .map(AppPassword::from)
            .collect(),
    })
}

/// Make an app password for a phone (the password is shown once); the
/// phone becomes a device of the number.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/accounts/{account}/app-passwords",
    params(("tenant" = String, Path), ("account" = String, Path)),
    request_body = NewAppPassword, responses((status = 201, body = CreatedAppPassword)))]
pub(super) async fn create(
    State(api): Shared,
    credential: Credential,
    Path((tenant, account)): Path<(String, String)>,
    Body(body): Body<NewAppPassword>,
) -> Reply {
    let made = admin(
        &api,
        &credential,
        pb::CreateAppPasswordRequest {
            tenant_id: tenant,
            account_id: account,
            msisdn: body.msisdn,
            label: body.label,
        },
        |mut c, r| async move { c.create_app_password(r).await },
    )
    .await?;
    // Binding always answers with the row; an empty one would show as such.
    let app_password = made.app_password.unwrap_or_default();
    created(CreatedAppPassword {
        app_password: AppPassword::from(&app_password),
        password: made.password,
    })
}

/// Revoke an app password and the device it registered.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/app-passwords/{app_password}/revoke",
    params(("tenant" = String, Path), ("app_password" = String, Path)),
    responses((status = 200, body = AppPassword)))]
pub(super) async fn revoke(
    State(api): Shared,
    credential: Credential,
    Path((tenant, app_password_id)): Path<(String, String)>,
) -> Reply {
    let revoked = admin(
        &api,
        &credential,
        pb::RevokeAppPasswordRequest {
            tenant_id: tenant,
            app_password_id,
        },
        |mut c, r| async move { c.revoke_app_password(r).await },
    )
    .await?;
    ok(AppPassword::from(&revoked))
}

/// Order a remote wipe of the app password's phone: its next request is
/// handed the wipe, and its acknowledgement revokes the password.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/app-passwords/{app_password}/wipe",
    params(("tenant" = String, Path), ("app_password" = String, Path)),
    request_body = WipeOrder, responses((status = 200, body = AppPassword)))]
pub(super) async fn wipe(
    State(api): Shared,
    credential: Credential,
    Path((tenant, app_password_id)): Path<(String, String)>,
    Body(body): Body<WipeOrder>,
) -> Reply {
    let kind = match body.kind {
        WipeKind::Device => pb::WipeKind::Device,
        WipeKind::Account => pb::WipeKind::Account,
    };
    let ordered = admin(
        &api,
        &credential,
        pb::WipeAppPasswordRequest {
            tenant_id: tenant,
            app_password_id,
            kind: kind.into(),
        },
        |mut c, r| async move { c.wipe_app_password(r).await },
    )
    .await?;
    ok(AppPassword::from(&ordered))
}
