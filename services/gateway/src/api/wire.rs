//! binding's protobuf types as the REST API's JSON, and back. Enums are
//! lowercase words; times are ms since the epoch; write-only fields
//! (passwords) are accepted and never returned.

use pushmail_proto::binding::v1 as pb;
use pushmail_proto::common::v1::ContentLevel;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::reply::ApiError;

fn ms(t: Option<&prost_types::Timestamp>) -> Option<i64> {
    t.map(|t| t.seconds.saturating_mul(1_000) + i64::from(t.nanos / 1_000_000))
}

pub(super) fn kind_name(kind: i32) -> &'static str {
    match pb::AccountKind::try_from(kind).unwrap_or_default() {
        pb::AccountKind::ExternalImap => "external_imap",
        pb::AccountKind::ExternalPop3 => "external_pop3",
        pb::AccountKind::EnterpriseForwarded => "enterprise_forwarded",
        pb::AccountKind::Webhook => "webhook",
        pb::AccountKind::Unspecified => "unspecified",
    }
}

fn kind_of(name: &str) -> Result<pb::AccountKind, ApiError> {
    Ok(match name {
        "external_imap" => pb::AccountKind::ExternalImap,
        "external_pop3" => pb::AccountKind::ExternalPop3,
        "enterprise_forwarded" => pb::AccountKind::EnterpriseForwarded,
        "webhook" => pb::AccountKind::Webhook,
        _ => {
            return Err(ApiError::BadRequest(format!(
                "kind {name:?}: use external_imap, external_pop3, enterprise_forwarded or webhook"
            )));
        }
    })
}

fn tls_name(tls: i32) -> &'static str {
    match pb::TlsMode::try_from(tls).unwrap_or_default() {
        pb::TlsMode::None => "none",
        pb::TlsMode::Starttls => "starttls",
        pb::TlsMode::Implicit | pb::TlsMode::Unspecified => "implicit",
    }
}

fn tls_of(name: &str) -> Result<pb::TlsMode, ApiError> {
    Ok(match name {
        "none" => pb::TlsMode::None,
        "starttls" => pb::TlsMode::Starttls,
        "implicit" => pb::TlsMode::Implicit,
        _ => {
            return Err(ApiError::BadRequest(format!(
                "server.tls {name:?}: use none, starttls or implicit"
            )));
        }
    })
}

pub(super) fn account(a: &pb::Account) -> Value {
    json!({
        "id": a.account_id,
        "tenant_id": a.tenant_id,
        "address": a.address,
        "kind": kind_name(a.kind),
        "server": a.server.as_ref().map(|s| json!({
            "host": s.host, "port": s.port, "tls": tls_name(s.tls), "username": s.username,
        })),
        "has_credentials": a.has_credentials,
        "created_at_ms": ms(a.created_at.as_ref()),
    })
}

pub(super) fn binding(b: &pb::Binding) -> Value {
    let state = match pb::BindingState::try_from(b.state).unwrap_or_default() {
        pb::BindingState::Pending => "pending",
        pb::BindingState::Verified => "verified",
        pb::BindingState::Revoked => "revoked",
        pb::BindingState::Unspecified => "unspecified",
    };
    json!({
        "id": b.binding_id,
        "tenant_id": b.tenant_id,
        "account_id": b.account_id,
        "msisdn": b.msisdn,
        "state": state,
        "updated_at_ms": ms(b.updated_at.as_ref()),
    })
}

pub(super) fn device(d: &pb::Device, online: Option<bool>) -> Value {
    json!({
        "id": d.device_id,
        "tenant_id": d.tenant_id,
        "msisdn": d.msisdn,
        "label": d.label,
        "has_push_client": d.has_push_client,
        "revoked": d.revoked,
        "created_at_ms": ms(d.created_at.as_ref()),
        "online": online,
    })
}

fn level_name(level: i32) -> &'static str {
    match ContentLevel::try_from(level).unwrap_or_default() {
        ContentLevel::Notice => "notice",
        ContentLevel::SubjectSender => "subject_sender",
        ContentLevel::SubjectSenderSnippet | ContentLevel::Unspecified => "subject_sender_snippet",
    }
}

pub(super) fn preferences(p: &pb::Preferences) -> Value {
    let list =
        |l: &Option<pb::AddressList>| l.as_ref().map(|l| l.entries.clone()).unwrap_or_default();
    json!({
        "binding_id": p.binding_id,
        "content_level": level_name(p.content_level),
        "max_push_bytes": p.max_push_bytes,
        "attachments": p.attachments,
        "quiet_hours": p.quiet_hours.as_ref().map(|q| json!({
            "start_minute": q.start_minute, "end_minute": q.end_minute, "time_zone": q.time_zone,
        })),
        "black_list": list(&p.black_list),
        "white_list": list(&p.white_list),
        "signature": p.signature,
    })
}

pub(super) fn delivery(d: &pb::DeliveryLogEntry) -> Value {
    json!({
        "device_id": d.device_id,
        "idempotency_key": d.idempotency_key,
        "channel": d.channel,
        "status": d.status,
        "detail": d.detail,
        "sequence": d.sequence,
        "at_ms": ms(d.at.as_ref()),
    })
}

