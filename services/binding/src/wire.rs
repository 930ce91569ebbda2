//! Protobuf ↔ domain conversions. Inputs are parsed here into domain types
//! (every rule checked, the failing field named); outputs are built here, so
//! nothing past this module sees a protobuf type. The shared cache stores
//! targets in their protobuf form and comes through here too.

use pushmail_proto::binding::v1 as pb;
use pushmail_proto::common::v1::ContentLevel as PbContentLevel;

use crate::clock::timestamp;
use crate::domain::{
    Account, AccountKind, AddressList, ApiKeyRecord, AppPassword, Binding, BindingState,
    ContentLevel, DeliveryTarget, Device, IdError, MailDomain, Msisdn, NewAccount, NewDevice,
    Preferences, QuietHours, RelayCredential, RelayPolicy, ServerSettings, SubmissionChange,
    TargetDevice, TenantId, TlsMode, TrafficDay, WipeKind,
};
use crate::registry::ApiError;

/// Longest device label.
const MAX_LABEL_CHARS: usize = 100;

/// Parses an id field.
pub(crate) fn id<T>(
    field: &'static str,
    value: &str,
    parse: fn(&str) -> Result<T, IdError>,
) -> Result<T, ApiError> {
    if value.is_empty() {
        return Err(ApiError::invalid(field, "is required"));
    }
    parse(value).map_err(|e| ApiError::invalid(field, e))
}

/// A mailbox name: 1 to 255 bytes, no control characters.
pub(crate) fn mailbox(value: &str) -> Result<&str, ApiError> {
    if value.is_empty() || value.len() > crate::domain::MAX_MAILBOX_NAME {
        return Err(ApiError::invalid("mailbox", "must be 1 to 255 bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "mailbox",
            "must not hold control characters",
        ));
    }
    Ok(value)
}

/// Parses a phone number field.
pub(crate) fn msisdn(field: &'static str, value: &str) -> Result<Msisdn, ApiError> {
    Msisdn::parse(value).map_err(|e| ApiError::invalid(field, e))
}

/// A mail address: trimmed, lowercased, `local@domain.tld`, at most 254 characters.
pub(crate) fn address(field: &'static str, value: &str) -> Result<String, ApiError> {
    let address = value.trim().to_lowercase();
    let bad = |why: &str| Err(ApiError::invalid(field, why));
    if address.is_empty() {
        return bad("is required");
    }
    if address.len() > 254 {
        return bad("is longer than 254 characters");
    }
    let Some((local, domain)) = address.split_once('@') else {
        return bad("must look like user@example.com");
    };
    if local.is_empty()
        || local.len() > 64
        || domain.contains('@')
        || !domain.contains('.')
        || address.contains(char::is_whitespace)
        || domain.split('.').any(str::is_empty)
    {
        return bad("must look like user@example.com");
    }
    Ok(address)
}

fn account_kind(value: i32) -> Result<AccountKind, ApiError> {
    match pb::AccountKind::try_from(value) {
        Ok(pb::AccountKind::ExternalImap) => Ok(AccountKind::ExternalImap),
        Ok(pb::AccountKind::ExternalPop3) => Ok(AccountKind::ExternalPop3),
        Ok(pb::AccountKind::EnterpriseForwarded) => Ok(AccountKind::EnterpriseForwarded),
        Ok(pb::AccountKind::Webhook) => Ok(AccountKind::Webhook),
        _ => Err(ApiError::invalid(
            "kind",
            "must be EXTERNAL_IMAP, EXTERNAL_POP3, ENTERPRISE_FORWARDED or WEBHOOK",
        )),
    }
}

pub(crate) fn kind_to_proto(kind: AccountKind) -> pb::AccountKind {
    match kind {
        AccountKind::ExternalImap => pb::AccountKind::ExternalImap,
        AccountKind::ExternalPop3 => pb::AccountKind::ExternalPop3,
        AccountKind::EnterpriseForwarded => pb::AccountKind::EnterpriseForwarded,
        AccountKind::Webhook => pb::AccountKind::Webhook,
    }
}

/// The names a set of server settings' fields are refused under (an
/// error names a `&'static str` field).
struct SettingsFields {
    host: &'static str,
    port: &'static str,
    tls: &'static str,
    username: &'static str,
}

const SERVER: SettingsFields = SettingsFields {
    host: "server.host",
    port: "server.port",
    tls: "server.tls",
    username: "server.username",
};

