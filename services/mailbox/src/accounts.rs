//! Where an account's mail lives and how to log in there, as binding says
//! (`GetAccountAccess`, the mailbox service's credential only).

use async_trait::async_trait;
use pushmail_common::grpc::TracedChannel;
use pushmail_common::redact::Secret;
use pushmail_common::upstream::Security;
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::binding::v1::binding_service_client::BindingServiceClient;
use tonic::Code;

use crate::domain::Address;
use crate::imap::ImapAccount;
use crate::local::Owner;
use crate::submit::SubmissionAccount;

/// Where an account's mail is read and written, and sent from.
#[derive(Debug, Clone)]
pub struct Access {
    /// The account's own address: the sender of what the phone sends.
    pub address: Address,
    /// Where its mail lives.
    pub store: Store,
    /// Where its mail is sent, when configured.
    pub submission: Option<SubmissionAccount>,
}

/// Where an account's mail lives.
#[derive(Debug, Clone)]
pub enum Store {
    /// Upstream, on the provider's IMAP server.
    Imap(ImapAccount),
    /// In the platform's own store (forwarded, webhook and POP3 accounts:
    /// see `local`), under its owner.
    Local(Owner),
}

/// An account's access could not be had.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// No such account for the tenant.
    #[error("no such account")]
    Unknown,
    /// The account's settings do not say how to reach its mail (an IMAP
    /// account without server or credentials, a bad port).
    #[error("this account's mailbox cannot be opened: {0}")]
    Unservable(String),
    /// Binding could not be asked.
    #[error("binding is unavailable")]
    Unavailable(#[source] tonic::Status),
}

/// Looks accounts up.
#[async_trait]
pub trait Accounts: Send + Sync {
    /// How to open `tenant`'s `account`.
    async fn access(&self, tenant: &str, account: &str) -> Result<Access, AccountError>;
}

/// Binding over gRPC.
#[derive(Debug, Clone)]
pub struct BindingAccounts(pub TracedChannel);

#[async_trait]
impl Accounts for BindingAccounts {
    async fn access(&self, tenant: &str, account: &str) -> Result<Access, AccountError> {
        let answer = BindingServiceClient::new(self.0.clone())
            .get_account_access(pb::GetAccountAccessRequest {
                tenant_id: tenant.to_owned(),
                account_id: account.to_owned(),
            })
            .await
            .map_err(|status| match status.code() {
                Code::NotFound => AccountError::Unknown,
                Code::FailedPrecondition => AccountError::Unservable(status.message().to_owned()),
                _ => AccountError::Unavailable(status),
            })?
            .into_inner();
        let owner = Owner {
            tenant: tenant.to_owned(),
            account: account.to_owned(),
        };
        access(owner, answer)
    }
}

/// The proto answer as our domain's access.
fn access(owner: Owner, watched: pb::WatchedAccount) -> Result<Access, AccountError> {
    let address = Address {
        name: String::new(),
        address: watched.address.clone(),
    };
    let password = watched
        .credentials
        .as_ref()
        .map(|c| c.password.clone())
        .filter(|p| !p.is_empty())
        .map(Secret::new);
    let login = watched.server.as_ref().map(|s| s.username.clone());
    // The account's own submission server, logged in to as its mailbox
    // is unless told otherwise; or, for a forwarded or webhook account
    // (no login of its own), its tenant's relay with the relay's login.
    let submission_password = watched
        .submission_credentials
        .as_ref()
        .map(|c| c.password.clone())
        .filter(|p| !p.is_empty())
        .map(Secret::new)
        .or_else(|| password.clone());
    let submission = match (&watched.submission, &submission_password) {
        (Some(s), Some(password)) => Some(SubmissionAccount {
            security: security(s.tls())?,
            port: port(s.port)?,
            host: s.host.clone(),
            username: if s.username.is_empty() {
                login.clone().unwrap_or_default()
            } else {
                s.username.clone()
            },
            password: password.clone(),
        }),
        _ => None,
    };
    let store = match watched.kind() {
        pb::AccountKind::ExternalImap => {
            let server = watched
                .server
                .ok_or_else(|| AccountError::Unservable("no server settings".to_owned()))?;
            Store::Imap(ImapAccount {
                security: security(server.tls())?,
                port: port(server.port)?,
                host: server.host,
                username: server.username,
                password: password
                    .ok_or_else(|| AccountError::Unservable("no credentials".to_owned()))?,
            })
        }
        pb::AccountKind::ExternalPop3
        | pb::AccountKind::EnterpriseForwarded
        | pb::AccountKind::Webhook => Store::Local(owner),
        pb::AccountKind::Unspecified => {
            return Err(AccountError::Unservable(
                "the account's kind is unknown".to_owned(),
            ));
        }
    };
    Ok(Access {
        address,
        store,
        submission,
    })
}

