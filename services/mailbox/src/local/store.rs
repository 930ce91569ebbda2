//! The platform's own store as a [`Mailbox`]: the index says what is
//! where, the blob store holds the bytes.

use std::sync::Arc;

use async_trait::async_trait;
use pushmail_common::blob::{self, BlobError, BlobRef, BlobStore};

use super::{Arrival, DELIMITER, Index, IndexError, Owner, STANDARD, role_of, stored};
use crate::backend::{BackendError, Mailbox};
use crate::domain::{FlagUpdate, Flags, Folder, FolderId, Listed, MessageKey, Query, Uid};
use crate::sync::{Entries, Listing};

/// Summaries read from the index at once while searching.
const SEARCH_PAGE: usize = 500;

/// One account's mailbox in the platform's own store.
pub struct LocalMailbox {
    index: Arc<dyn Index>,
    blobs: Arc<dyn BlobStore>,
    owner: Owner,
}

impl std::fmt::Debug for LocalMailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalMailbox")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl LocalMailbox {
    /// `owner`'s mailbox.
    pub fn new(index: Arc<dyn Index>, blobs: Arc<dyn BlobStore>, owner: Owner) -> Self {
        Self {
            index,
            blobs,
            owner,
        }
    }
}

impl From<IndexError> for BackendError {
    fn from(error: IndexError) -> Self {
        match error {
            IndexError::NoFolder(name) => Self::NoFolder(FolderId::new(name)),
            IndexError::FolderExists(name) => Self::FolderExists(FolderId::new(name)),
            renumbered @ IndexError::Renumbered { .. } => Self::NoMessage(renumbered.to_string()),
            IndexError::Unavailable(source) => Self::Unavailable(std::io::Error::other(source)),
        }
    }
}

fn blob_failed(error: BlobError) -> BackendError {
    BackendError::Unavailable(std::io::Error::other(error))
}

/// The stored name of `name` under `parent`.
fn nested(parent: Option<&FolderId>, name: &str) -> Result<String, BackendError> {
    if name.contains(DELIMITER) {
        return Err(BackendError::BadName("must not contain '/'"));
    }
    Ok(match parent {
        Some(parent) => format!("{}{DELIMITER}{name}", parent.raw()),
        None => name.to_owned(),
    })
}

#[async_trait]
impl Mailbox for LocalMailbox {
    async fn folders(&mut self) -> Result<Vec<Folder>, BackendError> {
        let mut rows = self.index.folders(&self.owner).await?;
        rows.sort_by_key(|row| {
            STANDARD
                .iter()
                .position(|(name, _)| *name == row.name)
                .unwrap_or(STANDARD.len())
        });
        Ok(rows
            .into_iter()
            .map(|row| {
                let (parent, name) = match row.name.rsplit_once(DELIMITER) {
                    Some((parent, name)) => (Some(FolderId::new(parent)), name.to_owned()),
                    None => (None, row.name.clone()),
                };
                Folder {
                    id: FolderId::new(row.name.clone()),
                    role: role_of(&row.name),
                    version: format!("{}.{}", row.uid_validity, row.modseq),
                    name,
                    parent,
                    total: row.total,
                    unread: row.unread,
                }
            })
            .collect())
    }

    async fn listing(
        &mut self,
        folder: &FolderId,
        _since: Option<(u32, u64)>,
    ) -> Result<Listing, BackendError> {
        // Always the full list: one indexed query, no cheaper than the
        // phone's state diffed against it.
        let (uid_validity, flags) = self.index.listing(&self.owner, folder.raw()).await?;
        Ok(Listing {
            uid_validity,
            modseq: None,
            entries: Entries::Full(flags),
        })
    }

    async fn summaries(
        &mut self,
        folder: &FolderId,
        uid_validity: u32,
        uids: &[Uid],
    ) -> Result<Vec<Listed>, BackendError> {
        let mut found = self
            .index
            .entries(&self.owner, folder.raw(), uid_validity, uids)
            .await?;
        let mut listed = Vec::with_capacity(found.len());
        for uid in uids {
            let Ok(at) = found.binary_search_by_key(uid, |e| e.uid) else {
                continue;
            };
            let entry = found.remove(at);
            let mut summary = stored::decode(&entry.summary);
            summary.flags = entry.flags;
            summary.size_bytes = entry.size_bytes;
            summary.received_ms = Some(entry.received_ms);
            listed.push(Listed {
                key: MessageKey {
                    folder: folder.clone(),
                    uid_validity,
                    uid: entry.uid,
                },
                summary,
            });
        }
        Ok(listed)
    }

