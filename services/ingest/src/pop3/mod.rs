//! POP3 polling for servers without IMAP: list by UIDL, fetch what was
//! never announced, announce it, then mark it. A restart (or a failed
//! publish) repeats no announced mail and misses none: marks follow events.

mod client;

use std::collections::HashSet;
use std::time::Duration;

pub use client::{Pop3, Pop3Error};
use pushmail_common::redact::Secret;
use tokio::net::TcpStream;

use crate::arrival::{AnnounceError, Announcer, Arrival, Source};
use crate::marks::{MarkError, Pop3Marks};

/// A POP3 account to poll.
#[derive(Debug, Clone)]
pub struct Pop3Account {
    /// Owner.
    pub tenant: String,
    /// Account id.
    pub account: String,
    /// `host:port` of the server.
    pub server: String,
    /// Login.
    pub username: String,
    /// Password.
    pub password: Secret,
}

/// What one poll did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Messages announced.
    pub announced: usize,
    /// Messages that are not mail at all, marked so they are not retried.
    pub refused: usize,
    /// Messages on the server in all.
    pub on_server: usize,
}

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
}

/// Polls one account once.
pub async fn poll_once(
    account: &Pop3Account,
    marks: &dyn Pop3Marks,
    announcer: &Announcer,
    max_message_bytes: usize,
    timeout: Duration,
) -> Result<PollReport, PollError> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(&account.server))
        .await
        .map_err(|_| Pop3Error::Timeout(timeout))?
        .map_err(Pop3Error::Io)?;
    let mut pop3 = Pop3::greet(stream, timeout).await?;
    pop3.login(&account.username, account.password.expose())
        .await?;
    let listed = pop3.uidl().await?;
    let seen = marks.seen(&account.account).await?;
    let mut report = PollReport {
        on_server: listed.len(),
        ..PollReport::default()
    };
    for (number, uidl) in &listed {
        if seen.contains(uidl) {
            continue;
        }
        let raw = pop3.retr(*number, max_message_bytes).await?;
        let arrival = Arrival {
            tenant: account.tenant.clone(),
            account: account.account.clone(),
            mailbox: "INBOX".to_owned(),
            uid_validity: 0,
            uid: 0,
            source: Source::Pop3,
            received_at_ms: pushmail_common::clock::now_ms(),
        };
        match announcer.announce(&arrival, &raw).await {
            Ok(_) => report.announced += 1,
            Err(err) if !err.is_transient() => {
                // Not mail: retrying cannot help, and it must not block the rest.
                tracing::warn!(account = %account.account, %uidl, error = %err, "message refused");
                report.refused += 1;
            }
            Err(err) => return Err(err.into()),
        }
        marks.mark(&account.account, uidl).await?;
    }
    let current: HashSet<String> = listed.into_iter().map(|(_, uidl)| uidl).collect();
    marks.retain(&account.account, &current).await?;
    pop3.quit().await?;
    Ok(report)
}
