//! One mailbox watched: catch up on what arrived since the mark, then IDLE
//! (re-issued before the 29-minute limit of RFC 2177) or NOOP where the
//! server has no IDLE; a mark moves only after its event is durable. The
//! folders a user chose besides INBOX are asked for news with STATUS
//! between IDLEs on INBOX (when NOTIFY says, or every `folder_poll`) and
//! caught up the same way, each with its own mark and checkpoint.
//!
//! First sight of a mailbox sets the mark at its current end: the backlog
//! of an account just added is not pushed. On a UIDVALIDITY change the
//! messages since the mark's day are compared by Message-ID with those
//! announced lately and only the new ones are announced (a message with no
//! Message-ID cannot be matched and is skipped, with a warning).
//!
//! Each catch-up that moved the mark ends by saving it as the mailbox's
//! checkpoint in binding; a mailbox whose marks are missing but which has
//! a checkpoint was watched before (the mark store lost them), so it
//! resumes from the checkpoint rather than from its end.

use std::time::Duration;

use tokio_util::either::Either;

use super::client::{Imap, ImapError, Part, Woken};
use crate::accounts::MailAccount;
use crate::arrival::{AnnounceError, Announcer, Arrival, Source};
use crate::checkpoints::{Checkpoint, CheckpointError, Checkpoints, save_or_warn};
use crate::marks::{ImapMark, ImapMarks, MarkError};
use crate::tls::{MailStream, Security, Tls};

/// The watched mailbox (the one every client shows first).
pub(crate) const MAILBOX: &str = "INBOX";

/// A watch failed; the caller reconnects after a backoff.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The server.
    #[error("imap: {0}")]
    Imap(#[from] ImapError),
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

/// Settings of a watch.
#[derive(Debug, Clone, Copy)]
pub struct WatchSettings {
    /// Deadline of one exchange.
    pub timeout: Duration,
    /// How long one IDLE lasts before it is re-issued.
    pub idle: Duration,
    /// NOOP interval where IDLE is absent.
    pub noop: Duration,
    /// Largest message fetched whole; larger ones are announced from their
    /// header with their real size.
    pub max_message_bytes: usize,
    /// How often the folders watched besides INBOX are asked for news
    /// (STATUS): the longest an IDLE on INBOX lasts when there are some.
    pub folder_poll: Duration,
}

/// What a catch-up did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatchUp {
    /// Messages announced.
    pub announced: usize,
    /// Not mail at all; skipped (and the mark moved past them).
    pub refused: usize,
}

/// Connects, secures and logs in.
pub async fn open(
    account: &MailAccount,
    tls: &Tls,
    timeout: Duration,
) -> Result<Imap<MailStream>, ImapError> {
    let tcp = tokio::time::timeout(timeout, tls.connect_tcp(&account.host, account.port))
        .await
        .map_err(|_| ImapError::Timeout(timeout))??;
    let _ = tcp.set_nodelay(true);
    let secure = async |tcp| {
        tokio::time::timeout(timeout, tls.connect(&account.host, tcp))
            .await
            .map_err(|_| ImapError::Timeout(timeout))?
            .map_err(ImapError::Io)
    };
    let mut imap = match account.security {
        Security::None => Imap::greet(Either::Left(tcp), timeout).await?,
        Security::Implicit => Imap::greet(Either::Right(secure(tcp).await?), timeout).await?,
        Security::StartTls => {
            let tcp = Imap::greet(tcp, timeout).await?.start_tls().await?;
            Imap::resume(Either::Right(secure(tcp).await?), timeout)
        }
    };
    let encrypted = !matches!(account.security, Security::None);
    imap.login(&account.username, account.password.expose(), encrypted)
        .await?;
    Ok(imap)
}

/// A logged-in session on one of an account's mailboxes.
pub struct Watch<'a> {
    /// The account.
    pub account: &'a MailAccount,
    /// The mailbox: INBOX, or one of the folders the user chose.
    pub mailbox: &'a str,
    /// Marks.
    pub marks: &'a dyn ImapMarks,
    /// The durable copy of the marks (binding).
    pub checkpoints: &'a dyn Checkpoints,
    /// Stores and publishes.
    pub announcer: &'a Announcer,
    /// Limits.
    pub settings: WatchSettings,
}

