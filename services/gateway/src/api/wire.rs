//! binding's protobuf types as the REST API's JSON, and back. Enums are
//! lowercase words; times are ms since the epoch; write-only fields
//! (passwords) are accepted and never returned. Each type's schema in the
//! OpenAPI document is derived from it, so the two cannot differ.

use pushmail_proto::binding::v1 as pb;
use pushmail_proto::common::v1::ContentLevel;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub(super) fn ms(t: Option<&prost_types::Timestamp>) -> Option<i64> {
    t.map(|t| t.seconds.saturating_mul(1_000) + i64::from(t.nanos / 1_000_000))
}

/// How ingest learns of an account's mail.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum AccountKind {
    ExternalImap,
    ExternalPop3,
    EnterpriseForwarded,
    Webhook,
    /// Only ever answered, for a kind this gateway does not know yet.
    Unspecified,
}

impl AccountKind {
    fn of(kind: i32) -> Self {
        match pb::AccountKind::try_from(kind).unwrap_or_default() {
            pb::AccountKind::ExternalImap => Self::ExternalImap,
            pb::AccountKind::ExternalPop3 => Self::ExternalPop3,
            pb::AccountKind::EnterpriseForwarded => Self::EnterpriseForwarded,
            pb::AccountKind::Webhook => Self::Webhook,
            pb::AccountKind::Unspecified => Self::Unspecified,
        }
    }

    fn proto(self) -> pb::AccountKind {
        match self {
            Self::ExternalImap => pb::AccountKind::ExternalImap,
            Self::ExternalPop3 => pb::AccountKind::ExternalPop3,
            Self::EnterpriseForwarded => pb::AccountKind::EnterpriseForwarded,
            Self::Webhook => pb::AccountKind::Webhook,
            Self::Unspecified => pb::AccountKind::Unspecified,
        }
    }
}

/// TLS towards a mailbox server.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum Tls {
    None,
    Starttls,
    Implicit,
}

impl Tls {
    fn of(tls: i32) -> Self {
        match pb::TlsMode::try_from(tls).unwrap_or_default() {
            pb::TlsMode::None => Self::None,
            pb::TlsMode::Starttls => Self::Starttls,
            pb::TlsMode::Implicit | pb::TlsMode::Unspecified => Self::Implicit,
        }
    }

    fn proto(self) -> pb::TlsMode {
        match self {
            Self::None => pb::TlsMode::None,
            Self::Starttls => pb::TlsMode::Starttls,
            Self::Implicit => pb::TlsMode::Implicit,
        }
    }
}

/// An IMAP/POP3 account's mailbox server, or its submission server.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Server {
    host: String,
    port: u32,
    tls: Tls,
    username: String,
}

impl Server {
    pub(super) fn of(s: &pb::ServerSettings) -> Self {
        Self {
            host: s.host.clone(),
            port: s.port,
            tls: Tls::of(s.tls),
            username: s.username.clone(),
        }
    }

    pub(super) fn into_proto(self) -> pb::ServerSettings {
        pb::ServerSettings {
            host: self.host,
            port: self.port,
            tls: self.tls.proto().into(),
            username: self.username,
        }
    }
}

/// A mail account of a tenant.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Account {
    id: String,
    tenant_id: String,
    address: String,
    kind: AccountKind,
    server: Option<Server>,
    /// Where mail from the phone is sent (SMTP submission), logging in with
    /// the account's password; null when none is set. An empty username
    /// is the same login as the server's.
    submission: Option<Server>,
    /// Whether a password is stored (it is never returned).
    has_credentials: bool,
    created_at_ms: Option<i64>,
    /// IMAP accounts: folders whose new mail is pushed besides INBOX.
    watched_folders: Vec<String>,
}

impl From<&pb::Account> for Account {
    fn from(a: &pb::Account) -> Self {
        Self {
            id: a.account_id.clone(),
            tenant_id: a.tenant_id.clone(),
            address: a.address.clone(),
            kind: AccountKind::of(a.kind),
            server: a.server.as_ref().map(Server::of),
            submission: a.submission.as_ref().map(Server::of),
            has_credentials: a.has_credentials,
            created_at_ms: ms(a.created_at.as_ref()),
            watched_folders: a.watched_folders.clone(),
        }
    }
}

/// Where a number's binding to an account stands.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum BindingState {
    Pending,
    Verified,
    Revoked,
    Unspecified,
}

/// A phone number bound to an account.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Binding {
    id: String,
    tenant_id: String,
    account_id: String,
    msisdn: String,
    state: BindingState,
    updated_at_ms: Option<i64>,
}

