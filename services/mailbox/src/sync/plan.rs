//! What one Sync answer holds: the difference between what the phone was
//! told (the token's [`FolderState`]) and what the server has now (a
//! [`Listing`]), cut to the window. Pure, so every rung is unit-tested.
//!
//! A state's `modseq` is the server's HIGHESTMODSEQ at which the phone
//! last had *everything*; while a large change set is paged out it stays
//! at the old value, so each page asks the server for the same changes
//! again and skips what the phone already holds. Without CONDSTORE every
//! listing is a full one and the same rule holds on the UID diff.
//!
//! When what is left after a page is only new messages (the first sync of
//! a large folder), their UIDs go into the state ([`Pending`]) with the
//! listing's HIGHESTMODSEQ, and [`resume`] gives the next pages from there
//! without listing the folder again; the last of them moves `modseq` to
//! that listing's, so whatever changed while paging comes with the next
//! sync.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use crate::domain::{Flags, Uid};

use super::state::{FolderState, Pending};

/// What the server says the folder holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The folder's UIDVALIDITY now.
    pub uid_validity: u32,
    /// Its HIGHESTMODSEQ, where the server has CONDSTORE.
    pub modseq: Option<u64>,
    /// What it lists.
    pub entries: Entries,
}

/// A listing's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entries {
    /// Every message and its flags.
    Full(BTreeMap<Uid, Flags>),
    /// Only what changed after the state's `modseq` (QRESYNC): messages
    /// added or re-flagged, and UIDs expunged.
    Since {
        /// Added or changed messages with their flags now.
        changed: BTreeMap<Uid, Flags>,
        /// Expunged UIDs as the server folds them into ranges (which may
        /// span UIDs the phone never saw, or that never existed).
        vanished: Vec<RangeInclusive<u32>>,
    },
}

/// One answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// New messages, newest (highest UID) first.
    pub added: Vec<(Uid, Flags)>,
    /// Messages whose flags changed.
    pub changed: Vec<(Uid, Flags)>,
    /// Messages gone.
    pub removed: Vec<Uid>,
    /// What the phone holds once it has this page.
    pub next: FolderState,
    /// Whether more remains.
    pub more: bool,
}

/// The token no longer describes this folder: its UIDVALIDITY changed, so
/// every UID the phone holds names nothing. The phone starts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the folder was renumbered (UIDVALIDITY {was} is now {now}); sync again from the start")]
pub struct Renumbered {
    /// The token's UIDVALIDITY.
    pub was: u32,
    /// The folder's now.
    pub now: u32,
}

/// The page for a phone holding `state` (`None`: nothing yet), at most
/// `window` entries (at least one).
pub fn plan(
    state: Option<&FolderState>,
    listing: &Listing,
    window: usize,
) -> Result<Page, Renumbered> {
    let empty;
    let state = match state {
        Some(state) if state.uid_validity != listing.uid_validity => {
            return Err(Renumbered {
                was: state.uid_validity,
                now: listing.uid_validity,
            });
        }
        Some(state) => state,
        None => {
            empty = FolderState::empty(listing.uid_validity);
            &empty
        }
    };
    let known = &state.known;
    let (mut removed, mut changed, mut added) = (Vec::new(), Vec::new(), Vec::new());
    match &listing.entries {
        Entries::Full(now) => {
            removed.extend(known.keys().filter(|uid| !now.contains_key(uid)));
            for (uid, flags) in now {
                match known.get(uid) {
                    Some(had) if had == flags => {}
                    Some(_) => changed.push((*uid, *flags)),
                    None => added.push((*uid, *flags)),
                }
            }
        }
        Entries::Since {
            changed: now,
            vanished,
        } => {
            let gone = |uid: &Uid| vanished.iter().any(|range| range.contains(&uid.0));
            for range in vanished.iter().filter(|r| r.start() <= r.end()) {
                let span = Uid(*range.start())..=Uid(*range.end());
                removed.extend(known.range(span).map(|(uid, _)| *uid));
            }
            removed.sort_unstable();
            removed.dedup();
            for (uid, flags) in now {
                match known.get(uid) {
                    _ if gone(uid) => {}
                    Some(had) if had == flags => {}
                    Some(_) => changed.push((*uid, *flags)),
                    None => added.push((*uid, *flags)),
                }
            }
        }
    }
    added.reverse();
    let window = window.max(1);
    let total = removed.len() + changed.len() + added.len();
    // Only new messages left after this page: they wait in the state.
    let rest = (removed.len() + changed.len() <= window)
        .then(|| added.split_off(added.len().min(window - removed.len() - changed.len())))
        .filter(|rest| !rest.is_empty());
    removed.truncate(window);
    changed.truncate(window - removed.len());
    added.truncate(window - removed.len() - changed.len());
    let more = total > window;
    let mut next = state.clone();
    next.pending = rest.map(|rest| Pending {
        uids: rest.into_iter().map(|(uid, _)| uid).collect(),
        modseq: listing.modseq,
    });
    for uid in &removed {
        next.known.remove(uid);
    }
    for (uid, flags) in changed.iter().chain(&added) {
        next.known.insert(*uid, *flags);
    }
    if !more {
        next.modseq = listing.modseq;
    }
    Ok(Page {
        added,
        changed,
        removed,
        next,
        more,
    })
}

