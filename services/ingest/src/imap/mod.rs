//! IMAP IDLE watchers for external accounts: one task per account from
//! binding's list (refreshed every `imap.refresh_seconds`; removed or
//! changed accounts are stopped or restarted), each holding one session
//! that catches up and then IDLEs, reconnecting with jittered exponential
//! backoff after any failure. The folders an account watches besides
//! INBOX share that session: the server tells of their news (NOTIFY), or
//! they are polled with STATUS.
//!
//! With several replicas each account is watched only by the replica
//! holding its lease (`leases.rs`); a watcher stops when the lease moves.

pub mod client;
mod watch;

use pushmail_common::backoff::Backoff;
use pushmail_common::report::Report;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pushmail_common::grpc::TracedChannel;
use pushmail_proto::binding::v1 as pb;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use client::{Imap, ImapError, Woken};
pub use watch::{CatchUp, Watch, WatchError, WatchSettings, open};

use crate::accounts::{self, MailAccount};
use crate::arrival::Announcer;
use crate::checkpoints::Checkpoints;
use crate::config::ImapConfig;
use crate::leases::{Interest, Leases};
use crate::marks::ImapMarks;
use crate::tls::Tls;

/// A session that lasted this long resets the backoff.
const HEALTHY: Duration = Duration::from_secs(60);

/// The watchers' parts.
pub struct Runner {
    /// Binding, for the account list.
    pub binding: TracedChannel,
    /// TLS to the servers.
    pub tls: Tls,
    /// High-water marks.
    pub marks: Arc<dyn ImapMarks>,
    /// Their durable copy (binding).
    pub checkpoints: Arc<dyn Checkpoints>,
    /// Stores and publishes.
    pub announcer: Announcer,
    /// Settings.
    pub config: ImapConfig,
    /// Which accounts this replica owns.
    pub leases: Arc<Leases>,
}

impl Runner {
    fn settings(&self) -> WatchSettings {
        WatchSettings {
            timeout: Duration::from_secs(self.config.timeout_seconds),
            idle: Duration::from_secs(self.config.idle_seconds),
            noop: Duration::from_secs(self.config.noop_seconds),
            max_message_bytes: self.config.max_message_bytes,
            folder_poll: Duration::from_secs(self.config.folder_poll_seconds),
        }
    }

    /// Keeps a watcher per account until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let refresh = Duration::from_secs(this.config.refresh_seconds);
        let tasks = TaskTracker::new();
        let mut running: HashMap<String, (MailAccount, CancellationToken)> = HashMap::new();
        let mut owned = this.leases.owned();
        let mut listed: HashMap<String, MailAccount> = HashMap::new();
        let mut next_list = Instant::now();
        loop {
            if Instant::now() >= next_list {
                next_list = Instant::now() + refresh;
                match accounts::watched(&this.binding, pb::AccountKind::ExternalImap).await {
                    Ok(list) => {
                        listed = list.into_iter().map(|a| (a.account.clone(), a)).collect();
                        this.leases
                            .want(Interest::Imap, listed.keys().cloned().collect());
                    }
                    Err(status) => {
                        tracing::warn!(error = %status, "account list unavailable; retrying");
                    }
                }
            }
            let mine = owned.borrow_and_update().clone();
            running.retain(|id, (account, stop)| {
                let keep = mine.contains(id) && listed.get(id) == Some(account);
                if !keep {
                    stop.cancel();
                }
                keep
            });
            for (id, account) in &listed {
                if running.contains_key(id) || !mine.contains(id) {
                    continue;
                }
                let stop = shutdown.child_token();
                tasks.spawn(watch_forever(this.clone(), account.clone(), stop.clone()));
                running.insert(id.clone(), (account.clone(), stop));
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep_until(next_list) => {}
                changed = owned.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
        tasks.close();
        tasks.wait().await;
    }
}

/// Watches one account until `stop`, reconnecting after failures (what
/// `run` spawns per account; public for the capacity benchmark).
pub async fn watch_forever(runner: Arc<Runner>, account: MailAccount, stop: CancellationToken) {
    let backoff = Backoff::new(
        Duration::from_secs(2),
        Duration::from_secs(runner.config.max_backoff_seconds),
    );
    let mut failures = 0u32;
    loop {
        let started = Instant::now();
        let error = tokio::select! {
            () = stop.cancelled() => return,
            error = session(&runner, &account) => error,
        };
        if started.elapsed() >= HEALTHY {
            failures = 0;
        }
        failures = failures.saturating_add(1);
        let wait = backoff.delay(failures);
        tracing::warn!(account = %account.account, error = %Report(&error), failures, retry_in = ?wait, "imap watch failed");
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// One session: returns only with the error that ended it.
async fn session(runner: &Runner, account: &MailAccount) -> WatchError {
    let settings = runner.settings();
    let mut imap = match open(account, &runner.tls, settings.timeout).await {
        Ok(imap) => imap,
        Err(err) => return err.into(),
    };
    let on = |mailbox| Watch {
        account,
        mailbox,
        marks: &*runner.marks,
        checkpoints: &*runner.checkpoints,
        announcer: &runner.announcer,
        settings,
    };
    let inbox = on(watch::MAILBOX);
    let folders: Vec<Watch<'_>> = account.folders.iter().map(|f| on(f)).collect();
    // With NOTIFY the server tells of news in the folders as it comes;
    // they are still asked at each IDLE renewal, in case a notification
    // was missed. Without it they are asked every `folder_poll`.
    let poll_every = match notify(&mut imap, account).await {
        Ok(true) => settings.idle,
        Ok(false) => settings.folder_poll,
        Err(err) => return err.into(),
    };
    let mut next_poll = Instant::now();
    loop {
        let notified = imap.take_notified();
        if !folders.is_empty() && (notified || Instant::now() >= next_poll) {
            next_poll = Instant::now() + poll_every;
            if let Err(err) = Box::pin(poll_folders(&folders, &mut imap)).await {
                return err;
            }
        }
        // Boxed: the catch-up's state is large and short-lived; the idle
        // wait that follows is what thousands of watchers hold.
        if let Err(err) = Box::pin(inbox.catch_up(&mut imap)).await {
            return err;
        }
        let limit = if folders.is_empty() {
            settings.idle
        } else {
            next_poll.saturating_duration_since(Instant::now())
        };
        if let Err(err) = inbox.wait(&mut imap, limit).await {
            return err;
        }
    }
}

/// Asks the server to tell of news in the account's folders (NOTIFY);
/// whether it will. A server without NOTIFY, or refusing it for these
/// folders (one deleted upstream, say), is polled instead.
async fn notify(
    imap: &mut Imap<crate::tls::MailStream>,
    account: &MailAccount,
) -> Result<bool, ImapError> {
    if account.folders.is_empty() || !imap.has("NOTIFY") {
        return Ok(false);
    }
    match imap.notify(&account.folders).await {
        Ok(()) => Ok(true),
        Err(ImapError::Refused { line, .. }) => {
            tracing::warn!(account = %account.account, %line, "NOTIFY refused; polling the folders with STATUS");
            Ok(false)
        }
        Err(err) => Err(err),
    }
}

/// Asks each watched folder for news and catches up those that have some
/// (each selected in turn; INBOX is selected again after).
async fn poll_folders(
    folders: &[Watch<'_>],
    imap: &mut Imap<crate::tls::MailStream>,
) -> Result<(), WatchError> {
    for folder in folders {
        if folder.has_new(imap).await? {
            folder.catch_up(imap).await?;
        }
    }
    Ok(())
}
