//! POP3 polling for servers without IMAP: list by UIDL, fetch what was
//! never announced, announce it, then mark it. A restart (or a failed
//! publish) repeats no announced mail and misses none: marks follow events.

mod client;
mod runner;

use std::collections::HashSet;
use std::time::Duration;

pub use client::{Pop3, Pop3Error};
pub use runner::Runner;
use tokio_util::either::Either;

pub use crate::accounts::MailAccount;
pub(crate) use crate::tls::MailStream;

use crate::arrival::{AnnounceError, Announcer, Arrival, Source};
use crate::checkpoints::{Checkpoint, CheckpointError, Checkpoints, save_or_warn};
use crate::marks::{MarkError, Pop3Marks};
use crate::tls::{Security, Tls};

/// What one poll did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Messages announced.
    pub announced: usize,
    /// Messages that are not mail at all, marked so they are not retried.
    pub refused: usize,
    /// Messages on the server in all.
    pub on_server: usize,
    /// Messages too large to fetch, announced from their headers.
    pub truncated: usize,
    /// The account had no marks (first poll, or marks lost): the server's
    /// list was taken as the baseline and nothing in it announced.
    pub baselined: bool,
    /// The marks were lost (the account has a checkpoint, so it was polled
    /// before): its devices were told to sync the mailbox, since what
    /// arrived while the marks were gone is in the baseline, unannounced.
    pub synced: bool,
    /// Messages of the baseline filed for the phone to read without a
    /// notification (`MailArrived.backfill`).
    pub backfilled: usize,
}

/// The one maildrop POP3 has, named as the events name it.
pub(crate) const MAILBOX: &str = "INBOX";

