//! The POP3 loop: every interval, the POP3 accounts from binding
//! (`ListWatchedAccounts`), each polled unless it is backing off after a
//! failure (doubling, jittered, capped).
//!
//! With several replicas each account is polled only by the replica
//! holding its lease (`leases.rs`).

use pushmail_common::backoff::Backoff;
use pushmail_common::report::Report;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use pushmail_common::grpc::TracedChannel;
use pushmail_proto::binding::v1 as pb;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{PollWith, poll_once};
use crate::accounts::{self, MailAccount};
use crate::arrival::Announcer;
use crate::checkpoints::Checkpoints;
use crate::config::Pop3Config;
use crate::leases::{Interest, Leases};
use crate::marks::Pop3Marks;
use crate::tls::Tls;

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
    /// Whether an account was polled before (binding).
    pub checkpoints: Arc<dyn Checkpoints>,
    /// Stores and publishes.
    pub announcer: Announcer,
    /// Settings.
    pub config: Pop3Config,
    /// Which accounts this replica owns.
    pub leases: Arc<Leases>,
}

impl Runner {
    /// Polls until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let interval = Duration::from_secs(self.config.interval_seconds);
        let timeout = Duration::from_secs(self.config.timeout_seconds);
        let mut backoff: HashMap<String, (u32, Instant)> = HashMap::new();
        // A failing account is skipped for two intervals, then four, …
        let retry = Backoff::new(interval.saturating_mul(2), MAX_BACKOFF);
        let mut owned = self.leases.owned();
        loop {
            match accounts::watched(&self.binding, pb::AccountKind::ExternalPop3).await {
                Ok(accounts) => {
                    self.leases.want(
                        Interest::Pop3,
                        accounts.iter().map(|a| a.account.clone()).collect(),
                    );
                    let now = Instant::now();
                    let due: Vec<MailAccount> = accounts
                        .into_iter()
                        .filter(|a| self.leases.owns(&a.account))
                        .filter(|a| backoff.get(&a.account).is_none_or(|(_, at)| *at <= now))
                        .collect();
                    let this = &self;
                    let results: Vec<(String, bool)> = futures::stream::iter(due)
                        .map(|account| async move {
                            let with = PollWith {
                                tls: &this.tls,
                                marks: &*this.marks,
                                checkpoints: &*this.checkpoints,
                                announcer: &this.announcer,
                                max_message_bytes: this.config.max_message_bytes,
                                timeout,
                                backfill: this.config.backfill_messages,
                            };
                            let result = poll_once(&account, with).await;
                            if let Err(err) = &result {
                                tracing::warn!(account = %account.account, error = %Report(err), "pop3 poll failed");
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
                            let wait = retry.delay(failures);
                            backoff.insert(account, (failures, Instant::now() + wait));
                        }
                    }
                }
                Err(status) => {
                    tracing::warn!(error = %status, "account list unavailable; retrying")
                }
            }
            owned.borrow_and_update();
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
                // Accounts just taken over are polled now, not an interval late.
                changed = owned.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
    }
}
