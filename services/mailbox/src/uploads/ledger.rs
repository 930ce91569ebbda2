//! What each upload has received, in the database every replica shares:
//! an append is accepted only at the offset the ledger holds, in one
//! conditional write, so a chunk repeated by a phone (or raced by two
//! replicas) is counted once.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Chunk, Owner, Upload, UploadId};
use crate::sync::StatesError;

/// What an append came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Recorded; the upload as it now stands.
    Accepted(Upload),
    /// Not at the upload's end (or the upload is complete): nothing
    /// recorded; the upload as it stands, to resume from.
    Elsewhere(Upload),
    /// No such upload for this owner (or it expired).
    Missing,
}

/// Why a new upload was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The owner has `max` uploads in progress already.
    #[error("{max} uploads are in progress already")]
    TooManyOpen {
        /// The bound.
        max: u32,
    },
    /// The ledger failed.
    #[error(transparent)]
    States(#[from] StatesError),
}

/// The uploads' ledger.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Records `upload` unless its owner has `max_open` incomplete,
    /// unexpired uploads already.
    async fn create(&self, upload: &Upload, max_open: u32) -> Result<(), Refused>;
    /// The owner's upload, unless it expired by `now_ms`.
    async fn get(
        &self,
        owner: &Owner,
        id: &UploadId,
        now_ms: i64,
    ) -> Result<Option<Upload>, StatesError>;
    /// Records `chunk` when it starts where the upload ends.
    async fn append(
        &self,
        owner: &Owner,
        id: &UploadId,
        chunk: &Chunk,
        now_ms: i64,
    ) -> Result<Appended, StatesError>;
    /// The chunks recorded, in order.
    async fn chunks(&self, id: &UploadId) -> Result<Vec<Chunk>, StatesError>;
    /// Marks the upload complete, its bytes at `blob`, usable until
    /// `expires_ms`.
    async fn complete(&self, id: &UploadId, blob: &str, expires_ms: i64)
    -> Result<(), StatesError>;
    /// Up to `limit` uploads expired by `now_ms`.
    async fn expired(&self, now_ms: i64, limit: u32) -> Result<Vec<UploadId>, StatesError>;
    /// Whether the ledger holds `id` at all (expired or not).
    async fn exists(&self, id: &UploadId) -> Result<bool, StatesError>;
    /// Forgets the upload and its chunks.
    async fn remove(&self, id: &UploadId) -> Result<(), StatesError>;
}

/// In memory (tests).
#[derive(Debug, Default)]
pub struct MemoryLedger {
    inner: Mutex<HashMap<UploadId, (Upload, Vec<Chunk>)>>,
}

impl MemoryLedger {
    fn locked(&self) -> std::sync::MutexGuard<'_, HashMap<UploadId, (Upload, Vec<Chunk>)>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes `id` expired now, as time passing would.
    #[cfg(test)]
    pub(crate) fn expire_for_tests(&self, id: &UploadId) {
        if let Some((upload, _)) = self.locked().get_mut(id) {
            upload.expires_ms = 0;
        }
    }
}

#[async_trait]
impl Ledger for MemoryLedger {
    async fn create(&self, upload: &Upload, max_open: u32) -> Result<(), Refused> {
        let mut inner = self.locked();
        let open = inner
            .values()
            .filter(|(u, _)| {
                u.owner == upload.owner && u.blob.is_none() && u.expires_ms > upload.created_ms
            })
            .count();
        if open >= max_open as usize {
            return Err(Refused::TooManyOpen { max: max_open });
        }
        inner.insert(upload.id.clone(), (upload.clone(), Vec::new()));
        Ok(())
    }

    async fn get(
        &self,
        owner: &Owner,
        id: &UploadId,
        now_ms: i64,
    ) -> Result<Option<Upload>, StatesError> {
        Ok(self
            .locked()
            .get(id)
            .filter(|(u, _)| &u.owner == owner && u.expires_ms > now_ms)
            .map(|(u, _)| u.clone()))
    }

    async fn append(
        &self,
        owner: &Owner,
        id: &UploadId,
        chunk: &Chunk,
        now_ms: i64,
    ) -> Result<Appended, StatesError> {
        let mut inner = self.locked();
        let Some((upload, chunks)) = inner
            .get_mut(id)
            .filter(|(u, _)| &u.owner == owner && u.expires_ms > now_ms)
        else {
            return Ok(Appended::Missing);
        };
        if upload.received != chunk.offset || upload.blob.is_some() {
            return Ok(Appended::Elsewhere(upload.clone()));
        }
        upload.received += chunk.len;
        chunks.push(chunk.clone());
        Ok(Appended::Accepted(upload.clone()))
    }

    async fn chunks(&self, id: &UploadId) -> Result<Vec<Chunk>, StatesError> {
        Ok(self
            .locked()
            .get(id)
            .map(|(_, c)| c.clone())
            .unwrap_or_default())
    }

    async fn complete(
        &self,
        id: &UploadId,
        blob: &str,
        expires_ms: i64,
    ) -> Result<(), StatesError> {
        if let Some((upload, _)) = self.locked().get_mut(id)
            && upload.blob.is_none()
        {
            upload.blob = Some(blob.to_owned());
            upload.expires_ms = expires_ms;
        }
        Ok(())
    }

    async fn expired(&self, now_ms: i64, limit: u32) -> Result<Vec<UploadId>, StatesError> {
        Ok(self
            .locked()
            .values()
            .filter(|(u, _)| u.expires_ms <= now_ms)
            .take(limit as usize)
            .map(|(u, _)| u.id.clone())
            .collect())
    }

    async fn exists(&self, id: &UploadId) -> Result<bool, StatesError> {
        Ok(self.locked().contains_key(id))
    }

    async fn remove(&self, id: &UploadId) -> Result<(), StatesError> {
        self.locked().remove(id);
        Ok(())
    }
}
