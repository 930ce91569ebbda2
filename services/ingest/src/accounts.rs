//! The mailboxes ingest watches, as binding lists them
//! (`ListWatchedAccounts`, with the internal token and opened credentials).

use pushmail_common::grpc::TracedChannel;
use pushmail_common::redact::Secret;
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::binding::v1::binding_service_client::BindingServiceClient;
use pushmail_proto::common::v1::PageRequest;

use crate::tls::Security;

/// An external mailbox and how to log in to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailAccount {
    /// Owner.
    pub tenant: String,
    /// Account id.
    pub account: String,
    /// Server host name (checked against its certificate).
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Transport security.
    pub security: Security,
    /// Login.
    pub username: String,
    /// Password.
    pub password: Secret,
    /// IMAP: folders watched besides INBOX (raw server names).
    pub folders: Vec<String>,
}

/// An account as binding describes it, if it is a usable one of `kind`.
fn usable(watched: pb::WatchedAccount, kind: pb::AccountKind) -> Option<MailAccount> {
    if watched.kind() != kind {
        return None;
    }
    let server = watched.server?;
    let security = match server.tls() {
        pb::TlsMode::None => Security::None,
        pb::TlsMode::Starttls => Security::StartTls,
        pb::TlsMode::Implicit => Security::Implicit,
        pb::TlsMode::Unspecified => return None,
    };
    Some(MailAccount {
        tenant: watched.tenant_id,
        account: watched.account_id,
        host: server.host,
        port: u16::try_from(server.port).ok()?,
        security,
        username: server.username,
        password: Secret::new(watched.credentials?.password),
        folders: watched.watched_folders,
    })
}

/// Every usable account of `kind`, all pages.
pub async fn watched(
    binding: &TracedChannel,
    kind: pb::AccountKind,
) -> Result<Vec<MailAccount>, tonic::Status> {
    let mut client = BindingServiceClient::new(binding.clone());
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = client
            .list_watched_accounts(pb::ListWatchedAccountsRequest {
                page: Some(PageRequest {
                    page_size: 1_000,
                    cursor: cursor.clone(),
                }),
            })
            .await?
            .into_inner();
        out.extend(page.accounts.into_iter().filter_map(|w| usable(w, kind)));
        cursor = page.page.map(|p| p.next_cursor).unwrap_or_default();
        if cursor.is_empty() {
            return Ok(out);
        }
    }
}
