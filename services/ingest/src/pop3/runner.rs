//! The POP3 loop: every interval, the POP3 accounts from binding
//! (`ListWatchedAccounts`), each polled unless it is backing off after a
//! failure (doubling, jittered, capped).
//!
//! One replica polls every account: leases that share the accounts among
//! replicas arrive with the rest of [4/9]; until then run one ingest
//! replica (two would both announce a new mail; dispatch dedupes by key).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use pushmail_common::grpc::TracedChannel;
use pushmail_common::redact::Secret;
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::binding::v1::binding_service_client::BindingServiceClient;
use pushmail_proto::common::v1::PageRequest;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Pop3Account, poll_once};
use crate::arrival::Announcer;
use crate::config::Pop3Config;
use crate::marks::Pop3Marks;
use crate::tls::{Security, Tls};

/// Longest wait after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_secs(30 * 60);

/// The loop's parts.
pub struct Runner {
    /// Binding, for the account list.
    pub binding: TracedChannel,
    /// TLS to the servers.
    pub tls: Tls,
    /// Seen UIDLs.
    pub marks: Arc<dyn Pop3Marks>,
    /// Stores and publishes.
    pub announcer: Announcer,
    /// Settings.
    pub config: Pop3Config,
}

/// An account as binding describes it, if it is a usable POP3 account.
fn account(watched: pb::WatchedAccount) -> Option<Pop3Account> {
    if watched.kind() != pb::AccountKind::ExternalPop3 {
        return None;
    }
    let server = watched.server?;
    let security = match server.tls() {
        pb::TlsMode::None => Security::None,
        pb::TlsMode::Starttls => Security::StartTls,
        pb::TlsMode::Implicit => Security::Implicit,
        pb::TlsMode::Unspecified => return None,
    };
    Some(Pop3Account {
        tenant: watched.tenant_id,
        account: watched.account_id,
        host: server.host,
        port: u16::try_from(server.port).ok()?,
        security,
        username: server.username,
        password: Secret::new(watched.credentials?.password),
    })
}

impl Runner {
    async fn accounts(&self) -> Result<Vec<Pop3Account>, tonic::Status> {
        let mut client = BindingServiceClient::new(self.binding.clone());
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
            out.extend(page.accounts.into_iter().filter_map(account));
            cursor = page.page.map(|p| p.next_cursor).unwrap_or_default();
            if cursor.is_empty() {
                return Ok(out);
            }
        }
    }

    /// Polls until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), String> {
        let interval = Duration::from_secs(self.config.interval_seconds);
        let timeout = Duration::from_secs(self.config.timeout_seconds);
        let mut backoff: HashMap<String, (u32, Instant)> = HashMap::new();
        loop {
            match self.accounts().await {
                Ok(accounts) => {
                    let now = Instant::now();
                    let due: Vec<Pop3Account> = accounts
                        .into_iter()
                        .filter(|a| backoff.get(&a.account).is_none_or(|(_, at)| *at <= now))
                        .collect();
                    let this = &self;
                    let results: Vec<(String, bool)> = futures::stream::iter(due)
                        .map(|account| async move {
                            let result = poll_once(
                                &account,
                                &this.tls,
                                &*this.marks,
                                &this.announcer,
                                this.config.max_message_bytes,
                                timeout,
                            )
                            .await;
                            if let Err(err) = &result {
                                tracing::warn!(account = %account.account, error = %err, "pop3 poll failed");
                            }
                            (account.account, result.is_ok())
                        })
                        .buffer_unordered(self.config.concurrency)
                        .collect()
                        .await;
                    for (account, ok) in results {
                        if ok {
                            backoff.remove(&account);
                        } else {
                            let failures = backoff.get(&account).map_or(1, |(n, _)| n + 1);
                            let base =
                                interval.saturating_mul(2u32.saturating_pow(failures.min(10)));
                            let jitter = Duration::from_millis(rand::random_range(
                                0..=interval.as_millis().max(1) as u64,
                            ));
                            backoff.insert(
                                account,
                                (failures, Instant::now() + base.min(MAX_BACKOFF) + jitter),
                            );
                        }
                    }
                }
                Err(status) => {
                    tracing::warn!(error = %status, "account list unavailable; retrying")
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(interval) => {}
            }
        }
    }
}
