//! Mail accounts.

use super::{AccountId, TenantId};

/// How pushmail learns about new mail for an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    /// An external mailbox watched with IMAP IDLE.
    ExternalImap,
    /// An external mailbox polled with POP3.
    ExternalPop3,
    /// An enterprise server forwarding over SMTP/LMTP.
    EnterpriseForwarded,
    /// A mail server pushing events to the webhook.
    Webhook,
}

impl AccountKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExternalImap => "external_imap",
            Self::ExternalPop3 => "external_pop3",
            Self::EnterpriseForwarded => "enterprise_forwarded",
            Self::Webhook => "webhook",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::ExternalImap,
            Self::ExternalPop3,
            Self::EnterpriseForwarded,
            Self::Webhook,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == value)
    }

    /// Whether pushmail connects to the mailbox (and so needs server settings).
    pub fn is_watched(self) -> bool {
        matches!(self, Self::ExternalImap | Self::ExternalPop3)
    }

    /// Whether mail from the phone may go through the account's own
    /// submission server: only kinds with a login of their own to use
    /// there. Forwarded and webhook accounts will send through a tenant
    /// relay instead.
    pub fn may_submit(self) -> bool {
        self.is_watched()
    }
}

/// Transport security to a mail server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain text (test and internal servers only).
    None,
    /// Upgrade with STARTTLS / STLS.
    StartTls,
    /// TLS from the first byte.
    Implicit,
}

impl TlsMode {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::StartTls => "starttls",
            Self::Implicit => "implicit",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        [Self::None, Self::StartTls, Self::Implicit]
            .into_iter()
            .find(|m| m.as_str() == value)
    }
}

/// Where a watched mailbox (or its submission server) lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// Host name.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Transport security.
    pub tls: TlsMode,
    /// Login name (for submission, empty: the mailbox server's).
    pub username: String,
}

/// What an update does to an account's submission settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmissionChange {
    /// Left as they are.
    Keep,
    /// Replaced, all four together.
    Set(ServerSettings),
    /// Removed.
    Clear,
}

/// An account to create; credentials arrive already sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// Mail address, as validated at the edge.
    pub address: String,
    /// How mail is learned about.
    pub kind: AccountKind,
    /// For watched kinds.
    pub server: Option<ServerSettings>,
    /// Where mail from the phone is sent (watched kinds only).
    pub submission: Option<ServerSettings>,
}

/// An account as stored (credentials are never part of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Owner.
    pub tenant_id: TenantId,
    /// Id.
    pub id: AccountId,
    /// Mail address.
    pub address: String,
    /// How mail is learned about.
    pub kind: AccountKind,
    /// For watched kinds.
    pub server: Option<ServerSettings>,
    /// Where mail from the phone is sent, with the same credentials.
    pub submission: Option<ServerSettings>,
    /// Whether sealed credentials are stored.
    pub has_credentials: bool,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
}