const SUBMISSION: SettingsFields = SettingsFields {
    host: "submission.host",
    port: "submission.port",
    tls: "submission.tls",
    username: "submission.username",
};

fn server(settings: Option<&pb::ServerSettings>) -> Result<Option<ServerSettings>, ApiError> {
    server_settings(&SERVER, settings)
}

fn server_settings(
    fields: &SettingsFields,
    settings: Option<&pb::ServerSettings>,
) -> Result<Option<ServerSettings>, ApiError> {
    let Some(settings) = settings else {
        return Ok(None);
    };
    let host = settings.host.trim();
    if host.is_empty() || host.len() > 253 || host.contains(char::is_whitespace) {
        return Err(ApiError::invalid(
            fields.host,
            "must be a host name or address",
        ));
    }
    let port = u16::try_from(settings.port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| ApiError::invalid(fields.port, "must be 1 to 65535"))?;
    let tls = match pb::TlsMode::try_from(settings.tls) {
        Ok(pb::TlsMode::None) => TlsMode::None,
        Ok(pb::TlsMode::Starttls) => TlsMode::StartTls,
        Ok(pb::TlsMode::Implicit) => TlsMode::Implicit,
        _ => {
            return Err(ApiError::invalid(
                fields.tls,
                "must be NONE, STARTTLS or IMPLICIT",
            ));
        }
    };
    if settings.username.len() > 254 {
        return Err(ApiError::invalid(
            fields.username,
            "is longer than 254 characters",
        ));
    }
    Ok(Some(ServerSettings {
        host: host.to_owned(),
        port,
        tls,
        username: settings.username.clone(),
    }))
}

fn server_to_proto(settings: &ServerSettings) -> pb::ServerSettings {
    pb::ServerSettings {
        host: settings.host.clone(),
        port: u32::from(settings.port),
        tls: match settings.tls {
            TlsMode::None => pb::TlsMode::None,
            TlsMode::StartTls => pb::TlsMode::Starttls,
            TlsMode::Implicit => pb::TlsMode::Implicit,
        }
        .into(),
        username: settings.username.clone(),
    }
}

/// A new account; watched kinds need server settings and credentials.
pub(crate) fn new_account(request: &pb::CreateAccountRequest) -> Result<NewAccount, ApiError> {
    let kind = account_kind(request.kind)?;
    let server = server(request.server.as_ref())?;
    let submission = server_settings(&SUBMISSION, request.submission.as_ref())?;
    if submission.is_some() && !kind.may_submit() {
        return Err(ApiError::submission_refused(kind));
    }
    if kind.is_watched() {
        if server.is_none() {
            return Err(ApiError::invalid(
                "server",
                "is required for IMAP and POP3 accounts",
            ));
        }
        if request
            .credentials
            .as_ref()
            .is_none_or(|c| c.password.is_empty())
        {
            return Err(ApiError::invalid(
                "credentials.password",
                "is required for IMAP and POP3 accounts",
            ));
        }
    }
    if request
        .credentials
        .as_ref()
        .is_some_and(|c| c.password.len() > 1_024)
    {
        return Err(ApiError::invalid(
            "credentials.password",
            "is longer than 1024 bytes",
        ));
    }
    Ok(NewAccount {
        address: address("address", &request.address)?,
        kind,
        server,
        submission,
    })
}

/// What `UpdateAccount` changes (at least one of these).
pub(crate) struct AccountUpdate {
    /// New server settings.
    pub(crate) server: Option<ServerSettings>,
    /// The submission settings' fate.
    pub(crate) submission: SubmissionChange,
    /// A new password.
    pub(crate) password: Option<String>,
    /// New folders to watch besides INBOX.
    pub(crate) watched_folders: Option<Vec<String>>,
}

