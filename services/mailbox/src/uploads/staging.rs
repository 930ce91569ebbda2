//! Chunks on disk while an upload is in progress: one file per accepted
//! chunk under `<staging>/<upload id>/`, on the blob volume every replica
//! mounts, so a phone's next chunk may reach any replica. A chunk file is
//! written under a name no other write uses and synced before the ledger
//! records it, so two replicas racing on one offset cannot mix their bytes:
//! the ledger names the one that won.

use std::io::Write;
use std::path::PathBuf;

use pushmail_common::blob::{BlobError, ensure_room};

use super::{Chunk, UploadId};

/// The staging directory.
#[derive(Debug, Clone)]
pub struct Staging {
    dir: PathBuf,
    /// Free bytes a chunk must leave on the volume.
    reserve: u64,
}

impl Staging {
    /// Stages under `dir`, refusing chunks that would leave less than
    /// `reserve` bytes free.
    pub fn new(dir: impl Into<PathBuf>, reserve: u64) -> Self {
        Self {
            dir: dir.into(),
            reserve,
        }
    }

    fn upload_dir(&self, id: &UploadId) -> PathBuf {
        self.dir.join(id.as_str())
    }

    /// Writes `data` for `offset` and returns the file's name.
    pub async fn write(
        &self,
        id: &UploadId,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<String, BlobError> {
        let dir = self.upload_dir(id);
        let name = format!("{offset:020}-{}", uuid::Uuid::new_v4().simple());
        let path = dir.join(&name);
        let (root, reserve) = (self.dir.clone(), self.reserve);
        tokio::task::spawn_blocking(move || -> Result<(), BlobError> {
            // statvfs blocks too (a network volume): off the async worker.
            ensure_room(&root, reserve, data.len() as u64)?;
            std::fs::create_dir_all(&dir)?;
            let mut file = std::fs::File::options()
                .write(true)
                .create_new(true)
                .open(&path)?;
            file.write_all(&data)?;
            file.sync_all()?;
            // The name must survive a crash as well as the bytes.
            Ok(std::fs::File::open(&dir)?.sync_all()?)
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(name)
    }

    /// The upload's bytes: its recorded chunks in order, each checked
    /// against the length the ledger recorded.
    pub async fn assemble(&self, id: &UploadId, chunks: Vec<Chunk>) -> Result<Vec<u8>, BlobError> {
        let dir = self.upload_dir(id);
        tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
            let total = chunks.iter().map(|c| c.len).sum::<u64>();
            let mut bytes = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
            for chunk in chunks {
                if chunk.offset != bytes.len() as u64 || chunk.file.contains(['/', '\\']) {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "chunk at {} does not follow byte {}",
                            chunk.offset,
                            bytes.len()
                        ),
                    ));
                }
                let data = std::fs::read(dir.join(&chunk.file))?;
                if data.len() as u64 != chunk.len {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "chunk {} holds {} bytes, {} recorded",
                            chunk.file,
                            data.len(),
                            chunk.len
                        ),
                    ));
                }
                bytes.extend_from_slice(&data);
            }
            Ok(bytes)
        })
        .await
        .map_err(std::io::Error::other)?
        .map_err(BlobError::Io)
    }

    /// Removes the upload's chunks (nothing when there are none).
    pub async fn remove(&self, id: &UploadId) -> Result<(), BlobError> {
        match tokio::fs::remove_dir_all(self.upload_dir(id)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// The uploads with files staged, for sweeping what the ledger no
    /// longer knows (a crash between the two).
    pub async fn staged(&self) -> Result<Vec<UploadId>, BlobError> {
        let mut ids = Vec::new();
        let mut entries = match tokio::fs::read_dir(&self.dir).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
            Err(e) => return Err(e.into()),
        };
        while let Some(entry) = entries.next_entry().await? {
            if let Some(id) = entry.file_name().to_str().and_then(UploadId::parse) {
                ids.push(id);
            }
        }
        Ok(ids)
    }
}