fn port(port: u32) -> Result<u16, AccountError> {
    u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| AccountError::Unservable(format!("port {port} is not a port")))
}

fn security(tls: pb::TlsMode) -> Result<Security, AccountError> {
    match tls {
        pb::TlsMode::None => Ok(Security::None),
        pb::TlsMode::Starttls => Ok(Security::StartTls),
        pb::TlsMode::Implicit => Ok(Security::Implicit),
        pb::TlsMode::Unspecified => Err(AccountError::Unservable("no TLS mode".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Owner {
        Owner {
            tenant: "t".into(),
            account: "a".into(),
        }
    }

    fn imap() -> pb::WatchedAccount {
        pb::WatchedAccount {
            tenant_id: "t".into(),
            account_id: "a".into(),
            address: "me@example.net".into(),
            submission: Some(pb::ServerSettings {
                host: "smtp.example.net".into(),
                port: 587,
                tls: pb::TlsMode::Starttls.into(),
                username: String::new(),
            }),
            kind: pb::AccountKind::ExternalImap.into(),
            server: Some(pb::ServerSettings {
                host: "imap.example.net".into(),
                port: 993,
                tls: pb::TlsMode::Implicit.into(),
                username: "u".into(),
            }),
            credentials: Some(pb::Credentials {
                password: "p".into(),
            }),
            submission_credentials: None,
            watched_folders: Vec::new(),
        }
    }

    #[test]
    fn an_imap_account_opens_upstream() {
        let access = access(owner(), imap()).unwrap();
        let Store::Imap(account) = &access.store else {
            panic!("{:?}", access.store);
        };
        assert_eq!(
            (account.host.as_str(), account.port, account.security),
            ("imap.example.net", 993, Security::Implicit)
        );
        assert_eq!(account.password.expose(), "p");
        assert_eq!(access.address.address, "me@example.net");
        // Submission logs in as the mailbox does unless told otherwise.
        let submission = access.submission.unwrap();
        assert_eq!(
            (
                submission.host.as_str(),
                submission.port,
                submission.security
            ),
            ("smtp.example.net", 587, Security::StartTls)
        );
        assert_eq!(submission.username, "u");
        assert_eq!(submission.password.expose(), "p");
    }

    #[test]
    fn accounts_without_a_server_of_their_own_are_in_the_local_store() {
        let mut pop3 = imap();
        pop3.kind = pb::AccountKind::ExternalPop3.into();
        pop3.server.as_mut().unwrap().port = 995;
        let opened = access(owner(), pop3).unwrap();
        assert!(matches!(&opened.store, Store::Local(o) if *o == owner()));
        // A POP3 account sends through its own submission server.
        assert_eq!(opened.submission.unwrap().username, "u");
        for kind in [
            pb::AccountKind::EnterpriseForwarded,
            pb::AccountKind::Webhook,
        ] {
            let forwarded = pb::WatchedAccount {
                tenant_id: "t".into(),
                account_id: "a".into(),
                address: "me@corp.example".into(),
                kind: kind.into(),
                ..Default::default()
            };
            let opened = access(owner(), forwarded.clone()).unwrap();
            assert!(matches!(&opened.store, Store::Local(o) if *o == owner()));
            assert_eq!(opened.address.address, "me@corp.example");
            assert!(opened.submission.is_none(), "no tenant relay: cannot send");
            // With the tenant's relay, it sends as the relay's user.
            let relayed = pb::WatchedAccount {
                submission: Some(pb::ServerSettings {
                    host: "relay.corp.example".into(),
                    port: 465,
                    tls: pb::TlsMode::Implicit.into(),
                    username: "relay-user".into(),
                }),
                submission_credentials: Some(pb::Credentials {
                    password: "relay-secret".into(),
                }),
                ..forwarded
            };
            let relay = access(owner(), relayed).unwrap().submission.unwrap();
            assert_eq!(
                (relay.host.as_str(), relay.port, relay.security),
                ("relay.corp.example", 465, Security::Implicit)
            );
            assert_eq!(relay.username, "relay-user");
            assert_eq!(relay.password.expose(), "relay-secret");
        }
    }

    #[test]
    fn what_cannot_be_opened_says_why() {
        let mut no_password = imap();
        no_password.credentials = None;
        let mut bad_port = imap();
        bad_port.server.as_mut().unwrap().port = 70_000;
        let mut no_server = imap();
        no_server.server = None;
        let mut unknown = imap();
        unknown.kind = pb::AccountKind::Unspecified.into();
        for (watched, why) in [
            (no_password, "no credentials"),
            (bad_port, "70000"),
            (no_server, "no server"),
            (unknown, "kind"),
        ] {
            match access(owner(), watched) {
                Err(AccountError::Unservable(text)) => assert!(text.contains(why), "{text}"),
                other => panic!("{other:?}"),
            }
        }
    }
}