/// What `UpdateAccount` changes: server settings, submission settings, a
/// new password, or several.
pub(crate) fn account_update(
    request: &pb::UpdateAccountRequest,
) -> Result<AccountUpdate, ApiError> {
    let server = server(request.server.as_ref())?;
    let submission = match (
        server_settings(&SUBMISSION, request.submission.as_ref())?,
        request.clear_submission,
    ) {
        (Some(_), true) => {
            return Err(ApiError::invalid(
                "clear_submission",
                "cannot go with submission: set them or clear them",
            ));
        }
        (Some(settings), false) => SubmissionChange::Set(settings),
        (None, true) => SubmissionChange::Clear,
        (None, false) => SubmissionChange::Keep,
    };
    let password = request.credentials.as_ref().map(|c| c.password.clone());
    let watched_folders = request
        .watched_folders
        .as_ref()
        .map(|w| {
            crate::domain::watched_folders(&w.names)
                .map_err(|reason| ApiError::invalid("watched_folders", reason))
        })
        .transpose()?;
    match &password {
        Some(p) if p.is_empty() => {
            return Err(ApiError::invalid(
                "credentials.password",
                "must not be empty (leave credentials out to keep the password)",
            ));
        }
        Some(p) if p.len() > 1_024 => {
            return Err(ApiError::invalid(
                "credentials.password",
                "is longer than 1024 bytes",
            ));
        }
        None if server.is_none()
            && submission == SubmissionChange::Keep
            && watched_folders.is_none() =>
        {
            return Err(ApiError::invalid(
                "server",
                "server, credentials, submission, clear_submission or watched_folders \
                 is required: nothing to change",
            ));
        }
        _ => {}
    }
    Ok(AccountUpdate {
        server,
        submission,
        password,
        watched_folders,
    })
}

/// An account as the API shows it (never its credentials).
pub(crate) fn account(account: &Account) -> pb::Account {
    pb::Account {
        tenant_id: account.tenant_id.to_string(),
        account_id: account.id.to_string(),
        address: account.address.clone(),
        kind: kind_to_proto(account.kind).into(),
        server: account.server.as_ref().map(server_to_proto),
        created_at: Some(timestamp(account.created_at_ms)),
        has_credentials: account.has_credentials,
        submission: account.submission.as_ref().map(server_to_proto),
        watched_folders: account.watched_folders.clone(),
    }
}

/// Ingest's and the mailbox service's view of a watched account, with its
/// password.
pub(crate) fn watched(account: &Account, password: Option<String>) -> pb::WatchedAccount {
    pb::WatchedAccount {
        tenant_id: account.tenant_id.to_string(),
        account_id: account.id.to_string(),
        kind: kind_to_proto(account.kind).into(),
        server: account.server.as_ref().map(server_to_proto),
        credentials: password.map(|password| pb::Credentials { password }),
        address: account.address.clone(),
        submission: account.submission.as_ref().map(server_to_proto),
        submission_credentials: None,
        watched_folders: account.watched_folders.clone(),
    }
}

/// A binding.
pub(crate) fn binding(binding: &Binding) -> pb::Binding {
    pb::Binding {
        tenant_id: binding.tenant_id.to_string(),
        binding_id: binding.id.to_string(),
        account_id: binding.account_id.to_string(),
        msisdn: binding.msisdn.as_str().to_owned(),
        state: match binding.state {
            BindingState::Pending => pb::BindingState::Pending,
            BindingState::Verified => pb::BindingState::Verified,
            BindingState::Revoked => pb::BindingState::Revoked,
        }
        .into(),
        updated_at: Some(timestamp(binding.updated_at_ms)),
    }
}

/// A device's label: trimmed, at most 100 characters, no control characters.
pub(crate) fn label(value: &str) -> Result<String, ApiError> {
    let label = value.trim();
    if label.chars().count() > MAX_LABEL_CHARS {
        return Err(ApiError::invalid("label", "is longer than 100 characters"));
    }
    if label.chars().any(char::is_control) {
        return Err(ApiError::invalid("label", "holds control characters"));
    }
    Ok(label.to_owned())
}

/// A device to register.
pub(crate) fn new_device(request: &pb::RegisterDeviceRequest) -> Result<NewDevice, ApiError> {
    Ok(NewDevice {
        msisdn: msisdn("msisdn", &request.msisdn)?,
        label: label(&request.label)?,
        has_push_client: request.has_push_client,
    })
}

/// A device.
pub(crate) fn device(device: &Device) -> pb::Device {
    pb::Device {
        tenant_id: device.tenant_id.to_string(),
        device_id: device.id.to_string(),
        msisdn: device.msisdn.as_str().to_owned(),
        label: device.label.clone(),
        has_push_client: device.has_push_client,
        revoked: device.revoked_at_ms.is_some(),
        created_at: Some(timestamp(device.created_at_ms)),
    }
}

