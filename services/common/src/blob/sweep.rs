//! Retention: grants older than `blob.retention_days` are removed, and so is
//! every blob no grant names any more, so a flood of mail (or simply
//! years of it) cannot fill the volume. Run by the writer (ingest); several
//! replicas may sweep at once, since every removal is idempotent.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::{BlobConfig, LocalBlobStore};

/// A blob stored but not yet granted is younger than this: it is on its
/// way to a grant (ingest stores, then grants, then publishes).
const UNGRANTED_GRACE: Duration = Duration::from_secs(3_600);

/// What a sweep removed and kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Grants past retention, removed.
    pub grants_removed: u64,
    /// Blobs no grant names, removed.
    pub blobs_removed: u64,
    /// Their bytes.
    pub bytes_removed: u64,
    /// Blobs kept.
    pub blobs_kept: u64,
    /// Their bytes.
    pub bytes_kept: u64,
}

impl LocalBlobStore {
    /// Removes grants received before `now - retention` and the blobs left
    /// without any grant (older than an hour). Blocking: run it on a
    /// blocking thread.
    pub fn sweep(&self, now: SystemTime, retention: Duration) -> std::io::Result<Swept> {
        let mut swept = Swept::default();
        let expired = now.checked_sub(retention).unwrap_or(SystemTime::UNIX_EPOCH);
        let mut live: HashSet<String> = HashSet::new();
        let grants = self.root.join("grants");
        for owner in subdirs(&grants)?
            .iter()
            .map(|d| subdirs(d))
            .collect::<Result<Vec<_>, _>>()?
            .concat()
        {
            let mut left = 0usize;
            for grant in files(&owner)? {
                let modified = grant.metadata()?.modified()?;
                if modified < expired {
                    remove(&grant)?;
                    swept.grants_removed += 1;
                } else if let Some(name) = grant.file_name().and_then(|n| n.to_str()) {
                    live.insert(name.to_owned());
                    left += 1;
                }
            }
            if left == 0 {
                // No grant left; a grant made meanwhile recreates the
                // directory (or fails and ingest retries the mail).
                let _ = std::fs::remove_dir(&owner);
            }
        }
        let orphan_before = now
            .checked_sub(UNGRANTED_GRACE)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        for first in subdirs(&self.root)? {
            // Blobs live under two hex digits; `grants` and the staging
            // area hold other writers' files.
            if !first
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                continue;
            }
            for second in subdirs(&first)? {
                for blob in files(&second)? {
                    let Some(name) = blob.file_name().and_then(|n| n.to_str()) else {
                        continue;
                    };
                    // Temporary files of a write in progress are not blobs.
                    if name.len() != 64 {
                        continue;
                    }
                    let metadata = blob.metadata()?;
                    if live.contains(name) || metadata.modified()? >= orphan_before {
                        swept.blobs_kept += 1;
                        swept.bytes_kept += metadata.len();
                    } else {
                        remove(&blob)?;
                        swept.blobs_removed += 1;
                        swept.bytes_removed += metadata.len();
                    }
                }
            }
        }
        Ok(swept)
    }
}

/// The subdirectories of `dir` (none when it is absent).
fn subdirs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    Ok(listing(dir)?.into_iter().filter(|p| p.is_dir()).collect())
}

/// The plain files in `dir`.
fn files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    Ok(listing(dir)?.into_iter().filter(|p| p.is_file()).collect())
}

