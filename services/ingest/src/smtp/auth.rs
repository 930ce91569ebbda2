//! Who may deliver a tenant's mail: SMTP AUTH (RFC 4954, PLAIN and LOGIN,
//! only over TLS) with the tenant's relay credentials, checked by binding
//! (`AuthenticateRelay`); a client certificate whose fingerprint the
//! tenant's relay policy names; or a source network the policy allows.
//! The way a recipient was authorised is also the mail's *origin*: the
//! idempotency key of a mail identified by its Message-ID includes it, so
//! a mail sent first from elsewhere with a genuine mail's Message-ID
//! cannot make the genuine one look like a duplicate.

use std::net::IpAddr;

use async_trait::async_trait;
use base64::Engine as _;
use pushmail_common::egress::Cidr;
use pushmail_common::grpc::TracedChannel;
use pushmail_common::redact::Secret;
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::binding::v1::binding_service_client::BindingServiceClient;

/// A SASL response that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum SaslError {
    /// Not base64, not UTF-8, or not the mechanism's shape.
    #[error("malformed authentication response")]
    Malformed,
    /// The client sent `*`.
    #[error("authentication cancelled")]
    Cancelled,
}

/// Credentials a client presented.
#[derive(Debug, Clone)]
pub(crate) struct Login {
    /// Relay username.
    pub username: String,
    /// Relay password.
    pub password: Secret,
}

fn text(b64: &str) -> Result<String, SaslError> {
    let b64 = b64.trim();
    if b64 == "*" {
        return Err(SaslError::Cancelled);
    }
    if b64 == "=" {
        return Ok(String::new());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| SaslError::Malformed)?;
    String::from_utf8(bytes).map_err(|_| SaslError::Malformed)
}

/// `PLAIN` (RFC 4616): `authzid NUL authcid NUL passwd`; an authorisation
/// identity other than the user itself is refused (a relay acts as itself).
pub(super) fn plain(response: &str) -> Result<Login, SaslError> {
    let decoded = text(response)?;
    let mut parts = decoded.split('\0');
    let (Some(authzid), Some(username), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    if username.is_empty() || (!authzid.is_empty() && authzid != username) {
        return Err(SaslError::Malformed);
    }
    Ok(Login {
        username: username.to_owned(),
        password: Secret::new(password),
    })
}

/// `LOGIN`: the username and the password, each its own base64 response.
pub(super) fn login(username: &str, password: &str) -> Result<Login, SaslError> {
    let username = text(username)?;
    if username.is_empty() {
        return Err(SaslError::Malformed);
    }
    Ok(Login {
        username,
        password: Secret::new(text(password)?),
    })
}

/// A relay credential binding accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authenticated {
    /// The tenant whose mail the client may deliver.
    pub tenant: String,
    /// Which of the tenant's credentials (the mail's origin).
    pub credential: String,
}

/// Why a login did not succeed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthError {
    /// Wrong username or password (one answer whatever was wrong).
    #[error("relay credentials refused")]
    Refused,
    /// Too many failures for this username or source: wait.
    #[error("too many failed logins; retry later")]
    LockedOut,
    /// Binding could not answer.
    #[error("relay login unavailable")]
    Unavailable(#[source] tonic::Status),
}

/// Checks relay logins.
#[async_trait]
pub(crate) trait RelayAuth: Send + Sync + 'static {
    /// The tenant `login` belongs to; `peer` counts toward its lockout.
    async fn authenticate(&self, login: &Login, peer: IpAddr) -> Result<Authenticated, AuthError>;
}

/// Binding's `AuthenticateRelay`.
#[derive(Clone)]
pub(crate) struct BindingRelayAuth {
    binding: TracedChannel,
}

impl std::fmt::Debug for BindingRelayAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BindingRelayAuth")
    }
}

impl BindingRelayAuth {
    /// Over binding's channel (ingest's credential on it).
    pub(crate) fn new(binding: TracedChannel) -> Self {
        Self { binding }
    }
}

#[async_trait]
impl RelayAuth for BindingRelayAuth {
    async fn authenticate(&self, login: &Login, peer: IpAddr) -> Result<Authenticated, AuthError> {
        let request = pb::AuthenticateRelayRequest {
            username: login.username.clone(),
            password: login.password.expose().to_owned(),
            peer_ip: peer.to_string(),
        };
        match BindingServiceClient::new(self.binding.clone())
            .authenticate_relay(request)
            .await
        {
            Ok(answer) => {
                let answer = answer.into_inner();
                Ok(Authenticated {
                    tenant: answer.tenant_id,
                    credential: answer.credential_id,
                })
            }
            Err(status) => Err(match status.code() {
                tonic::Code::Unauthenticated | tonic::Code::InvalidArgument => AuthError::Refused,
                tonic::Code::ResourceExhausted => AuthError::LockedOut,
                _ => AuthError::Unavailable(status),
            }),
        }
    }
}

/// A tenant's relay policy, as binding answers it with a recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayPolicy {
    /// Networks whose clients may deliver the tenant's mail.
    pub sources: Vec<Cidr>,
    /// Accepted client certificates, SHA-256 lowercase hex.
    pub certificates: Vec<String>,
}