/// The next page of a paged answer from what its state still holds, with
/// no listing; `None` when it holds nothing pending. The flags of what it
/// gives come with the summaries (the caller's), not from here.
pub fn resume(state: &FolderState, window: usize) -> Option<Page> {
    let pending = state.pending.as_ref().filter(|p| !p.uids.is_empty())?;
    let (now, rest) = pending.uids.split_at(window.max(1).min(pending.uids.len()));
    let added: Vec<(Uid, Flags)> = now.iter().map(|uid| (*uid, Flags::default())).collect();
    let mut next = state.clone();
    next.known.extend(added.iter().copied());
    next.pending = (!rest.is_empty()).then(|| Pending {
        uids: rest.to_vec(),
        modseq: pending.modseq,
    });
    if rest.is_empty() {
        next.modseq = pending.modseq;
    }
    Some(Page {
        added,
        changed: Vec::new(),
        removed: Vec::new(),
        next,
        more: !rest.is_empty(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(seen: bool) -> Flags {
        Flags {
            seen,
            ..Flags::default()
        }
    }

    fn full(uids: &[(u32, bool)], modseq: Option<u64>) -> Listing {
        Listing {
            uid_validity: 7,
            modseq,
            entries: Entries::Full(uids.iter().map(|(u, s)| (Uid(*u), flags(*s))).collect()),
        }
    }

    fn state(uids: &[(u32, bool)], modseq: Option<u64>) -> FolderState {
        FolderState {
            uid_validity: 7,
            modseq,
            known: uids.iter().map(|(u, s)| (Uid(*u), flags(*s))).collect(),
            pending: None,
        }
    }

    fn uids(items: &[(Uid, Flags)]) -> Vec<u32> {
        items.iter().map(|(u, _)| u.0).collect()
    }

    #[test]
    fn a_first_sync_lists_everything_newest_first() {
        let page = plan(
            None,
            &full(&[(1, true), (2, false), (3, false)], Some(9)),
            10,
        )
        .unwrap();
        assert_eq!(uids(&page.added), [3, 2, 1]);
        assert!(page.changed.is_empty() && page.removed.is_empty() && !page.more);
        assert_eq!(
            page.next,
            state(&[(1, true), (2, false), (3, false)], Some(9))
        );
    }

    #[test]
    fn a_small_window_pages_and_keeps_the_old_modseq_until_done() {
        let listing = full(
            &[(1, false), (2, false), (3, false), (4, false), (5, false)],
            Some(40),
        );
        let first = plan(None, &listing, 2).unwrap();
        assert_eq!(uids(&first.added), [5, 4]);
        assert!(first.more);
        assert_eq!(first.next.modseq, None);
        let second = plan(Some(&first.next), &listing, 2).unwrap();
        assert_eq!(uids(&second.added), [3, 2]);
        let third = plan(Some(&second.next), &listing, 2).unwrap();
        assert_eq!(uids(&third.added), [1]);
        assert!(!third.more);
        assert_eq!(third.next.modseq, Some(40));
        assert_eq!(third.next.known.len(), 5);
    }

    #[test]
    fn a_first_sync_lists_once_and_pages_from_the_state() {
        let listing = full(
            &[(1, false), (2, true), (3, false), (4, false), (5, false)],
            Some(40),
        );
        let first = plan(None, &listing, 2).unwrap();
        assert_eq!(uids(&first.added), [5, 4]);
        assert!(first.more);
        let pending = first.next.pending.clone().unwrap();
        assert_eq!(pending.uids, [Uid(3), Uid(2), Uid(1)]);
        assert_eq!(pending.modseq, Some(40));
        // No listing for the next pages.
        let second = resume(&first.next, 2).unwrap();
        assert_eq!(uids(&second.added), [3, 2]);
        assert!(second.more && second.next.modseq.is_none());
        let third = resume(&second.next, 2).unwrap();
        assert_eq!(uids(&third.added), [1]);
        assert!(!third.more && third.next.pending.is_none());
        assert_eq!(third.next.modseq, Some(40), "everything up to the listing");
        assert_eq!(third.next.known.len(), 5);
        assert!(resume(&third.next, 2).is_none(), "then a listing again");
        // A listing after that finds the flags the summaries did not set
        // only if they differ; here the server's flags win on the diff.
        let after = plan(Some(&third.next), &listing, 10).unwrap();
        assert_eq!(uids(&after.changed), [2]);
    }

    #[test]
    fn removals_and_changes_past_the_window_leave_nothing_pending() {
        let had = state(&[(1, false), (2, false), (3, false)], Some(1));
        let listing = full(&[(2, true), (3, true), (4, false)], Some(2));
        let page = plan(Some(&had), &listing, 2).unwrap();
        assert!(page.more && page.next.pending.is_none(), "{page:?}");
        let page = plan(Some(&had), &listing, 3).unwrap();
        assert!(page.more);
        assert_eq!(page.next.pending.unwrap().uids, [Uid(4)]);
    }

    #[test]
    fn a_uid_diff_finds_flag_changes_and_expunges() {
        let had = state(&[(1, false), (2, false), (3, true)], None);
        let page = plan(
            Some(&had),
            &full(&[(1, true), (3, true), (4, false)], None),
            10,
        )
        .unwrap();
        assert_eq!(page.removed, [Uid(2)]);
        assert_eq!(page.changed, [(Uid(1), flags(true))]);
        assert_eq!(uids(&page.added), [4]);
        assert_eq!(page.next, state(&[(1, true), (3, true), (4, false)], None));
    }

    #[test]
    fn nothing_changed_gives_an_empty_page_at_the_new_modseq() {
        let had = state(&[(1, false)], Some(5));
        let page = plan(Some(&had), &full(&[(1, false)], Some(6)), 10).unwrap();
        assert!(page.added.is_empty() && page.changed.is_empty() && page.removed.is_empty());
        assert_eq!(page.next.modseq, Some(6));
    }

    #[test]
    fn removals_come_first_then_changes_then_additions() {
        let had = state(&[(1, false), (2, false), (3, false)], Some(1));
        let listing = full(&[(2, true), (3, true), (4, false), (5, false)], Some(2));
        let page = plan(Some(&had), &listing, 2).unwrap();
        assert_eq!(page.removed, [Uid(1)]);
        assert_eq!(uids(&page.changed), [2]);
        assert!(page.added.is_empty() && page.more);
        let rest = plan(Some(&page.next), &listing, 10).unwrap();
        assert!(rest.removed.is_empty());
        assert_eq!(uids(&rest.changed), [3]);
        assert_eq!(uids(&rest.added), [5, 4]);
        assert_eq!(rest.next.modseq, Some(2));
    }

    #[test]
    fn a_qresync_listing_is_filtered_against_what_the_phone_holds() {
        let had = state(&[(1, false), (2, false)], Some(10));
        let listing = Listing {
            uid_validity: 7,
            modseq: Some(14),
            entries: Entries::Since {
                // 2 re-flagged; 3 new; 1 changed back to what the phone has.
                changed: [
                    (Uid(1), flags(false)),
                    (Uid(2), flags(true)),
                    (Uid(3), flags(false)),
                ]
                .into_iter()
                .collect(),
                // 1 gone; 9 was never seen by the phone; a server's
                // fold may span UIDs that never existed.
                vanished: vec![1..=1, 9..=u32::MAX],
            },
        };
        let page = plan(Some(&had), &listing, 10).unwrap();
        assert_eq!(page.removed, [Uid(1)]);
        assert_eq!(page.changed, [(Uid(2), flags(true))]);
        assert_eq!(uids(&page.added), [3]);
        assert_eq!(page.next, state(&[(2, true), (3, false)], Some(14)));
    }

    #[test]
    fn a_renumbered_folder_invalidates_the_token() {
        let mut had = state(&[(1, false)], None);
        had.uid_validity = 6;
        assert_eq!(
            plan(Some(&had), &full(&[(1, false)], None), 10),
            Err(Renumbered { was: 6, now: 7 })
        );
    }

    #[test]
    fn a_zero_window_still_makes_progress() {
        let page = plan(None, &full(&[(1, false), (2, false)], None), 0).unwrap();
        assert_eq!(uids(&page.added), [2]);
        assert!(page.more);
    }
}
