//! The index in memory: tests, and the reference the SQL ones are held to.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::{
    Arrival, Entry, FolderRow, Index, IndexError, Owner, STANDARD, masks, new_uid_validity, renamed,
};
use crate::domain::{FlagUpdate, Flags, Uid};

#[derive(Debug)]
struct Folder {
    uid_validity: u32,
    next_uid: u32,
    modseq: u64,
    messages: BTreeMap<Uid, Entry>,
}

#[derive(Debug, Default)]
struct Account {
    folders: BTreeMap<String, Folder>,
    /// Arrival keys filed, with when they arrived.
    keys: HashMap<String, i64>,
}

impl Account {
    fn made() -> Self {
        let uid_validity = new_uid_validity();
        Self {
            folders: STANDARD
                .iter()
                .map(|(name, _)| {
                    (
                        (*name).to_owned(),
                        Folder {
                            uid_validity,
                            next_uid: 1,
                            modseq: 1,
                            messages: BTreeMap::new(),
                        },
                    )
                })
                .collect(),
            keys: HashMap::new(),
        }
    }

    fn folder(&mut self, name: &str, uid_validity: Option<u32>) -> Result<&mut Folder, IndexError> {
        let folder = self
            .folders
            .get_mut(name)
            .ok_or_else(|| IndexError::NoFolder(name.to_owned()))?;
        match uid_validity {
            Some(asked) if asked != folder.uid_validity => Err(IndexError::Renumbered {
                folder: name.to_owned(),
                asked,
                now: folder.uid_validity,
            }),
            _ => Ok(folder),
        }
    }
}

impl Folder {
    fn add(&mut self, mut entry: Entry) -> Uid {
        let uid = Uid(self.next_uid);
        self.next_uid += 1;
        self.modseq += 1;
        entry.uid = uid;
        self.messages.insert(uid, entry);
        uid
    }
}

/// In memory.
#[derive(Debug, Default)]
pub struct MemoryIndex {
    accounts: Mutex<BTreeMap<Owner, Account>>,
}

impl MemoryIndex {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    fn account(&self, owner: &Owner) -> AccountGuard<'_> {
        let mut accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        accounts.entry(owner.clone()).or_insert_with(Account::made);
        AccountGuard {
            accounts,
            owner: owner.clone(),
        }
    }
}

struct AccountGuard<'a> {
    accounts: MutexGuard<'a, BTreeMap<Owner, Account>>,
    owner: Owner,
}

impl std::ops::Deref for AccountGuard<'_> {
    type Target = Account;
    fn deref(&self) -> &Account {
        &self.accounts[&self.owner]
    }
}

impl std::ops::DerefMut for AccountGuard<'_> {
    fn deref_mut(&mut self) -> &mut Account {
        self.accounts
            .get_mut(&self.owner)
            .unwrap_or_else(|| unreachable!("made when the guard was taken"))
    }
}

#[async_trait]
impl Index for MemoryIndex {
    async fn file(
        &self,
        owner: &Owner,
        folder: &str,
        arrival: &Arrival,
    ) -> Result<Option<(u32, Uid)>, IndexError> {
        let mut account = self.account(owner);
        account.folder(folder, None)?;
        if account.keys.contains_key(&arrival.key) {
            return Ok(None);
        }
        account
            .keys
            .insert(arrival.key.clone(), arrival.received_ms);
        let target = account.folder(folder, None)?;
        let uid = target.add(Entry {
            uid: Uid(0),
            flags: arrival.flags,
            blob: arrival.blob.clone(),
            size_bytes: arrival.size_bytes,
            received_ms: arrival.received_ms,
            summary: arrival.summary.clone(),
        });
        Ok(Some((target.uid_validity, uid)))
    }

    async fn folders(&self, owner: &Owner) -> Result<Vec<FolderRow>, IndexError> {
        let account = self.account(owner);
        Ok(account
            .folders
            .iter()
            .map(|(name, folder)| FolderRow {
                name: name.clone(),
                uid_validity: folder.uid_validity,
                modseq: folder.modseq,
                total: u32::try_from(folder.messages.len()).unwrap_or(u32::MAX),
                unread: u32::try_from(folder.messages.values().filter(|m| !m.flags.seen).count())
                    .unwrap_or(u32::MAX),
            })
            .collect())
    }

    async fn listing(
        &self,
        owner: &Owner,
        folder: &str,
    ) -> Result<(u32, BTreeMap<Uid, Flags>), IndexError> {
        let mut account = self.account(owner);
        let folder = account.folder(folder, None)?;
        Ok((
            folder.uid_validity,
            folder
                .messages
                .iter()
                .map(|(uid, entry)| (*uid, entry.flags))
                .collect(),
        ))
    }

