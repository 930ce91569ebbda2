//! The blob store: raw messages and converted attachments, addressed by
//! the SHA-256 of their content, so a message stored twice is stored once.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

mod sweep;

pub use sweep::{Swept, sweep_every};

/// A content address: `sha256:<64 hex digits>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobRef(String);

impl BlobRef {
    /// The address of `content`.
    pub fn of(content: &[u8]) -> Self {
        Self(format!("sha256:{}", hex::encode(Sha256::digest(content))))
    }

    /// Parses an address received from outside.
    pub fn parse(text: &str) -> Result<Self, BlobError> {
        let hex_part = text.strip_prefix("sha256:").ok_or(BlobError::BadRef)?;
        if hex_part.len() != 64
            || !hex_part
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(BlobError::BadRef);
        }
        Ok(Self(text.to_owned()))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn digest(&self) -> &str {
        &self.0["sha256:".len()..]
    }
}

/// The grant owner of a tenant's account (see [`BlobStore::grant`]).
pub fn owner(tenant: &str, account: &str) -> String {
    format!("{tenant}/{account}")
}

/// Blob store failures.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The reference is not `sha256:<hex>`.
    #[error("malformed blob reference")]
    BadRef,
    /// Storage failed.
    #[error("blob storage: {0}")]
    Io(#[from] std::io::Error),
    /// The volume is (nearly) full: new mail waits rather than filling it
    /// for everyone (a sender retries a temporary failure).
    #[error("blob storage is full: {free} bytes free, {reserve} kept in reserve")]
    Full {
        /// Bytes free on the volume.
        free: u64,
        /// `blob.min_free_bytes`.
        reserve: u64,
    },
}

/// Stores immutable blobs by content hash.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `content` durably and returns its address.
    async fn put(&self, content: &[u8]) -> Result<BlobRef, BlobError>;
    /// The blob, or `None` when absent.
    async fn get(&self, blob: &BlobRef) -> Result<Option<Vec<u8>>, BlobError>;
    /// Whether the store is usable, for `/readyz`.
    async fn check(&self) -> Result<(), BlobError>;
    /// Records that `owner` (a tenant's account) received `blob`. A blob
    /// is shared by every account that received the same bytes; the grant
    /// is what lets one account's devices fetch it and no other's.
    async fn grant(&self, owner: &str, blob: &BlobRef) -> Result<(), BlobError>;
    /// Whether `owner` was granted `blob`.
    async fn granted(&self, owner: &str, blob: &BlobRef) -> Result<bool, BlobError>;
}

/// The store's subdirectory for staged files (see [`LocalBlobStore::staging`]).
const STAGING: &str = "staging";

/// Refuses a write of `len` bytes under `dir` that would leave less than
/// `reserve` bytes free on its volume (0: no check), so one writer cannot
/// fill the volume every service shares.
pub fn ensure_room(dir: &Path, reserve: u64, len: u64) -> Result<(), BlobError> {
    if reserve == 0 {
        return Ok(());
    }
    let mut at = dir;
    // The directory may not exist yet on a fresh volume: ask its parent.
    while !at.exists() {
        match at.parent() {
            Some(parent) => at = parent,
            None => break,
        }
    }
    let stat = rustix::fs::statvfs(at).map_err(std::io::Error::from)?;
    let free = stat.f_bavail.saturating_mul(stat.f_frsize);
    if free < reserve.saturating_add(len) {
        return Err(BlobError::Full { free, reserve });
    }
    Ok(())
}

/// A directory on local disk (or a mounted volume): `<root>/ab/cd/<digest>`.
#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
    /// Free bytes a write must leave on the volume (0: no check).
    reserve: u64,
}