    async fn search(
        &mut self,
        folder: &FolderId,
        query: &Query,
    ) -> Result<(u32, Vec<Uid>), BackendError> {
        // The index keeps each message's summary, not its words: the
        // folder's summaries are read and matched here, a page at a time.
        let (uid_validity, flags) = self.index.listing(&self.owner, folder.raw()).await?;
        let uids: Vec<Uid> = flags.into_keys().collect();
        let mut found = Vec::new();
        for page in uids.chunks(SEARCH_PAGE) {
            let entries = self
                .index
                .entries(&self.owner, folder.raw(), uid_validity, page)
                .await?;
            found.extend(
                entries
                    .into_iter()
                    .filter(|e| {
                        query.dated(e.received_ms) && query.summarised(&stored::decode(&e.summary))
                    })
                    .map(|e| e.uid),
            );
        }
        Ok((uid_validity, found))
    }

    async fn raw(&mut self, key: &MessageKey) -> Result<Vec<u8>, BackendError> {
        let entry = self
            .index
            .entries(&self.owner, key.folder.raw(), key.uid_validity, &[key.uid])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| BackendError::NoMessage(key.encode()))?;
        let blob = BlobRef::parse(&entry.blob).map_err(|_| {
            BackendError::Protocol(format!("index names a bad blob {}", entry.blob))
        })?;
        self.blobs
            .get(&blob)
            .await
            .map_err(blob_failed)?
            // Its stored copy was swept: the message is past retention,
            // and the next sweep of the index forgets it too.
            .ok_or_else(|| BackendError::NoMessage(key.encode()))
    }

    async fn set_flags(
        &mut self,
        folder: &FolderId,
        uid_validity: u32,
        uids: &[Uid],
        update: FlagUpdate,
    ) -> Result<(), BackendError> {
        if uids.is_empty() || update.is_empty() {
            return Ok(());
        }
        Ok(self
            .index
            .set_flags(&self.owner, folder.raw(), uid_validity, uids, update)
            .await?)
    }

    async fn move_to(
        &mut self,
        folder: &FolderId,
        uid_validity: u32,
        uids: &[Uid],
        to: &FolderId,
    ) -> Result<Vec<(Uid, Option<MessageKey>)>, BackendError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let moved = self
            .index
            .move_to(&self.owner, folder.raw(), uid_validity, uids, to.raw())
            .await?;
        Ok(moved
            .into_iter()
            .map(|(was, to_validity, uid)| {
                (
                    was,
                    Some(MessageKey {
                        folder: to.clone(),
                        uid_validity: to_validity,
                        uid,
                    }),
                )
            })
            .collect())
    }

    async fn expunge(
        &mut self,
        folder: &FolderId,
        uid_validity: u32,
        uids: &[Uid],
    ) -> Result<(), BackendError> {
        if uids.is_empty() {
            return Ok(());
        }
        Ok(self
            .index
            .expunge(&self.owner, folder.raw(), uid_validity, uids)
            .await?)
    }

    async fn append(
        &mut self,
        folder: &FolderId,
        raw: &[u8],
        flags: Flags,
    ) -> Result<Option<MessageKey>, BackendError> {
        let blob = self.blobs.put(raw).await.map_err(blob_failed)?;
        // Granted like arrived mail, so the phone fetches it the same way
        // and retention counts from now.
        self.blobs
            .grant(&blob::owner(&self.owner.tenant, &self.owner.account), &blob)
            .await
            .map_err(blob_failed)?;
        let arrival = Arrival::of_message(
            format!("append:{}", uuid::Uuid::new_v4().simple()),
            blob.as_str().to_owned(),
            raw,
            pushmail_common::clock::now_ms(),
            flags,
        );
        let filed = self.index.file(&self.owner, folder.raw(), &arrival).await?;
        Ok(filed.map(|(uid_validity, uid)| MessageKey {
            folder: folder.clone(),
            uid_validity,
            uid,
        }))
    }

    async fn create_folder(
        &mut self,
        parent: Option<&FolderId>,
        name: &str,
    ) -> Result<FolderId, BackendError> {
        let raw = nested(parent, name)?;
        self.index.create_folder(&self.owner, &raw).await?;
        Ok(FolderId::new(raw))
    }

    async fn rename_folder(
        &mut self,
        folder: &FolderId,
        parent: Option<&FolderId>,
        name: &str,
    ) -> Result<FolderId, BackendError> {
        let raw = nested(parent, name)?;
        self.index
            .rename_folder(&self.owner, folder.raw(), &raw)
            .await?;
        Ok(FolderId::new(raw))
    }

    async fn delete_folder(&mut self, folder: &FolderId) -> Result<(), BackendError> {
        Ok(self.index.delete_folder(&self.owner, folder.raw()).await?)
    }

    async fn close(self: Box<Self>) {}
}
