//! One Sync call end to end: the token's state, the backend's listing, the
//! plan, summaries of what is new, and the next state saved under a new
//! token. Backend-agnostic, so every backend syncs the same way.

use crate::backend::{BackendError, Mailbox};
use crate::domain::{FlagUpdate, Flags, Listed, MessageKey, Uid};

use super::{FolderState, Page, Renumbered, Scope, States, StatesError, Token, plan, resume};

/// A Sync answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    /// New messages, newest first.
    pub added: Vec<Listed>,
    /// Messages whose flags changed.
    pub changed: Vec<(MessageKey, Flags)>,
    /// Messages gone.
    pub removed: Vec<MessageKey>,
    /// The token for the next call.
    pub token: Token,
    /// Whether more changes wait: call again with `token`.
    pub more: bool,
}

/// A Sync could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The token is not one this service issued for the folder, or it
    /// expired: sync from the start.
    #[error("the sync token is unknown or expired; sync again from the start")]
    UnknownToken,
    /// The folder was renumbered: sync from the start.
    #[error(transparent)]
    Renumbered(#[from] Renumbered),
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The state store failed.
    #[error(transparent)]
    States(#[from] StatesError),
}

/// The state behind `since` (`None`: the phone holds nothing), or
/// [`SyncError::UnknownToken`].
async fn held(
    states: &dyn States,
    scope: &Scope,
    since: Option<&Token>,
) -> Result<Option<FolderState>, SyncError> {
    match since {
        Some(token) => Ok(Some(
            states
                .load(scope, token)
                .await?
                .ok_or(SyncError::UnknownToken)?,
        )),
        None => Ok(None),
    }
}

/// Answers a Sync of `scope`'s folder from `since` (`None`: the start),
/// at most `window` entries.
pub async fn sync(
    mailbox: &mut dyn Mailbox,
    states: &dyn States,
    scope: &Scope,
    since: Option<&Token>,
    window: usize,
) -> Result<Synced, SyncError> {
    let state = held(states, scope, since).await?;
    // A paged answer's later pages come from the state, unlisted; if the
    // folder was renumbered meanwhile its summaries are refused, and the
    // listing below says so.
    let resumed = match state
        .as_ref()
        .and_then(|s| resume(s, window).map(|p| (s, p)))
    {
        Some((state, page)) => {
            let wanted: Vec<_> = page.added.iter().map(|(uid, _)| *uid).collect();
            match mailbox
                .summaries(&scope.folder, state.uid_validity, &wanted)
                .await
            {
                Ok(added) => Some((page, state.uid_validity, added)),
                Err(BackendError::NoMessage(_)) => None,
                Err(error) => return Err(error.into()),
            }
        }
        None => None,
    };
    let (mut page, uid_validity, added) = match resumed {
        Some(resumed) => resumed,
        None => listed(mailbox, scope, state.as_ref(), window).await?,
    };
    // Expunged between the listing and the fetch: never shown, so not
    // held either; the next listing will not mention it.
    // What the phone is told is what it holds (flags may have moved on
    // since the listing).
    for (uid, _) in &page.added {
        match added.iter().find(|listed| listed.key.uid == *uid) {
            Some(listed) => page.next.known.insert(*uid, listed.summary.flags),
            None => page.next.known.remove(uid),
        };
    }
    let token = states.save(scope, &page.next).await?;
    let key = |uid| MessageKey {
        folder: scope.folder.clone(),
        uid_validity,
        uid,
    };
    Ok(Synced {
        added,
        changed: page
            .changed
            .into_iter()
            .map(|(uid, flags)| (key(uid), flags))
            .collect(),
        removed: page.removed.into_iter().map(key).collect(),
        token,
        more: page.more,
    })
}

/// The state behind `since` with the phone's own changes recorded as
/// told (flags updated, messages removed), saved under a new token. UIDs
/// the state does not hold are left alone: a phone only changes what it
/// was told of.
pub async fn acknowledge(
    states: &dyn States,
    scope: &Scope,
    since: &Token,
    flagged: &[(Vec<Uid>, FlagUpdate)],
    removed: &[Uid],
) -> Result<Token, SyncError> {
    let mut state = held(states, scope, Some(since))
        .await?
        .ok_or(SyncError::UnknownToken)?;
    for (uids, update) in flagged {
        for uid in uids {
            if let Some(flags) = state.known.get_mut(uid) {
                *flags = update.apply(*flags);
            }
        }
    }
    for uid in removed {
        state.known.remove(uid);
    }
    Ok(states.save(scope, &state).await?)
}

/// How many entries a sync of `scope`'s folder from `since` would give
/// now: nothing is fetched beyond the listing, and nothing is saved.
pub async fn estimate(
    mailbox: &mut dyn Mailbox,
    states: &dyn States,
    scope: &Scope,
    since: Option<&Token>,
) -> Result<usize, SyncError> {
    let state = held(states, scope, since).await?;
    // The rest of a paged answer is what the phone waits for; changes
    // since come with the page after it.
    if let Some(pending) = state.as_ref().and_then(|s| s.pending.as_ref()) {
        return Ok(pending.uids.len());
    }
    let incremental = state
        .as_ref()
        .and_then(|s| s.modseq.map(|modseq| (s.uid_validity, modseq)));
    let listing = mailbox.listing(&scope.folder, incremental).await?;
    let page = plan(state.as_ref(), &listing, usize::MAX)?;
    Ok(page.added.len() + page.changed.len() + page.removed.len())
}

/// A page from a listing of the folder, with the summaries of what it adds.
async fn listed(
    mailbox: &mut dyn Mailbox,
    scope: &Scope,
    state: Option<&FolderState>,
    window: usize,
) -> Result<(Page, u32, Vec<Listed>), SyncError> {
    let incremental = state.and_then(|s| s.modseq.map(|modseq| (s.uid_validity, modseq)));
    let listing = mailbox.listing(&scope.folder, incremental).await?;
    let page = plan(state, &listing, window)?;
    let wanted: Vec<_> = page.added.iter().map(|(uid, _)| *uid).collect();
    let added = mailbox
        .summaries(&scope.folder, listing.uid_validity, &wanted)
        .await?;
    Ok((page, listing.uid_validity, added))
}