fn listing(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    match std::fs::read_dir(dir) {
        Ok(read) => read.map(|e| e.map(|e| e.path())).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Sweeps `config`'s store every `sweep_interval_seconds` until `shutdown`
/// (never when `retention_days` is 0). A failed sweep is logged and tried
/// again at the next interval: nothing depends on it but the disk.
pub async fn sweep_every(config: BlobConfig, shutdown: CancellationToken) {
    if config.retention_days == 0 {
        return;
    }
    let store = config.local();
    let retention = Duration::from_secs(u64::from(config.retention_days) * 86_400);
    let every = Duration::from_secs(config.sweep_interval_seconds);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let store = store.clone();
        let started = std::time::Instant::now();
        match tokio::task::spawn_blocking(move || store.sweep(SystemTime::now(), retention)).await {
            Ok(Ok(swept)) => {
                metrics::counter!("pushmail_blob_grants_expired_total")
                    .increment(swept.grants_removed);
                metrics::counter!("pushmail_blob_removed_total").increment(swept.blobs_removed);
                metrics::counter!("pushmail_blob_removed_bytes_total")
                    .increment(swept.bytes_removed);
                metrics::gauge!("pushmail_blob_stored_bytes").set(swept.bytes_kept as f64);
                tracing::info!(
                    grants_expired = swept.grants_removed,
                    blobs_removed = swept.blobs_removed,
                    bytes_removed = swept.bytes_removed,
                    bytes_kept = swept.bytes_kept,
                    took_ms = started.elapsed().as_millis() as u64,
                    "blob store swept"
                );
            }
            Ok(Err(err)) => {
                tracing::warn!(error = %crate::report::Report(&err), "blob sweep failed; trying again later")
            }
            Err(err) => {
                tracing::warn!(error = %crate::report::Report(&err), "blob sweep task failed")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{BlobStore as _, owner};
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn staged_files_are_not_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path());
        // An upload in progress whose chunk name happens to be 64 long.
        let upload = store.staging().join("0123456789abcdef0123456789abcdef");
        std::fs::create_dir_all(&upload).unwrap();
        let chunk = upload.join("0".repeat(64));
        std::fs::write(&chunk, b"part").unwrap();
        std::fs::File::options()
            .append(true)
            .open(&chunk)
            .unwrap()
            .set_modified(SystemTime::now() - 400 * DAY)
            .unwrap();
        let swept = store.sweep(SystemTime::now(), DAY).unwrap();
        assert_eq!((swept.blobs_kept, swept.blobs_removed), (0, 0));
        assert!(chunk.exists());
    }

    #[tokio::test]
    async fn expired_grants_and_the_mail_only_they_kept_go() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path());
        let shared = store.put(b"From: a@b\r\n\r\nshared").await.unwrap();
        let old = store.put(b"From: a@b\r\n\r\nold").await.unwrap();
        let fresh = store.put(b"From: a@b\r\n\r\nfresh").await.unwrap();
        let stray = store.put(b"From: a@b\r\n\r\nnever granted").await.unwrap();
        store.grant(&owner("t", "a1"), &shared).await.unwrap();
        store.grant(&owner("t", "a2"), &shared).await.unwrap();
        store.grant(&owner("t", "a1"), &old).await.unwrap();
        store.grant(&owner("t", "a1"), &fresh).await.unwrap();
        let now = SystemTime::now();
        // Everything is fresh: nothing goes, not even the ungranted blob
        // (it may be on its way to a grant).
        let swept = store.sweep(now, 30 * DAY).unwrap();
        assert_eq!((swept.grants_removed, swept.blobs_removed), (0, 0));
        assert_eq!(swept.blobs_kept, 4);
        // Age `old`'s grant and one of `shared`'s, and the stray blob.
        let aged = now - 40 * DAY;
        for path in [
            store.grant_path(&owner("t", "a1"), &old),
            store.grant_path(&owner("t", "a1"), &shared),
            store.path(&old),
            store.path(&stray),
        ] {
            std::fs::File::options()
                .append(true)
                .open(path)
                .unwrap()
                .set_modified(aged)
                .unwrap();
        }
        let swept = store.sweep(now, 30 * DAY).unwrap();
        assert_eq!(swept.grants_removed, 2);
        assert_eq!(swept.blobs_removed, 2, "old and stray");
        assert!(!store.granted(&owner("t", "a1"), &old).await.unwrap());
        assert!(store.get(&old).await.unwrap().is_none());
        assert!(store.get(&stray).await.unwrap().is_none());
        // Another account still holds `shared`; `fresh` is within retention.
        assert!(store.granted(&owner("t", "a2"), &shared).await.unwrap());
        assert!(!store.granted(&owner("t", "a1"), &shared).await.unwrap());
        assert!(store.get(&shared).await.unwrap().is_some());
        assert!(store.get(&fresh).await.unwrap().is_some());
        // Sweeping again changes nothing.
        let again = store.sweep(now, 30 * DAY).unwrap();
        assert_eq!((again.grants_removed, again.blobs_removed), (0, 0));
    }

    #[tokio::test]
    async fn receiving_a_mail_again_restarts_its_retention() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path());
        let blob = store.put(b"From: a@b\r\n\r\nagain").await.unwrap();
        store.grant("t/a", &blob).await.unwrap();
        let path = store.grant_path("t/a", &blob);
        std::fs::File::options()
            .append(true)
            .open(&path)
            .unwrap()
            .set_modified(SystemTime::now() - 40 * DAY)
            .unwrap();
        store.grant("t/a", &blob).await.unwrap();
        let swept = store.sweep(SystemTime::now(), 30 * DAY).unwrap();
        assert_eq!(swept.grants_removed, 0);
        assert!(store.granted("t/a", &blob).await.unwrap());
    }

    #[tokio::test]
    async fn a_full_volume_refuses_new_mail_and_keeps_what_it_has() {
        let dir = tempfile::tempdir().unwrap();
        let roomy = LocalBlobStore::new(dir.path()).with_reserve(1);
        let kept = roomy.put(b"From: a@b\r\n\r\nkept").await.unwrap();
        // A reserve no volume has.
        let full = LocalBlobStore::new(dir.path()).with_reserve(u64::MAX / 2);
        let err = full.put(b"From: a@b\r\n\r\nnew").await.unwrap_err();
        assert!(matches!(err, super::super::BlobError::Full { .. }), "{err}");
        // What is stored already stays readable, and storing it again
        // (a retry of a mail already kept) still succeeds.
        assert!(full.get(&kept).await.unwrap().is_some());
        assert_eq!(full.put(b"From: a@b\r\n\r\nkept").await.unwrap(), kept);
    }
}