impl Watch<'_> {
    /// Selects the mailbox, reconciles the mark, announces what is new.
    pub async fn catch_up(&self, imap: &mut Imap<MailStream>) -> Result<CatchUp, WatchError> {
        let selected = imap.select(self.mailbox).await?;
        let now = pushmail_common::clock::now_ms();
        let end = match selected.uid_next {
            Some(next) => next.saturating_sub(1),
            None => imap.uids_after(0).await?.last().copied().unwrap_or(0),
        };
        let account = &self.account.account;
        let stored = match self.marks.get(account, self.mailbox).await? {
            Some(mark) => Some(mark),
            None => self.restore(selected.uid_validity).await?,
        };
        let mark = match stored {
            None => {
                let baseline = ImapMark {
                    uid_validity: selected.uid_validity,
                    last_uid: end,
                    updated_ms: now,
                };
                // Remember the last day's Message-IDs too: a UIDVALIDITY
                // change compares against them (see `resync`), and this
                // backlog must not be announced then either.
                let day_ago = imap_day(now - 24 * 3_600 * 1_000);
                let recent = imap.uids_since(&day_ago).await?;
                for (_, id) in imap.message_ids(&recent).await? {
                    if let Some(id) = id {
                        self.marks
                            .advance(account, self.mailbox, baseline, Some(&id))
                            .await?;
                    }
                }
                self.marks
                    .advance(account, self.mailbox, baseline, None)
                    .await?;
                self.checkpoint(baseline).await;
                tracing::info!(%account, uid_validity = selected.uid_validity, "mailbox first seen; watching from its end");
                return Ok(CatchUp::default());
            }
            Some(mark) if mark.uid_validity != selected.uid_validity => {
                let report = self.resync(imap, mark, selected.uid_validity, end).await?;
                if let Some(mark) = self.marks.get(account, self.mailbox).await? {
                    self.checkpoint(mark).await;
                }
                return Ok(report);
            }
            Some(mark) => mark,
        };
        let uids = imap.uids_after(mark.last_uid).await?;
        let mut report = CatchUp::default();
        let mut last = None;
        for uid in uids {
            self.announce(imap, selected.uid_validity, uid, &mut report)
                .await?;
            last = Some(uid);
        }
        if let Some(last_uid) = last {
            let moved = ImapMark {
                uid_validity: selected.uid_validity,
                last_uid,
                updated_ms: pushmail_common::clock::now_ms(),
            };
            self.checkpoint(moved).await;
        }
        Ok(report)
    }

    /// Marks missing: the checkpoint, if the mailbox was watched before,
    /// written back as the mark (its Message-IDs are gone with the marks:
    /// a UIDVALIDITY change right now compares against none).
    async fn restore(&self, uid_validity: u32) -> Result<Option<ImapMark>, WatchError> {
        let account = &self.account.account;
        let Some(checkpoint) = self
            .checkpoints
            .get(&self.account.tenant, account, self.mailbox)
            .await?
        else {
            return Ok(None);
        };
        let mark = ImapMark {
            uid_validity: checkpoint.uid_validity,
            last_uid: checkpoint.last_uid,
            updated_ms: checkpoint.at_ms,
        };
        tracing::warn!(
            %account,
            last_uid = mark.last_uid,
            same_uid_validity = mark.uid_validity == uid_validity,
            "mailbox marks missing; resuming from the checkpoint"
        );
        self.marks
            .advance(account, self.mailbox, mark, None)
            .await?;
        Ok(Some(mark))
    }

    /// Saves `mark` as the mailbox's checkpoint (see [`save_or_warn`]).
    async fn checkpoint(&self, mark: ImapMark) {
        let checkpoint = Checkpoint {
            uid_validity: mark.uid_validity,
            last_uid: mark.last_uid,
            at_ms: mark.updated_ms,
        };
        let (tenant, account) = (&self.account.tenant, &self.account.account);
        save_or_warn(self.checkpoints, tenant, account, self.mailbox, checkpoint).await;
    }

    /// Fetches, announces and marks one message.
    async fn announce(
        &self,
        imap: &mut Imap<MailStream>,
        uid_validity: u32,
        uid: u32,
        report: &mut CatchUp,
    ) -> Result<(), WatchError> {
        let max = self.settings.max_message_bytes;
        let account = &self.account.account;
        let advance = async |message_id: Option<&str>| {
            let mark = ImapMark {
                uid_validity,
                last_uid: uid,
                updated_ms: pushmail_common::clock::now_ms(),
            };
            self.marks
                .advance(account, self.mailbox, mark, message_id)
                .await
        };
        let Some(size) = imap.size(uid).await? else {
            // Expunged since the search: nothing to announce.
            return Ok(advance(None).await?);
        };
        let too_large = usize::try_from(size).map_or(true, |s| s > max);
        let part = if too_large { Part::Header } else { Part::Whole };
        let Some(raw) = imap.fetch(uid, part, max).await? else {
            return Ok(advance(None).await?);
        };
        let arrival = Arrival {
            tenant: self.account.tenant.clone(),
            account: account.clone(),
            mailbox: self.mailbox.to_owned(),
            uid_validity,
            uid,
            source: Source::Imap,
            received_at_ms: pushmail_common::clock::now_ms(),
            full_size: too_large.then_some(size),
            origin: None,
        };
        match self.announcer.announce(&arrival, &raw).await {
            Ok(event) => {
                report.announced += 1;
                let id = (!event.message_id.is_empty()).then_some(event.message_id.as_str());
                advance(id).await?;
            }
            Err(err) if !err.is_transient() => {
                tracing::warn!(%account, uid, error = %pushmail_common::report::Report(&err), "message refused");
                report.refused += 1;
                advance(None).await?;
            }
            Err(err) => return Err(err.into()),
        }
        Ok(())
    }

    /// UIDVALIDITY changed: announce only messages whose Message-ID was not
    /// announced lately, among those since the old mark's day.
    async fn resync(
        &self,
        imap: &mut Imap<MailStream>,
        old: ImapMark,
        uid_validity: u32,
        end: u32,
    ) -> Result<CatchUp, WatchError> {
        let account = &self.account.account;
        tracing::warn!(%account, old = old.uid_validity, new = uid_validity, "UIDVALIDITY changed; resynchronising by Message-ID");
        let seen = self.marks.seen_ids(account, self.mailbox).await?;
        let since = imap_day(old.updated_ms - 24 * 3_600 * 1_000);
        let candidates = imap.uids_since(&since).await?;
        let ids = imap.message_ids(&candidates).await?;
        let mut report = CatchUp::default();
        for (uid, message_id) in ids {
            match message_id {
                Some(id) if seen.contains(&id) => {}
                Some(_) => {
                    self.announce(imap, uid_validity, uid, &mut report).await?;
                }
                None => {
                    tracing::warn!(%account, uid, "no Message-ID after a UIDVALIDITY change; not announced");
                }
            }
        }
        let mark = ImapMark {
            uid_validity,
            last_uid: end.max(self.marks.get(account, self.mailbox).await?.map_or(0, |m| {
                if m.uid_validity == uid_validity {
                    m.last_uid
                } else {
                    0
                }
            })),
            updated_ms: pushmail_common::clock::now_ms(),
        };
        self.marks
            .advance(account, self.mailbox, mark, None)
            .await?;
        Ok(report)
    }

    /// Waits for the mailbox to change (IDLE, else NOOP polling), at
    /// most `limit` (the next poll of the other folders).
    pub async fn wait(
        &self,
        imap: &mut Imap<MailStream>,
        limit: Duration,
    ) -> Result<Woken, WatchError> {
        if imap.has("IDLE") {
            return Ok(imap.idle(self.settings.idle.min(limit)).await?);
        }
        tokio::time::sleep(self.settings.noop.min(limit)).await;
        Ok(imap.noop().await?)
    }

    /// Whether this mailbox (not the selected one) has mail past its mark,
    /// asked with STATUS: a mailbox never seen, or whose UIDVALIDITY moved,
    /// needs a catch-up too. A mailbox the server refuses (deleted or
    /// renamed upstream) is skipped with a warning, so one stale folder
    /// never stops the account's INBOX.
    pub async fn has_new(&self, imap: &mut Imap<MailStream>) -> Result<bool, WatchError> {
        let status = match imap.status(self.mailbox).await {
            Ok(status) => status,
            Err(ImapError::Refused { line, .. }) => {
                tracing::warn!(account = %self.account.account, mailbox = %self.mailbox, %line, "watched folder refused by the server; skipped");
                return Ok(false);
            }
            Err(err) => return Err(err.into()),
        };
        let Some(mark) = self.marks.get(&self.account.account, self.mailbox).await? else {
            return Ok(true);
        };
        Ok(mark.uid_validity != status.uid_validity
            || status
                .uid_next
                .is_none_or(|next| next.saturating_sub(1) > mark.last_uid))
    }
}

/// An IMAP SEARCH date (`26-Nov-2026`) for a UTC time in ms.
fn imap_day(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%-d-%b-%Y")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_dates_are_imap_dates() {
        assert_eq!(imap_day(0), "1-Jan-1970");
        assert_eq!(imap_day(1_795_651_200_000), "26-Nov-2026");
        assert_eq!(imap_day(951_782_400_000), "29-Feb-2000");
    }
}