/// A delivery log entry.
pub(crate) fn delivery(d: &crate::domain::Delivery) -> pb::DeliveryLogEntry {
    pb::DeliveryLogEntry {
        device_id: d.device_id.clone(),
        account_id: d.account.to_string(),
        idempotency_key: d.idempotency_key.clone(),
        channel: d.channel.clone(),
        status: d.status.clone(),
        at: Some(timestamp(d.at_ms)),
        detail: d.detail.clone(),
        sequence: d.sequence,
    }
}

fn content_level(value: i32) -> Result<ContentLevel, ApiError> {
    match PbContentLevel::try_from(value) {
        Ok(PbContentLevel::Notice) => Ok(ContentLevel::Notice),
        Ok(PbContentLevel::SubjectSender) => Ok(ContentLevel::SubjectSender),
        Ok(PbContentLevel::SubjectSenderSnippet) => Ok(ContentLevel::SubjectSenderSnippet),
        _ => Err(ApiError::invalid(
            "content_level",
            "must be NOTICE, SUBJECT_SENDER or SUBJECT_SENDER_SNIPPET",
        )),
    }
}

fn list(field: &'static str, list: Option<&pb::AddressList>) -> Result<AddressList, ApiError> {
    let entries = list.map_or(&[][..], |l| l.entries.as_slice());
    AddressList::parse(entries).map_err(|e| ApiError::invalid(field, e))
}

/// Preferences from the API, fully validated.
pub(crate) fn preferences(input: &pb::Preferences) -> Result<Preferences, ApiError> {
    let quiet_hours = input
        .quiet_hours
        .as_ref()
        .map(|q| QuietHours::new(q.start_minute, q.end_minute, &q.time_zone))
        .transpose()
        .map_err(|e| ApiError::invalid("quiet_hours", e))?;
    let preferences = Preferences {
        content_level: content_level(input.content_level)?,
        max_push_bytes: input.max_push_bytes,
        attachments: input.attachments,
        quiet_hours,
        black_list: list("black_list", input.black_list.as_ref())?,
        white_list: list("white_list", input.white_list.as_ref())?,
        signature: input.signature.clone(),
    };
    preferences
        .validate()
        .map_err(|e| ApiError::invalid("preferences", e))?;
    Ok(preferences)
}

/// Preferences as the API shows them; ids are the caller's to fill.
pub(crate) fn preferences_to_proto(preferences: &Preferences) -> pb::Preferences {
    pb::Preferences {
        tenant_id: String::new(),
        binding_id: String::new(),
        content_level: match preferences.content_level {
            ContentLevel::Notice => PbContentLevel::Notice,
            ContentLevel::SubjectSender => PbContentLevel::SubjectSender,
            ContentLevel::SubjectSenderSnippet => PbContentLevel::SubjectSenderSnippet,
        }
        .into(),
        max_push_bytes: preferences.max_push_bytes,
        attachments: preferences.attachments,
        quiet_hours: preferences.quiet_hours.as_ref().map(|q| pb::QuietHours {
            start_minute: q.start_minute(),
            end_minute: q.end_minute(),
            time_zone: q.zone_name().to_owned(),
        }),
        black_list: Some(pb::AddressList {
            entries: preferences.black_list.entries().to_vec(),
        }),
        white_list: Some(pb::AddressList {
            entries: preferences.white_list.entries().to_vec(),
        }),
        signature: preferences.signature.clone(),
    }
}

/// A delivery target.
pub(crate) fn target(target: &DeliveryTarget) -> pb::DeliveryTarget {
    pb::DeliveryTarget {
        device_id: target.device.map(|d| d.id.to_string()).unwrap_or_default(),
        msisdn: target.msisdn.as_str().to_owned(),
        has_push_client: target.device.is_some_and(|d| d.has_push_client),
        preferences: Some(preferences_to_proto(&target.preferences)),
        binding_id: target.binding_id.to_string(),
    }
}

/// A delivery target read back from the shared cache.
pub(crate) fn target_from_proto(target: &pb::DeliveryTarget) -> Result<DeliveryTarget, ApiError> {
    use crate::domain::{BindingId, DeviceId};
    let device = if target.device_id.is_empty() {
        None
    } else {
        Some(TargetDevice {
            id: id("device_id", &target.device_id, DeviceId::parse)?,
            has_push_client: target.has_push_client,
        })
    };
    Ok(DeliveryTarget {
        binding_id: id("binding_id", &target.binding_id, BindingId::parse)?,
        msisdn: msisdn("msisdn", &target.msisdn)?,
        device,
        preferences: preferences(
            target
                .preferences
                .as_ref()
                .ok_or_else(|| ApiError::invalid("preferences", "missing"))?,
        )?,
    })
}

