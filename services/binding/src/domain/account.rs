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
    /// IMAP accounts: folders watched besides INBOX (raw server names).
    pub watched_folders: Vec<String>,
}

/// Most folders an account has watched besides INBOX: each is a STATUS
/// every poll on the account's one connection.
pub const MAX_WATCHED_FOLDERS: usize = 20;

/// Checks the folders an IMAP account watches besides INBOX: at most
/// [`MAX_WATCHED_FOLDERS`], each 1 to 255 bytes of printable text, not
/// INBOX (always watched); duplicates dropped, order kept.
pub fn watched_folders(names: &[String]) -> Result<Vec<String>, String> {
    if names.len() > MAX_WATCHED_FOLDERS {
        return Err(format!("at most {MAX_WATCHED_FOLDERS} folders"));
    }
    let mut folders: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
            return Err(format!(
                "{name:?}: a folder name is 1 to 255 bytes without control characters"
            ));
        }
        if name.eq_ignore_ascii_case("INBOX") {
            return Err("INBOX is always watched; list the other folders".to_owned());
        }
        if !folders.contains(name) {
            folders.push(name.clone());
        }
    }
    Ok(folders)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watched_folders_are_bounded_named_and_never_inbox() {
        let names = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            watched_folders(&names(&["Work", "&UXZO1mWHTvZZOQ-", "Work"])).unwrap(),
            names(&["Work", "&UXZO1mWHTvZZOQ-"])
        );
        assert!(watched_folders(&[]).unwrap().is_empty());
        for bad in [
            names(&["inbox"]),
            names(&[""]),
            names(&["a\nb"]),
            vec!["x".repeat(256)],
            (0..=MAX_WATCHED_FOLDERS).map(|i| format!("f{i}")).collect(),
        ] {
            assert!(watched_folders(&bad).is_err(), "{bad:?}");
        }
    }
}