impl From<&pb::Binding> for Binding {
    fn from(b: &pb::Binding) -> Self {
        let state = match pb::BindingState::try_from(b.state).unwrap_or_default() {
            pb::BindingState::Pending => BindingState::Pending,
            pb::BindingState::Verified => BindingState::Verified,
            pb::BindingState::Revoked => BindingState::Revoked,
            pb::BindingState::Unspecified => BindingState::Unspecified,
        };
        Self {
            id: b.binding_id.clone(),
            tenant_id: b.tenant_id.clone(),
            account_id: b.account_id.clone(),
            msisdn: b.msisdn.clone(),
            state,
            updated_at_ms: ms(b.updated_at.as_ref()),
        }
    }
}

/// A phone registered on a number.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Device {
    id: String,
    tenant_id: String,
    msisdn: String,
    label: String,
    has_push_client: bool,
    revoked: bool,
    created_at_ms: Option<i64>,
    /// Connected to a session node now; null when unknown.
    online: Option<bool>,
}

impl Device {
    pub(super) fn of(d: &pb::Device, online: Option<bool>) -> Self {
        Self {
            id: d.device_id.clone(),
            tenant_id: d.tenant_id.clone(),
            msisdn: d.msisdn.clone(),
            label: d.label.clone(),
            has_push_client: d.has_push_client,
            revoked: d.revoked,
            created_at_ms: ms(d.created_at.as_ref()),
            online,
        }
    }
}

/// How much of a mail a push carries.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum Level {
    Notice,
    SubjectSender,
    SubjectSenderSnippet,
}

/// When pushes wait, in the binding's time zone; may cross midnight.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct QuietHours {
    /// Minutes after midnight.
    start_minute: u32,
    end_minute: u32,
    /// An IANA zone, e.g. Asia/Shanghai.
    time_zone: String,
}

/// A binding's push preferences.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Preferences {
    binding_id: String,
    content_level: Level,
    max_push_bytes: u32,
    attachments: bool,
    quiet_hours: Option<QuietHours>,
    black_list: Vec<String>,
    white_list: Vec<String>,
    signature: String,
}

impl From<&pb::Preferences> for Preferences {
    fn from(p: &pb::Preferences) -> Self {
        let list =
            |l: &Option<pb::AddressList>| l.as_ref().map(|l| l.entries.clone()).unwrap_or_default();
        let content_level = match ContentLevel::try_from(p.content_level).unwrap_or_default() {
            ContentLevel::Notice => Level::Notice,
            ContentLevel::SubjectSender => Level::SubjectSender,
            ContentLevel::SubjectSenderSnippet | ContentLevel::Unspecified => {
                Level::SubjectSenderSnippet
            }
        };
        Self {
            binding_id: p.binding_id.clone(),
            content_level,
            max_push_bytes: p.max_push_bytes,
            attachments: p.attachments,
            quiet_hours: p.quiet_hours.as_ref().map(|q| QuietHours {
                start_minute: q.start_minute,
                end_minute: q.end_minute,
                time_zone: q.time_zone.clone(),
            }),
            black_list: list(&p.black_list),
            white_list: list(&p.white_list),
            signature: p.signature.clone(),
        }
    }
}

/// One entry of an account's delivery log.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Delivery {
    device_id: String,
    idempotency_key: String,
    /// held_connection, replay, sms_wake_up, sms_notice or unspecified.
    channel: String,
    /// acked, queued, sms_submitted, sms_delivered, failed, suppressed,
    /// deferred or unspecified.
    status: String,
    detail: String,
    sequence: u64,
    at_ms: Option<i64>,
}

impl From<&pb::DeliveryLogEntry> for Delivery {
    fn from(d: &pb::DeliveryLogEntry) -> Self {
        Self {
            device_id: d.device_id.clone(),
            idempotency_key: d.idempotency_key.clone(),
            channel: d.channel.clone(),
            status: d.status.clone(),
            detail: d.detail.clone(),
            sequence: d.sequence,
            at_ms: ms(d.at.as_ref()),
        }
    }
}

/// An account's pushes, fetches and SMS on one day.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TrafficDay {
    account_id: String,
    /// YYYY-MM-DD.
    day: String,
    pushed_count: u64,
    pushed_bytes: u64,
    fetched_count: u64,
    fetched_bytes: u64,
    sms_count: u64,
}

impl From<&pb::TrafficDay> for TrafficDay {
    fn from(d: &pb::TrafficDay) -> Self {
        Self {
            account_id: d.account_id.clone(),
            day: d.day.clone(),
            pushed_count: d.pushed_count,
            pushed_bytes: d.pushed_bytes,
            fetched_count: d.fetched_count,
            fetched_bytes: d.fetched_bytes,
            sms_count: d.sms_count,
        }
    }
}

