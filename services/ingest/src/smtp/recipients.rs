//! Recipient → account, asked of binding (`ResolveRecipient`) and cached
//! briefly: a busy enterprise relay sends to the same few thousand
//! addresses all day, and one gRPC round trip per RCPT would cap the
//! receiver's rate. A new account is reachable within the negative TTL, a
//! deleted one stops receiving within the positive TTL.

use std::time::Duration;

use async_trait::async_trait;
use pushmail_common::grpc::TracedChannel;
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::binding::v1::binding_service_client::BindingServiceClient;
use tokio::time::Instant;

/// What an address maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// An account we announce mail for.
    Account {
        /// Owner.
        tenant: String,
        /// Account id.
        account: String,
        /// How its mail reaches us (SMTP/LMTP take forwarded accounts only).
        kind: pb::AccountKind,
        /// Who may deliver the tenant's mail.
        policy: super::auth::RelayPolicy,
    },
    /// No such account (550 for this recipient).
    Unknown,
    /// Not a mail address (501).
    BadAddress,
}

/// Binding could not answer; the sender should retry (451).
#[derive(Debug, Clone, thiserror::Error)]
#[error("recipient lookup unavailable")]
pub struct ResolveError(#[source] pub Box<tonic::Status>);

/// Maps recipients to accounts.
#[async_trait]
pub trait Recipients: Send + Sync + 'static {
    /// Resolves one address (case-insensitively) among every tenant's
    /// forwarded addresses, which route to one tenant by construction.
    async fn resolve(&self, address: &str) -> Result<Resolved, ResolveError> {
        self.resolve_in(address, None).await
    }

    /// Resolves one address within `tenant` when given.
    async fn resolve_in(
        &self,
        address: &str,
        tenant: Option<&str>,
    ) -> Result<Resolved, ResolveError>;
}

/// Binding's answers, cached.
pub(crate) struct BindingRecipients {
    binding: TracedChannel,
    cache: quick_cache::sync::Cache<String, (Resolved, Instant)>,
    found_ttl: Duration,
    unknown_ttl: Duration,
}

impl std::fmt::Debug for BindingRecipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BindingRecipients")
            .field("cached", &self.cache.len())
            .finish()
    }
}

impl BindingRecipients {
    /// Over binding, keeping up to `capacity` answers.
    pub(crate) fn new(
        binding: TracedChannel,
        capacity: usize,
        found_ttl: Duration,
        unknown_ttl: Duration,
    ) -> Self {
        Self {
            binding,
            cache: quick_cache::sync::Cache::new(capacity.max(1)),
            found_ttl,
            unknown_ttl,
        }
    }
}

#[async_trait]
impl Recipients for BindingRecipients {
    async fn resolve_in(
        &self,
        address: &str,
        tenant: Option<&str>,
    ) -> Result<Resolved, ResolveError> {
        let address = address.trim().to_lowercase();
        let key = format!("{}/{address}", tenant.unwrap_or_default());
        if let Some((answer, until)) = self.cache.get(&key)
            && Instant::now() < until
        {
            return Ok(answer);
        }
        let mut client = BindingServiceClient::new(self.binding.clone());
        let answer = match client
            .resolve_recipient(pb::ResolveRecipientRequest {
                address,
                tenant_id: tenant.unwrap_or_default().to_owned(),
            })
            .await
        {
            Ok(response) => {
                let response = response.into_inner();
                if response.found {
                    Resolved::Account {
                        kind: response.kind(),
                        policy: super::auth::RelayPolicy::from_wire(
                            &response.allowed_sources,
                            &response.client_cert_sha256,
                        ),
                        tenant: response.tenant_id,
                        account: response.account_id,
                    }
                } else {
                    Resolved::Unknown
                }
            }
            Err(status) if status.code() == tonic::Code::InvalidArgument => Resolved::BadAddress,
            Err(status) => return Err(ResolveError(Box::new(status))),
        };
        let ttl = match answer {
            Resolved::Account { .. } => self.found_ttl,
            Resolved::Unknown | Resolved::BadAddress => self.unknown_ttl,
        };
        self.cache
            .insert(key, (answer.clone(), Instant::now() + ttl));
        Ok(answer)
    }
}