impl RelayPolicy {
    /// From binding's answer; an entry that does not parse is skipped and
    /// logged (binding validated it when it was set).
    pub(crate) fn from_wire(sources: &[String], certificates: &[String]) -> Self {
        Self {
            sources: sources
                .iter()
                .filter_map(|s| match Cidr::parse(s) {
                    Ok(cidr) => Some(cidr),
                    Err(err) => {
                        tracing::warn!(source = %s, error = %pushmail_common::report::Report(&err), "relay policy entry skipped");
                        None
                    }
                })
                .collect(),
            certificates: certificates
                .iter()
                .map(|c| c.to_ascii_lowercase())
                .collect(),
        }
    }
}

/// How a recipient was authorised, which is also where the mail came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// One of the tenant's relay credentials.
    Credential(String),
    /// A client certificate the tenant's policy names.
    Certificate(String),
    /// A source network the tenant's policy allows.
    Network(String),
    /// Nothing was required (`smtp.require_auth = false`): the peer.
    Peer(IpAddr),
}

impl Origin {
    /// The text that goes into the mail's idempotency key: stable across a
    /// sender's retries (a relay pool sends from several addresses of one
    /// allowed network with one credential).
    pub(crate) fn key(&self) -> String {
        match self {
            Self::Credential(id) => format!("credential:{id}"),
            Self::Certificate(fingerprint) => format!("certificate:{fingerprint}"),
            Self::Network(cidr) => format!("network:{cidr}"),
            Self::Peer(ip) => format!("peer:{ip}"),
        }
    }
}

/// What a connection has proven about itself.
#[derive(Debug, Clone, Default)]
pub(super) struct Proof {
    /// A relay login, after `AUTH`.
    pub(super) login: Option<Authenticated>,
    /// The client certificate's fingerprint, after the TLS handshake.
    pub(super) certificate: Option<String>,
}

/// Whether a connection with `proof` from `peer` may deliver to an account
/// of `tenant` with `policy`, and as what origin. Without `require_auth`
/// everyone may (standalone), still recording the strongest origin.
pub(super) fn authorise(
    proof: &Proof,
    peer: IpAddr,
    tenant: &str,
    policy: &RelayPolicy,
    require_auth: bool,
) -> Option<Origin> {
    if let Some(login) = proof.login.as_ref().filter(|l| l.tenant == tenant) {
        return Some(Origin::Credential(login.credential.clone()));
    }
    if let Some(fingerprint) = proof
        .certificate
        .as_ref()
        .filter(|f| policy.certificates.contains(f))
    {
        return Some(Origin::Certificate(fingerprint.clone()));
    }
    if let Some(cidr) = policy.sources.iter().find(|c| c.contains(peer)) {
        return Some(Origin::Network(cidr.to_string()));
    }
    (!require_auth).then_some(Origin::Peer(peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn plain_and_login_responses_decode() {
        let ok = plain(&b64("\0relay-1\0s3cret")).unwrap();
        assert_eq!(
            (ok.username.as_str(), ok.password.expose()),
            ("relay-1", "s3cret")
        );
        let same = plain(&b64("relay-1\0relay-1\0s3cret")).unwrap();
        assert_eq!(same.username, "relay-1");
        assert_eq!(
            plain(&b64("admin\0relay-1\0s3cret")).unwrap_err(),
            SaslError::Malformed,
            "acting as someone else"
        );
        for bad in ["!!!", &b64("no-nul"), &b64("\0\0pw"), &b64("a\0b\0c\0d")] {
            assert_eq!(plain(bad).unwrap_err(), SaslError::Malformed, "{bad}");
        }
        assert_eq!(plain("*").unwrap_err(), SaslError::Cancelled);
        let ok = login(&b64("relay-1"), &b64("pässwörd")).unwrap();
        assert_eq!(ok.password.expose(), "pässwörd");
        assert_eq!(login("=", &b64("x")).unwrap_err(), SaslError::Malformed);
        assert_eq!(login(&b64("u"), "*").unwrap_err(), SaslError::Cancelled);
        assert!(!format!("{ok:?}").contains("pässwörd"));
    }

    #[test]
    fn a_recipient_is_authorised_by_its_own_tenant_only() {
        let peer: IpAddr = "203.0.113.7".parse().unwrap();
        let policy = RelayPolicy {
            sources: vec![Cidr::parse("198.51.100.0/24").unwrap()],
            certificates: vec!["ab".repeat(32)],
        };
        let none = Proof::default();
        assert_eq!(authorise(&none, peer, "t1", &policy, true), None);
        assert_eq!(
            authorise(&none, peer, "t1", &policy, false),
            Some(Origin::Peer(peer)),
            "standalone takes anyone"
        );
        let logged_in = Proof {
            login: Some(Authenticated {
                tenant: "t1".into(),
                credential: "c1".into(),
            }),
            certificate: None,
        };
        assert_eq!(
            authorise(&logged_in, peer, "t1", &policy, true),
            Some(Origin::Credential("c1".into()))
        );
        assert_eq!(
            authorise(&logged_in, peer, "t2", &RelayPolicy::default(), true),
            None,
            "another tenant's credential"
        );
        let certified = Proof {
            login: None,
            certificate: Some("ab".repeat(32)),
        };
        assert_eq!(
            authorise(&certified, peer, "t1", &policy, true),
            Some(Origin::Certificate("ab".repeat(32)))
        );
        let inside: IpAddr = "198.51.100.9".parse().unwrap();
        assert_eq!(
            authorise(&none, inside, "t1", &policy, true),
            Some(Origin::Network("198.51.100.0/24".into()))
        );
        assert_ne!(
            Origin::Credential("c1".into()).key(),
            Origin::Credential("c2".into()).key()
        );
    }
}