impl LocalBlobStore {
    /// Uses (and creates) `root`, with no free-space reserve.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            reserve: 0,
        }
    }

    /// Refuses writes that would leave less than `reserve` bytes free.
    pub fn with_reserve(mut self, reserve: u64) -> Self {
        self.reserve = reserve;
        self
    }

    /// Where writers outside the store (resumable uploads) stage their
    /// files, on the same volume and left alone by the sweep.
    pub fn staging(&self) -> PathBuf {
        self.root.join(STAGING)
    }

    fn path(&self, blob: &BlobRef) -> PathBuf {
        let digest = blob.digest();
        self.root
            .join(&digest[0..2])
            .join(&digest[2..4])
            .join(digest)
    }
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(&self, content: &[u8]) -> Result<BlobRef, BlobError> {
        let blob = BlobRef::of(content);
        let path = self.path(&blob);
        if tokio::fs::try_exists(&path).await? {
            return Ok(blob);
        }
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.root.clone());
        let content = content.to_vec();
        let (root, reserve) = (self.root.clone(), self.reserve);
        // Write-then-rename after fsync: a crash leaves either nothing or the whole blob.
        // The free-space check too blocks (statvfs, on a network volume).
        tokio::task::spawn_blocking(move || -> Result<(), BlobError> {
            use std::io::Write;
            ensure_room(&root, reserve, content.len() as u64)?;
            std::fs::create_dir_all(&dir)?;
            let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
            tmp.write_all(&content)?;
            tmp.as_file().sync_all()?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(blob)
    }

    async fn get(&self, blob: &BlobRef) -> Result<Option<Vec<u8>>, BlobError> {
        match tokio::fs::read(self.path(blob)).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn check(&self) -> Result<(), BlobError> {
        tokio::fs::create_dir_all(&self.root).await?;
        let probe = tempfile::NamedTempFile::new_in(&self.root)?;
        drop(probe);
        Ok(())
    }

    async fn grant(&self, owner: &str, blob: &BlobRef) -> Result<(), BlobError> {
        let path = self.grant_path(owner, blob);
        if tokio::fs::try_exists(&path).await? {
            // Received again: retention runs from the latest receipt.
            tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                std::fs::File::options()
                    .append(true)
                    .open(&path)?
                    .set_modified(std::time::SystemTime::now())
            })
            .await
            .map_err(std::io::Error::other)??;
            return Ok(());
        }
        let (root, reserve) = (self.root.clone(), self.reserve);
        tokio::task::spawn_blocking(move || -> Result<(), BlobError> {
            ensure_room(&root, reserve, 0)?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            // Empty, so a torn write is still a whole grant; synced because
            // the mail's event goes out right after.
            Ok(std::fs::File::create(&path)?.sync_all()?)
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(())
    }

    async fn granted(&self, owner: &str, blob: &BlobRef) -> Result<bool, BlobError> {
        Ok(tokio::fs::try_exists(self.grant_path(owner, blob)).await?)
    }
}

impl LocalBlobStore {
    /// `<root>/grants/<sha256(owner)>/<digest>`: the owner is hashed so no
    /// account id can name a path.
    fn grant_path(&self, owner: &str, blob: &BlobRef) -> PathBuf {
        let owner = hex::encode(Sha256::digest(owner.as_bytes()));
        self.root
            .join("grants")
            .join(&owner[0..2])
            .join(owner)
            .join(blob.digest())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_by_content_address() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path());
        let blob = store.put(b"From: a@b\r\n\r\nhi").await.unwrap();
        assert_eq!(
            store.put(b"From: a@b\r\n\r\nhi").await.unwrap(),
            blob,
            "same content, same ref"
        );
        assert_eq!(
            store.get(&blob).await.unwrap().unwrap(),
            b"From: a@b\r\n\r\nhi"
        );
        let missing = BlobRef::of(b"other");
        assert!(store.get(&missing).await.unwrap().is_none());
        store.check().await.unwrap();
    }

    #[tokio::test]
    async fn a_grant_is_per_owner() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path());
        let blob = store.put(b"From: a@b\r\n\r\nhi").await.unwrap();
        assert!(!store.granted("t1/a1", &blob).await.unwrap());
        store.grant("t1/a1", &blob).await.unwrap();
        store.grant("t1/a1", &blob).await.unwrap();
        assert!(store.granted("t1/a1", &blob).await.unwrap());
        assert!(!store.granted("t1/a2", &blob).await.unwrap());
        assert!(!store.granted("t2/a1", &blob).await.unwrap());
        assert!(!store.granted("../../t1/a1", &blob).await.unwrap());
    }

    #[test]
    fn refs_from_outside_are_validated() {
        assert!(BlobRef::parse("sha256:../../etc/passwd").is_err());
        assert!(BlobRef::parse("md5:abc").is_err());
        let good = BlobRef::of(b"x");
        assert_eq!(BlobRef::parse(good.as_str()).unwrap(), good);
    }
}

/// Blob store settings.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BlobConfig {
    /// Directory (a persistent volume shared by ingest, transcode and gateway).
    pub dir: PathBuf,
    /// Days an account keeps access to a mail after it arrived (its grant);
    /// a mail no account may read any more is deleted. 0 keeps everything.
    pub retention_days: u32,
    /// Free bytes new mail must leave on the volume; past it ingest answers
    /// with a temporary failure (senders retry) instead of filling the
    /// volume for everyone. 0: no reserve.
    pub min_free_bytes: u64,
    /// How often the writer (ingest) sweeps expired grants and the mail
    /// only they kept.
    pub sweep_interval_seconds: u64,
}

impl Default for BlobConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("/var/lib/pushmail/blobs"),
            retention_days: 30,
            min_free_bytes: 1 << 30,
            sweep_interval_seconds: 3_600,
        }
    }
}

impl BlobConfig {
    /// The store this config names.
    pub fn open(&self) -> std::sync::Arc<dyn BlobStore> {
        std::sync::Arc::new(self.local())
    }

    /// The same store, as its concrete type (for the sweeper).
    pub fn local(&self) -> LocalBlobStore {
        LocalBlobStore::new(&self.dir).with_reserve(self.min_free_bytes)
    }

    /// Shape checks.
    pub fn validate(&self, prefix: &str) -> Result<(), crate::config::ConfigError> {
        if self.sweep_interval_seconds == 0 {
            return Err(crate::config::ConfigError::invalid(
                format!("{prefix}sweep_interval_seconds"),
                "must be positive",
            ));
        }
        if self.dir.as_os_str().is_empty() {
            return Err(crate::config::ConfigError::invalid(
                format!("{prefix}dir"),
                "must name a directory",
            ));
        }
        Ok(())
    }
}