/// A poll failed; nothing after the failure was marked.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// The server.
    #[error("pop3: {0}")]
    Pop3(#[from] Pop3Error),
    /// The marks.
    #[error(transparent)]
    Marks(#[from] MarkError),
    /// Storing or publishing.
    #[error(transparent)]
    Announce(#[from] AnnounceError),
    /// Binding's checkpoint.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// What a poll works with besides the server.
#[derive(Clone, Copy)]
pub struct PollWith<'a> {
    /// TLS to the server.
    pub tls: &'a Tls,
    /// Seen UIDLs.
    pub marks: &'a dyn Pop3Marks,
    /// Whether the account was polled before (survives the marks).
    pub checkpoints: &'a dyn Checkpoints,
    /// Stores and publishes.
    pub announcer: &'a Announcer,
    /// Largest message fetched whole.
    pub max_message_bytes: usize,
    /// Deadline of one exchange.
    pub timeout: Duration,
    /// How many of the newest messages a baseline files for the phone
    /// (0: none).
    pub backfill: usize,
}

/// Connects, secures and reads the greeting.
pub async fn open(
    account: &MailAccount,
    tls: &Tls,
    timeout: Duration,
) -> Result<Pop3<MailStream>, Pop3Error> {
    let tcp = tokio::time::timeout(timeout, tls.connect_tcp(&account.host, account.port))
        .await
        .map_err(|_| Pop3Error::Timeout(timeout))??;
    let secure = async |tcp| {
        tokio::time::timeout(timeout, tls.connect(&account.host, tcp))
            .await
            .map_err(|_| Pop3Error::Timeout(timeout))?
            .map_err(Pop3Error::Io)
    };
    match account.security {
        Security::None => Pop3::greet(Either::Left(tcp), timeout).await,
        Security::Implicit => Pop3::greet(Either::Right(secure(tcp).await?), timeout).await,
        Security::StartTls => {
            let tcp = Pop3::greet(tcp, timeout).await?.start_tls().await?;
            Ok(Pop3::resume(Either::Right(secure(tcp).await?), timeout))
        }
    }
}

/// Polls one account once.
pub async fn poll_once(account: &MailAccount, with: PollWith<'_>) -> Result<PollReport, PollError> {
    let PollWith {
        tls,
        marks,
        checkpoints,
        announcer,
        max_message_bytes,
        timeout,
        backfill: _,
    } = with;
    let mut pop3 = open(account, tls, timeout).await?;
    pop3.login(&account.username, account.password.expose())
        .await?;
    let listed = pop3.uidl().await?;
    let mut report = PollReport {
        on_server: listed.len(),
        ..PollReport::default()
    };
    let Some(seen) = marks.seen(&account.account).await? else {
        backfill(&mut pop3, account, &with, &listed, &mut report).await?;
        let current = listed.into_iter().map(|(_, uidl)| uidl).collect();
        baseline(account, &with, &current, &mut report).await?;
        pop3.quit().await?;
        return Ok(report);
    };
    let sizes: std::collections::HashMap<u32, u64> = pop3.list().await?.into_iter().collect();
    for (number, uidl) in &listed {
        if seen.contains(uidl) {
            continue;
        }
        let (arrival, raw) = fetch(
            &mut pop3,
            account,
            *number,
            &sizes,
            max_message_bytes,
            &mut report,
        )
        .await?;
        match announcer.announce(&arrival, &raw).await {
            Ok(_) => report.announced += 1,
            Err(err) if !err.is_transient() => {
                // Not mail: retrying cannot help, and it must not block the rest.
                tracing::warn!(account = %account.account, %uidl, error = %pushmail_common::report::Report(&err), "message refused");
                report.refused += 1;
            }
            Err(err) => return Err(err.into()),
        }
        marks.mark(&account.account, uidl).await?;
    }
    let current: HashSet<String> = listed.into_iter().map(|(_, uidl)| uidl).collect();
    marks.retain(&account.account, &current).await?;
    if report.announced + report.refused > 0 {
        // Accounts polled since before checkpoints existed get one too.
        save(checkpoints, account).await;
    }
    pop3.quit().await?;
    Ok(report)
}

/// Fetches one message as an arrival. One too large to fetch whole comes
/// as its header section with its real size, so the phone still learns of
/// it (and the mailbox is not stuck on it).
async fn fetch(
    pop3: &mut Pop3<MailStream>,
    account: &MailAccount,
    number: u32,
    sizes: &std::collections::HashMap<u32, u64>,
    max_message_bytes: usize,
    report: &mut PollReport,
) -> Result<(Arrival, Vec<u8>), PollError> {
    let size = sizes.get(&number).copied().unwrap_or(0);
    let too_large = usize::try_from(size).map_or(true, |s| s > max_message_bytes);
    let raw = if too_large {
        report.truncated += 1;
        pop3.headers(number, max_message_bytes).await?
    } else {
        pop3.retr(number, max_message_bytes).await?
    };
    let arrival = Arrival {
        tenant: account.tenant.clone(),
        account: account.account.clone(),
        mailbox: MAILBOX.to_owned(),
        uid_validity: 0,
        uid: 0,
        source: Source::Pop3,
        received_at_ms: pushmail_common::clock::now_ms(),
        full_size: too_large.then_some(size),
        origin: None,
    };
    Ok((arrival, raw))
}

/// Before a baseline: the newest `with.backfill` messages already on the
/// server are filed in the platform's store, oldest of them first, so the
/// phone can read mail from before the account was added; no phone is
/// notified of them (`MailArrived.backfill`). Their keys are those of a
/// fresh announcement (Message-ID, else content), so a repeat after a
/// failure or a lost-marks baseline files nothing twice.
async fn backfill(
    pop3: &mut Pop3<MailStream>,
    account: &MailAccount,
    with: &PollWith<'_>,
    listed: &[(u32, String)],
    report: &mut PollReport,
) -> Result<(), PollError> {
    if with.backfill == 0 || listed.is_empty() {
        return Ok(());
    }
    let sizes: std::collections::HashMap<u32, u64> = pop3.list().await?.into_iter().collect();
    let newest = &listed[listed.len().saturating_sub(with.backfill)..];
    for (number, uidl) in newest {
        let (arrival, raw) = fetch(
            pop3,
            account,
            *number,
            &sizes,
            with.max_message_bytes,
            report,
        )
        .await?;
        match with.announcer.announce_backfill(&arrival, &raw).await {
            Ok(_) => report.backfilled += 1,
            Err(err) if !err.is_transient() => {
                tracing::warn!(account = %account.account, %uidl, error = %pushmail_common::report::Report(&err), "message not filed: not mail");
                report.refused += 1;
            }
            Err(err) => return Err(err.into()),
        }
    }
    tracing::info!(account = %account.account, filed = report.backfilled, on_server = listed.len(), "pop3 mailbox backfilled into the platform's store");
    Ok(())
}

/// The marks were lost (or never were): announcing everything would push
/// a whole mailbox (and send its SMS wake-ups) after a Redis loss, so the
/// mailbox as it is now is the baseline, as an IMAP mailbox's end is at
/// first sight. A mailbox polled before gets a sync instead.
async fn baseline(
    account: &MailAccount,
    with: &PollWith<'_>,
    current: &HashSet<String>,
    report: &mut PollReport,
) -> Result<(), PollError> {
    let polled_before = with
        .checkpoints
        .get(&account.tenant, &account.account, MAILBOX)
        .await?
        .is_some();
    if polled_before {
        // Before the baseline: if it is published and the baseline not
        // written, the next poll tells the devices again (harmless);
        // the other way round they might never hear of it.
        with.announcer
            .announce_sync(&account.tenant, &account.account, MAILBOX, Source::Pop3)
            .await?;
        report.synced = true;
    }
    with.marks.baseline(&account.account, current).await?;
    save(with.checkpoints, account).await;
    tracing::info!(
        account = %account.account,
        messages = current.len(),
        marks_lost = polled_before,
        "pop3 mailbox baselined: what is there now is not announced"
    );
    report.baselined = true;
    Ok(())
}

/// Records that the account has been polled (all a POP3 checkpoint says).
async fn save(checkpoints: &dyn Checkpoints, account: &MailAccount) {
    let checkpoint = Checkpoint {
        uid_validity: 0,
        last_uid: 0,
        at_ms: pushmail_common::clock::now_ms(),
    };
    save_or_warn(
        checkpoints,
        &account.tenant,
        &account.account,
        MAILBOX,
        checkpoint,
    )
    .await;
}