/// A day of traffic.
pub(crate) fn traffic_day(account: &str, day: &TrafficDay) -> pb::TrafficDay {
    pb::TrafficDay {
        account_id: account.to_owned(),
        day: day.day.to_string(),
        pushed_count: day.traffic.pushed_count,
        pushed_bytes: day.traffic.pushed_bytes,
        fetched_count: day.traffic.fetched_count,
        fetched_bytes: day.traffic.fetched_bytes,
        sms_count: day.traffic.sms_count,
    }
}

/// A `YYYY-MM-DD` day field.
pub(crate) fn day(field: &'static str, value: &str) -> Result<jiff::civil::Date, ApiError> {
    value
        .parse()
        .map_err(|_| ApiError::invalid(field, "must be a date as YYYY-MM-DD"))
}

/// A free-text description field: trimmed, at most 200 characters.
pub(crate) fn description(field: &'static str, value: &str) -> Result<String, ApiError> {
    let value = value.trim();
    if value.chars().count() > 200 || value.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            "must be at most 200 characters, without control characters",
        ));
    }
    Ok(value.to_owned())
}

/// A list of mail domains.
pub(crate) fn domains(field: &'static str, values: &[String]) -> Result<Vec<MailDomain>, ApiError> {
    values
        .iter()
        .map(|d| MailDomain::parse(d).map_err(|e| ApiError::invalid(field, e)))
        .collect()
}

/// An API key as listed, `active` as of `now_ms`.
pub(crate) fn api_key(key: &ApiKeyRecord, now_ms: i64) -> pb::ApiKey {
    pb::ApiKey {
        key_id: key.id.to_string(),
        prefix: key.prefix.clone(),
        description: key.description.clone(),
        created_at: Some(timestamp(key.created_at_ms)),
        expires_at: key.expires_at_ms.map(timestamp),
        revoked_at: key.revoked_at_ms.map(timestamp),
        active: key.is_active(now_ms),
    }
}

/// A relay credential as listed.
pub(crate) fn relay_credential(credential: &RelayCredential) -> pb::RelayCredential {
    pb::RelayCredential {
        credential_id: credential.id.to_string(),
        username: credential.username.clone(),
        description: credential.description.clone(),
        created_at: Some(timestamp(credential.created_at_ms)),
        revoked_at: credential.revoked_at_ms.map(timestamp),
    }
}

/// An app password as listed.
pub(crate) fn app_password(password: &AppPassword) -> pb::AppPassword {
    let client = password.client.as_ref();
    pb::AppPassword {
        app_password_id: password.id.to_string(),
        account_id: password.account_id.to_string(),
        device_id: password.device_id.to_string(),
        msisdn: password.msisdn.as_str().to_owned(),
        label: password.label.clone(),
        created_at: Some(timestamp(password.created_at_ms)),
        client_device_id: client.map(|c| c.id.clone()).unwrap_or_default(),
        client_device_type: client.map(|c| c.kind.clone()).unwrap_or_default(),
        last_used_at: password.last_used_at_ms.map(timestamp),
        revoked_at: password.revoked_at_ms.map(timestamp),
        device_information: Some(pb::DeviceInformation {
            model: password.device_information.model.clone(),
            os: password.device_information.os.clone(),
            friendly_name: password.device_information.friendly_name.clone(),
            user_agent: password.device_information.user_agent.clone(),
            mobile_operator: password.device_information.mobile_operator.clone(),
        }),
        wipe: password
            .wipe
            .map_or(pb::WipeKind::Unspecified, |w| wipe_kind_to_proto(w.kind))
            .into(),
        wipe_ordered_at: password.wipe.map(|w| timestamp(w.ordered_at_ms)),
        wipe_done_at: password.wipe.and_then(|w| w.done_at_ms).map(timestamp),
    }
}

/// A wipe kind as the API names it.
pub(crate) fn wipe_kind_to_proto(kind: WipeKind) -> pb::WipeKind {
    match kind {
        WipeKind::Device => pb::WipeKind::Device,
        WipeKind::Account => pb::WipeKind::Account,
    }
}