/// Traffic per day.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Traffic {
    pub(super) days: Vec<TrafficDay>,
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Page<T> {
    pub(super) items: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last.
    pub(super) next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub(super) fn of(
        items: Vec<T>,
        next: Option<pushmail_proto::common::v1::PageResponse>,
    ) -> Self {
        Self {
            items,
            next_cursor: next.map(|p| p.next_cursor).filter(|c| !c.is_empty()),
        }
    }
}

/// `POST …/accounts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewAccount {
    address: String,
    kind: AccountKind,
    /// Required for IMAP and POP3 accounts.
    server: Option<Server>,
    /// Optional, IMAP and POP3 accounts only: the SMTP submission server
    /// (587 starttls or 465 implicit), logged in to with the same password.
    /// An empty username is the same login as the server's.
    submission: Option<Server>,
    /// Write-only.
    #[schema(write_only)]
    password: Option<String>,
}

impl NewAccount {
    pub(super) fn into_request(self, tenant: &str) -> pb::CreateAccountRequest {
        pb::CreateAccountRequest {
            tenant_id: tenant.to_owned(),
            address: self.address,
            kind: self.kind.proto().into(),
            server: self.server.map(Server::into_proto),
            credentials: self.password.map(|password| pb::Credentials { password }),
            submission: self.submission.map(Server::into_proto),
        }
    }
}

/// `PATCH …/accounts/{account}`: new server settings, new submission
/// settings (or their removal), a new password, or several (at least one).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AccountChange {
    server: Option<Server>,
    /// Replaces the submission settings, all four (IMAP and POP3 accounts
    /// only). An empty username is the same login as the server's.
    submission: Option<Server>,
    /// Removes the submission settings; not together with `submission`.
    #[serde(default)]
    clear_submission: bool,
    /// IMAP accounts: replaces the folders watched besides INBOX (raw
    /// server names; at most 20; `[]`: INBOX only).
    watched_folders: Option<Vec<String>>,
    /// Write-only.
    #[schema(write_only)]
    password: Option<String>,
}

impl AccountChange {
    pub(super) fn into_request(self, tenant: &str, account: &str) -> pb::UpdateAccountRequest {
        pb::UpdateAccountRequest {
            tenant_id: tenant.to_owned(),
            account_id: account.to_owned(),
            server: self.server.map(Server::into_proto),
            credentials: self.password.map(|password| pb::Credentials { password }),
            submission: self.submission.map(Server::into_proto),
            clear_submission: self.clear_submission,
            watched_folders: self
                .watched_folders
                .map(|names| pb::WatchedFolders { names }),
        }
    }
}

/// `PUT …/preferences`: the whole set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewPreferences {
    content_level: Level,
    max_push_bytes: u32,
    attachments: bool,
    quiet_hours: Option<QuietHours>,
    #[serde(default)]
    black_list: Vec<String>,
    /// Wins over the black list.
    #[serde(default)]
    white_list: Vec<String>,
    #[serde(default)]
    signature: String,
}

impl NewPreferences {
    pub(super) fn into_request(self, tenant: &str, binding: &str) -> pb::UpdatePreferencesRequest {
        let content_level = match self.content_level {
            Level::Notice => ContentLevel::Notice,
            Level::SubjectSender => ContentLevel::SubjectSender,
            Level::SubjectSenderSnippet => ContentLevel::SubjectSenderSnippet,
        };
        pb::UpdatePreferencesRequest {
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
        }
    }
}

/// `POST /api/v1/tenants` (operators).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewTenant {
    pub(super) name: String,
    pub(super) max_accounts: u32,
    pub(super) sms_per_day: u32,
    /// 0: no limit.
    #[serde(default)]
    pub(super) push_per_minute: u32,
    /// Mail domains the tenant owns.
    #[serde(default)]
    pub(super) domains: Vec<String>,
    /// Verification codes per UTC day, apart from sms_per_day (0: the platform default).
    #[serde(default)]
    pub(super) codes_per_day: u32,
    /// IANA zone of the tenant's traffic and SMS days (empty: UTC).
    #[serde(default)]
    pub(super) time_zone: String,
}

/// A new tenant and its first API key (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct CreatedTenant {
    pub(super) tenant_id: String,
    pub(super) api_key: String,
}

/// Who a credential is.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum Role {
    Tenant,
    Operator,
}

/// The caller: an operator, or which tenant.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Me {
    pub(super) role: Role,
    /// Null for operators.
    pub(super) tenant_id: Option<String>,
    /// Whether the platform keeps an SMS outbox (no SMS centre): /sms answers.
    pub(super) sms_outbox: bool,
}