    async fn entries(
        &self,
        owner: &Owner,
        folder: &str,
        uid_validity: u32,
        uids: &[Uid],
    ) -> Result<Vec<Entry>, IndexError> {
        let mut account = self.account(owner);
        let folder = account.folder(folder, Some(uid_validity))?;
        let mut found: Vec<Entry> = uids
            .iter()
            .filter_map(|uid| folder.messages.get(uid).cloned())
            .collect();
        found.sort_by_key(|e| e.uid);
        found.dedup_by_key(|e| e.uid);
        Ok(found)
    }

    async fn set_flags(
        &self,
        owner: &Owner,
        folder: &str,
        uid_validity: u32,
        uids: &[Uid],
        update: FlagUpdate,
    ) -> Result<(), IndexError> {
        let (on, off) = masks(update);
        let mut account = self.account(owner);
        let folder = account.folder(folder, Some(uid_validity))?;
        let mut changed = false;
        for uid in uids {
            if let Some(entry) = folder.messages.get_mut(uid) {
                let now = Flags::from_bits((entry.flags.bits() | on) & !off);
                changed |= now != entry.flags;
                entry.flags = now;
            }
        }
        if changed {
            folder.modseq += 1;
        }
        Ok(())
    }

    async fn move_to(
        &self,
        owner: &Owner,
        folder: &str,
        uid_validity: u32,
        uids: &[Uid],
        to: &str,
    ) -> Result<Vec<(Uid, u32, Uid)>, IndexError> {
        let mut account = self.account(owner);
        let to_validity = account.folder(to, None)?.uid_validity;
        let source = account.folder(folder, Some(uid_validity))?;
        if folder == to {
            return Ok(uids
                .iter()
                .filter(|uid| source.messages.contains_key(uid))
                .map(|uid| (*uid, to_validity, *uid))
                .collect());
        }
        let taken: Vec<Entry> = uids
            .iter()
            .filter_map(|uid| source.messages.remove(uid))
            .collect();
        if !taken.is_empty() {
            source.modseq += 1;
        }
        let target = account.folder(to, None)?;
        Ok(taken
            .into_iter()
            .map(|entry| {
                let was = entry.uid;
                (was, to_validity, target.add(entry))
            })
            .collect())
    }

    async fn expunge(
        &self,
        owner: &Owner,
        folder: &str,
        uid_validity: u32,
        uids: &[Uid],
    ) -> Result<(), IndexError> {
        let mut account = self.account(owner);
        let folder = account.folder(folder, Some(uid_validity))?;
        let before = folder.messages.len();
        for uid in uids {
            folder.messages.remove(uid);
        }
        if folder.messages.len() != before {
            folder.modseq += 1;
        }
        Ok(())
    }

    async fn create_folder(&self, owner: &Owner, name: &str) -> Result<(), IndexError> {
        let mut account = self.account(owner);
        if account.folders.contains_key(name) {
            return Err(IndexError::FolderExists(name.to_owned()));
        }
        account.folders.insert(
            name.to_owned(),
            Folder {
                uid_validity: new_uid_validity(),
                next_uid: 1,
                modseq: 1,
                messages: BTreeMap::new(),
            },
        );
        Ok(())
    }

    async fn rename_folder(&self, owner: &Owner, from: &str, to: &str) -> Result<(), IndexError> {
        let mut account = self.account(owner);
        if !account.folders.contains_key(from) {
            return Err(IndexError::NoFolder(from.to_owned()));
        }
        if account.folders.contains_key(to) {
            return Err(IndexError::FolderExists(to.to_owned()));
        }
        let moving: Vec<(String, String)> = account
            .folders
            .keys()
            .filter_map(|name| renamed(name, from, to).map(|new| (name.clone(), new)))
            .collect();
        for (old, new) in moving {
            if let Some(folder) = account.folders.remove(&old) {
                account.folders.insert(new, folder);
            }
        }
        Ok(())
    }

    async fn delete_folder(&self, owner: &Owner, name: &str) -> Result<(), IndexError> {
        let mut account = self.account(owner);
        account
            .folders
            .remove(name)
            .map(drop)
            .ok_or_else(|| IndexError::NoFolder(name.to_owned()))
    }

    async fn forget(&self, owner: &Owner) -> Result<(), IndexError> {
        self.accounts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(owner);
        Ok(())
    }

    async fn tenants(&self) -> Result<Vec<String>, IndexError> {
        let accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        let mut tenants: Vec<String> = accounts.keys().map(|o| o.tenant.clone()).collect();
        tenants.dedup();
        Ok(tenants)
    }

    async fn expire(&self, tenant: &str, before_ms: i64) -> Result<u64, IndexError> {
        let mut accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        let mut gone = 0;
        for (_, account) in accounts.iter_mut().filter(|(o, _)| o.tenant == tenant) {
            account.keys.retain(|_, at| *at >= before_ms);
            for folder in account.folders.values_mut() {
                let before = folder.messages.len();
                folder.messages.retain(|_, m| m.received_ms >= before_ms);
                let removed = before - folder.messages.len();
                if removed > 0 {
                    folder.modseq += 1;
                    gone += removed as u64;
                }
            }
        }
        Ok(gone)
    }
}