/// A wipe kind from the API: one must be named.
pub(crate) fn wipe_kind(kind: i32) -> Result<WipeKind, ApiError> {
    match pb::WipeKind::try_from(kind) {
        Ok(pb::WipeKind::Device) => Ok(WipeKind::Device),
        Ok(pb::WipeKind::Account) => Ok(WipeKind::Account),
        _ => Err(ApiError::invalid(
            "kind",
            "must be WIPE_KIND_DEVICE or WIPE_KIND_ACCOUNT",
        )),
    }
}

/// A relay policy from the API.
pub(crate) fn relay_policy(
    sources: &[String],
    fingerprints: &[String],
) -> Result<RelayPolicy, ApiError> {
    RelayPolicy::parse(sources, fingerprints).map_err(|e| ApiError::invalid(e.field, e.reason))
}

/// A relay policy as the API shows it.
pub(crate) fn relay_policy_to_proto(tenant: TenantId, policy: &RelayPolicy) -> pb::RelayPolicy {
    pb::RelayPolicy {
        tenant_id: tenant.to_string(),
        allowed_sources: policy.sources_text(),
        client_cert_sha256: policy.client_cert_sha256.clone(),
    }
}

/// The outbound relay `SetSubmissionRelay` asks for, with its password
/// when one is given (none: keep the stored one).
pub(crate) fn submission_relay(
    request: &pb::SetSubmissionRelayRequest,
) -> Result<(ServerSettings, Option<pushmail_common::redact::Secret>), ApiError> {
    let server = server(request.server.as_ref())?
        .ok_or_else(|| ApiError::invalid("server", "is required"))?;
    if server.username.is_empty() {
        return Err(ApiError::invalid(
            "server.username",
            "is required: the relay is logged in to with SMTP AUTH",
        ));
    }
    let password = request
        .credentials
        .as_ref()
        .map(|c| c.password.as_str())
        .filter(|p| !p.is_empty());
    if password.is_some_and(|p| p.len() > 1_024) {
        return Err(ApiError::invalid(
            "credentials.password",
            "is longer than 1024 bytes",
        ));
    }
    Ok((
        server,
        password.map(|p| pushmail_common::redact::Secret::new(p.to_owned())),
    ))
}

/// A tenant's outbound relay as the API shows it (never its password).
pub(crate) fn submission_relay_to_proto(
    tenant: TenantId,
    server: Option<&ServerSettings>,
) -> pb::SubmissionRelay {
    pb::SubmissionRelay {
        tenant_id: tenant.to_string(),
        server: server.map(server_to_proto),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_names_are_bounded_printable_text() {
        assert_eq!(mailbox("INBOX").unwrap(), "INBOX");
        assert_eq!(mailbox("收件箱/工作").unwrap(), "收件箱/工作");
        for bad in ["", "in\nbox", "nul\0"] {
            assert!(mailbox(bad).is_err(), "{bad:?}");
        }
        assert!(mailbox(&"x".repeat(255)).is_ok());
        assert!(mailbox(&"x".repeat(256)).is_err());
    }

    #[test]
    fn submission_settings_are_set_cleared_or_kept_never_two_at_once() {
        let smtp = pb::ServerSettings {
            host: " smtp.example.net ".to_owned(),
            port: 587,
            tls: pb::TlsMode::Starttls.into(),
            username: String::new(),
        };
        let update = |submission: Option<pb::ServerSettings>, clear_submission| {
            account_update(&pb::UpdateAccountRequest {
                submission,
                clear_submission,
                ..Default::default()
            })
        };
        let Ok(set) = update(Some(smtp.clone()), false) else {
            panic!("a whole set of settings is a change");
        };
        assert_eq!(
            set.submission,
            SubmissionChange::Set(ServerSettings {
                host: "smtp.example.net".to_owned(),
                port: 587,
                tls: TlsMode::StartTls,
                username: String::new(),
            })
        );
        assert!(matches!(
            update(None, true),
            Ok(AccountUpdate {
                submission: SubmissionChange::Clear,
                server: None,
                password: None,
                watched_folders: None,
            })
        ));
        for (submission, clear, field) in [
            (Some(smtp.clone()), true, "clear_submission"),
            (None, false, "server"),
            (
                Some(pb::ServerSettings {
                    tls: pb::TlsMode::Unspecified.into(),
                    ..smtp.clone()
                }),
                false,
                "submission.tls",
            ),
        ] {
            assert!(
                matches!(update(submission, clear), Err(ApiError::Invalid { field: f, .. }) if f == field),
                "{field}"
            );
        }
    }
}