pub(super) fn traffic_day(d: &pb::TrafficDay) -> Value {
    json!({
        "account_id": d.account_id,
        "day": d.day,
        "pushed_count": d.pushed_count,
        "pushed_bytes": d.pushed_bytes,
        "fetched_count": d.fetched_count,
        "fetched_bytes": d.fetched_bytes,
        "sms_count": d.sms_count,
    })
}

/// `POST …/accounts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewAccount {
    address: String,
    kind: String,
    server: Option<NewServer>,
    /// Write-only.
    password: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewServer {
    host: String,
    port: u32,
    tls: String,
    username: String,
}

impl NewServer {
    fn into_proto(self) -> Result<pb::ServerSettings, ApiError> {
        Ok(pb::ServerSettings {
            host: self.host,
            port: self.port,
            tls: tls_of(&self.tls)?.into(),
            username: self.username,
        })
    }
}

impl NewAccount {
    pub(super) fn into_request(self, tenant: &str) -> Result<pb::CreateAccountRequest, ApiError> {
        let server = self.server.map(NewServer::into_proto).transpose()?;
        Ok(pb::CreateAccountRequest {
            tenant_id: tenant.to_owned(),
            address: self.address,
            kind: kind_of(&self.kind)?.into(),
            server,
            credentials: self.password.map(|password| pb::Credentials { password }),
        })
    }
}

/// `PATCH …/accounts/{account}`: new server settings, a new password, or both.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AccountChange {
    server: Option<NewServer>,
    /// Write-only.
    password: Option<String>,
}

impl AccountChange {
    pub(super) fn into_request(
        self,
        tenant: &str,
        account: &str,
    ) -> Result<pb::UpdateAccountRequest, ApiError> {
        let server = self.server.map(NewServer::into_proto).transpose()?;
        Ok(pb::UpdateAccountRequest {
            tenant_id: tenant.to_owned(),
            account_id: account.to_owned(),
            server,
            credentials: self.password.map(|password| pb::Credentials { password }),
        })
    }
}

/// A registered device with its token (shown this once).
pub(super) fn registered(r: &pb::RegisterDeviceResponse) -> Value {
    json!({
        "device": r.device.as_ref().map(|d| device(d, None)),
        "token": r.device_token,
        "token_expires_at_ms": ms(r.token_expires_at.as_ref()),
    })
}

/// One SMS of the outbox.
pub(super) fn sms(m: &pb::OutboundSms) -> Value {
    json!({
        "id": m.sms_id,
        "tenant_id": m.tenant_id,
        "msisdn": m.msisdn,
        "purpose": m.purpose,
        "kind": m.kind,
        "text": m.text,
        "url": m.url,
        "account_id": m.account_id,
        "device_id": m.device_id,
        "at_ms": ms(m.at.as_ref()),
    })
}

/// `PUT …/preferences`: the whole set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewPreferences {
    content_level: String,
    max_push_bytes: u32,
    attachments: bool,
    quiet_hours: Option<NewQuietHours>,
    #[serde(default)]
    black_list: Vec<String>,
    #[serde(default)]
    white_list: Vec<String>,
    #[serde(default)]
    signature: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewQuietHours {
    start_minute: u32,
    end_minute: u32,
    time_zone: String,
}

impl NewPreferences {
    pub(super) fn into_request(
        self,
        tenant: &str,
        binding: &str,
    ) -> Result<pb::UpdatePreferencesRequest, ApiError> {
        let content_level = match self.content_level.as_str() {
            "notice" => ContentLevel::Notice,
            "subject_sender" => ContentLevel::SubjectSender,
            "subject_sender_snippet" => ContentLevel::SubjectSenderSnippet,
            other => {
                return Err(ApiError::BadRequest(format!(
                    "content_level {other:?}: use notice, subject_sender or subject_sender_snippet"
                )));
            }
        };
        Ok(pb::UpdatePreferencesRequest {
            preferences: Some(pb::Preferences {
                tenant_id: tenant.to_owned(),
                binding_id: binding.to_owned(),
                content_level: content_level.into(),
                max_push_bytes: self.max_push_bytes,
                attachments: self.attachments,
                quiet_hours: self.quiet_hours.map(|q| pb::QuietHours {
                    start_minute: q.start_minute,
                    end_minute: q.end_minute,
                    time_zone: q.time_zone,
                }),
                black_list: Some(pb::AddressList {
                    entries: self.black_list,
                }),
                white_list: Some(pb::AddressList {
                    entries: self.white_list,
                }),
                signature: self.signature,
            }),
        })
    }
}

/// `POST /api/v1/tenants` (operators).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewTenant {
    pub(super) name: String,
    pub(super) max_accounts: u32,
    pub(super) sms_per_day: u32,
    #[serde(default)]
    pub(super) push_per_minute: u32,
    /// Mail domains the tenant owns.
    #[serde(default)]
    pub(super) domains: Vec<String>,
    /// Verification codes per UTC day (0: the platform default).
    #[serde(default)]
    pub(super) codes_per_day: u32,
    /// IANA zone of the tenant's traffic and SMS days (empty: UTC).
    #[serde(default)]
    pub(super) time_zone: String,
}
