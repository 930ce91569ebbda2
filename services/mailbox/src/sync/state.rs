//! What a phone holds of a folder, behind its sync token: the UIDs it was
//! told about with their flags as told, and the server's position. Kept by
//! the service (a token is only an id), so a UID diff works on servers
//! without CONDSTORE and a page can be resumed; encoded compactly (a
//! 10,000-message folder is about 20 KB). A paged answer also keeps the
//! new messages it has still to give ([`Pending`]), so its later pages
//! need no listing.

use std::collections::BTreeMap;

use crate::domain::{Flags, Uid};

/// The encoding's version; a state in another is treated as expired
/// (version 1, from before [`Pending`], is still read).
const VERSION: u8 = 2;

/// What the phone holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderState {
    /// The folder's UIDVALIDITY when the state was made.
    pub uid_validity: u32,
    /// The HIGHESTMODSEQ at which the phone had everything (see `plan`).
    pub modseq: Option<u64>,
    /// The messages it holds, with the flags it was told.
    pub known: BTreeMap<Uid, Flags>,
    /// New messages a paged answer has still to give.
    pub pending: Option<Pending>,
}

/// The rest of a paged answer: new messages the phone has not been given
/// yet, and the listing's position they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Their UIDs, newest first.
    pub uids: Vec<Uid>,
    /// The HIGHESTMODSEQ of the listing they came from: once they are all
    /// given, the phone has everything up to it.
    pub modseq: Option<u64>,
}

impl FolderState {
    /// Nothing held yet.
    pub fn empty(uid_validity: u32) -> Self {
        Self {
            uid_validity,
            modseq: None,
            known: BTreeMap::new(),
            pending: None,
        }
    }

    /// Bytes to store: version, UIDVALIDITY, modseq, then each UID as a
    /// varint delta from the previous one followed by its flag byte, then
    /// the pending UIDs (descending deltas) with their modseq.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.known.len() * 3);
        out.push(VERSION);
        out.extend_from_slice(&self.uid_validity.to_le_bytes());
        modseq(&mut out, self.modseq);
        varint(&mut out, self.known.len() as u64);
        let mut last = 0;
        for (uid, flags) in &self.known {
            varint(&mut out, u64::from(uid.0 - last));
            out.push(flags.bits());
            last = uid.0;
        }
        match &self.pending {
            None => out.push(0),
            Some(pending) => {
                out.push(1);
                modseq(&mut out, pending.modseq);
                varint(&mut out, pending.uids.len() as u64);
                let mut above = u64::from(u32::MAX) + 1;
                for uid in &pending.uids {
                    varint(&mut out, above - u64::from(uid.0));
                    above = u64::from(uid.0);
                }
            }
        }
        out
    }

    /// The state `bytes` encode; `None` for anything else (a stored state
    /// from another version, or damaged).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut at = Reader(bytes);
        let version = at.byte()?;
        if version != VERSION && version != 1 {
            return None;
        }
        let uid_validity = u32::from_le_bytes(at.array()?);
        let modseq = at.modseq()?;
        let count = at.varint()?;
        let mut known = BTreeMap::new();
        let mut last: u32 = 0;
        for _ in 0..count {
            let delta = u32::try_from(at.varint()?).ok()?;
            last = last.checked_add(delta).filter(|_| delta > 0)?;
            known.insert(Uid(last), Flags::from_bits(at.byte()?));
        }
        let pending = if version == 1 { None } else { at.pending()? };
        at.0.is_empty().then_some(Self {
            uid_validity,
            modseq,
            known,
            pending,
        })
    }
}

fn modseq(out: &mut Vec<u8>, modseq: Option<u64>) {
    match modseq {
        Some(modseq) => {
            out.push(1);
            out.extend_from_slice(&modseq.to_le_bytes());
        }
        None => out.push(0),
    }
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*first)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_at_checked(N)?;
        self.0 = rest;
        head.try_into().ok()
    }

    fn modseq(&mut self) -> Option<Option<u64>> {
        match self.byte()? {
            0 => Some(None),
            1 => Some(Some(u64::from_le_bytes(self.array()?))),
            _ => None,
        }
    }

    /// `Some(None)`: no pending part; `None`: damaged.
    fn pending(&mut self) -> Option<Option<Pending>> {
        match self.byte()? {
            0 => return Some(None),
            1 => {}
            _ => return None,
        }
        let modseq = self.modseq()?;
        let count = self.varint()?;
        let mut uids = Vec::new();
        let mut above = u64::from(u32::MAX) + 1;
        for _ in 0..count {
            let delta = self.varint()?;
            above = above.checked_sub(delta).filter(|_| delta > 0)?;
            uids.push(Uid(u32::try_from(above).ok()?));
        }
        Some(Some(Pending { uids, modseq }))
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: u32) -> FolderState {
        FolderState {
            uid_validity: 1_733_000_000,
            modseq: Some(123_456_789_012),
            known: (1..=n)
                .map(|i| {
                    (
                        Uid(i * 3 + (i % 7) * 1_000),
                        Flags::from_bits((i % 32) as u8),
                    )
                })
                .collect(),
            pending: None,
        }
    }

    #[test]
    fn states_round_trip() {
        for state in [FolderState::empty(9), sample(1), sample(10_000)] {
            assert_eq!(FolderState::decode(&state.encode()), Some(state));
        }
        let mut no_modseq = sample(3);
        no_modseq.modseq = None;
        assert_eq!(FolderState::decode(&no_modseq.encode()), Some(no_modseq));
        for modseq in [None, Some(77)] {
            let mut paging = sample(20);
            paging.pending = Some(Pending {
                uids: vec![Uid(u32::MAX), Uid(90_000), Uid(3), Uid(1)],
                modseq,
            });
            assert_eq!(FolderState::decode(&paging.encode()), Some(paging));
        }
    }

    #[test]
    fn a_state_from_before_pending_still_reads() {
        let mut v1 = sample(5).encode();
        assert_eq!(v1.pop(), Some(0), "no pending part");
        v1[0] = 1;
        assert_eq!(FolderState::decode(&v1), Some(sample(5)));
    }

    #[test]
    fn a_large_folder_stays_small() {
        assert!(sample(10_000).encode().len() < 40_000);
    }

    #[test]
    fn damaged_or_foreign_bytes_are_no_state() {
        let good = sample(50).encode();
        assert_eq!(FolderState::decode(&[]), None);
        assert_eq!(FolderState::decode(&good[..good.len() - 1]), None);
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(FolderState::decode(&trailing), None);
        let mut other_version = good;
        other_version[0] = 3;
        assert_eq!(FolderState::decode(&other_version), None);
    }
}
