//! Resumable uploads of attachments for a later Send (尚郵's very large
//! attachments): the phone declares the size, sends chunks at the offset
//! the platform holds, resumes from `received` after a dropped connection
//! (on any replica), and names the upload in a Send once it is complete.
//! Chunks are staged on the blob volume ([`staging`]), counted in the
//! database ([`ledger`]); the last one turns them into one blob granted to
//! the account, and the staged files go. Whatever is not completed and used
//! within the time to live is swept.

pub mod ledger;
mod sql;
mod staging;

use std::sync::Arc;
use std::time::Duration;

use pushmail_common::blob::{BlobError, BlobRef, BlobStore};
use pushmail_common::clock::now_ms;
use pushmail_common::report::Report;

pub use ledger::{Appended, Ledger, MemoryLedger, Refused};
pub use sql::{PgLedger, SqliteLedger};
pub use staging::Staging;

use crate::compose::File;
use crate::sync::StatesError;

/// Most uploads one Send may name.
pub const MAX_PER_SEND: usize = 32;
/// Longest file name kept.
const MAX_NAME_CHARS: usize = 255;

/// An upload's id: 32 lowercase hex digits, so it can name a directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UploadId(String);

impl UploadId {
    /// A new random id.
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    /// An id received from outside, when it is one this service issues.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 32
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| Self(text.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for UploadId {
    fn default() -> Self {
        Self::new()
    }
}

/// Whose upload it is: only the same tenant's account sees or uses it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    /// Tenant.
    pub tenant: String,
    /// Account.
    pub account: String,
}

/// An upload as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// Its id.
    pub id: UploadId,
    /// Whose.
    pub owner: Owner,
    /// The attachment's file name.
    pub file_name: String,
    /// `type/subtype`.
    pub content_type: String,
    /// Declared size.
    pub total: u64,
    /// Bytes received so far (the next chunk's offset).
    pub received: u64,
    /// Once complete: the blob holding its bytes.
    pub blob: Option<String>,
    /// When it began.
    pub created_ms: i64,
    /// When it is swept (incomplete: `ttl` after it began; complete: `ttl`
    /// after it completed).
    pub expires_ms: i64,
}

impl Upload {
    /// Whether its bytes are all in and stored.
    pub fn complete(&self) -> bool {
        self.blob.is_some()
    }
}

/// A chunk as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Where it starts.
    pub offset: u64,
    /// Its length.
    pub len: u64,
    /// Its staged file's name.
    pub file: String,
}

/// Bounds.
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    /// Largest upload.
    pub max_bytes: u64,
    /// Largest chunk.
    pub max_chunk_bytes: u64,
    /// Uploads in progress per account.
    pub max_open: u32,
    /// How long an upload may take, and how long a complete one stays
    /// usable.
    pub ttl: Duration,
}

/// Why an upload request was not served.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// No such upload for this account (or it expired and was swept).
    #[error("no such upload (it may have expired; begin again)")]
    NotFound,
    /// A chunk not at the upload's end: the phone resumes from `received`.
    #[error(
        "the chunk starts at byte {offset}; the upload has {received} bytes, resume from there"
    )]
    Offset {
        /// The chunk's offset.
        offset: u64,
        /// What the upload has.
        received: u64,
    },
    /// The declared size is over the bound.
    #[error("{total} bytes declared; uploads are limited to {max}")]
    TooLarge {
        /// Declared.
        total: u64,
        /// `uploads.max_bytes`.
        max: u64,
    },
    /// A chunk over the bound.
    #[error("a chunk of {len} bytes; chunks are limited to {max}")]
    ChunkTooLarge {
        /// Its length.
        len: u64,
        /// `uploads.max_chunk_bytes`.
        max: u64,
    },
    /// A chunk with no bytes.
    #[error("the chunk is empty")]
    EmptyChunk,
    /// A chunk past the declared size.
    #[error("the chunk ends at byte {end}, past the declared {total}")]
    BeyondEnd {
        /// Where it would end.
        end: u64,
        /// Declared size.
        total: u64,
    },
    /// The file name cannot be used.
    #[error("file_name: {0}")]
    BadName(&'static str),
    /// The content type is not `type/subtype`.
    #[error("content_type {0:?} is not type/subtype")]
    BadContentType(String),
    /// The account has as many uploads in progress as allowed.
    #[error("{max} uploads are in progress already; finish or let one expire")]
    TooManyOpen {
        /// `uploads.max_open_per_account`.
        max: u32,
    },
    /// A Send named an upload that is not complete.
    #[error("upload {id} has {received} of {total} bytes; finish it before sending")]
    Incomplete {
        /// Which.
        id: String,
        /// Received.
        received: u64,
        /// Declared.
        total: u64,
    },
    /// A Send named too many uploads, or too many bytes of them.
    #[error("{count} uploads of {bytes} bytes in one send; at most {MAX_PER_SEND} and {max} bytes")]
    TooMuchToSend {
        /// Uploads named.
        count: usize,
        /// Their bytes.
        bytes: u64,
        /// The byte bound.
        max: u64,
    },
    /// The upload's staged bytes are missing or not as recorded (a lost
    /// file on the volume): it is forgotten; begin again.
    #[error("upload {id} was damaged in storage and is gone; begin it again")]
    Damaged {
        /// Which.
        id: String,
    },
    /// Staging or the blob store failed.
    #[error("upload storage")]
    Storage(#[source] BlobError),
    /// The ledger failed.
    #[error(transparent)]
    States(#[from] StatesError),
}

impl UploadError {
    /// Whether this says the staged bytes themselves are gone or wrong
    /// (as opposed to the storage being unreachable for now).
    fn is_damage(&self) -> bool {
        match self {
            Self::Damaged { .. } => true,
            Self::Storage(BlobError::Io(io)) => matches!(
                io.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidData
            ),
            _ => false,
        }
    }
}

impl From<BlobError> for UploadError {
    fn from(error: BlobError) -> Self {
        Self::Storage(error)
    }
}

impl From<Refused> for UploadError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::TooManyOpen { max } => Self::TooManyOpen { max },
            Refused::States(error) => Self::States(error),
        }
    }
}

/// What a sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Expired uploads forgotten.
    pub expired: u64,
    /// Staged directories no upload owned any more.
    pub orphans: u64,
}

/// Uploads: ledger, staging and the blob store together.
pub struct Uploads {
    ledger: Arc<dyn Ledger>,
    staging: Staging,
    blobs: Arc<dyn BlobStore>,
    limits: UploadLimits,
}

impl Uploads {
    /// Over these stores, within `limits`.
    pub fn new(
        ledger: Arc<dyn Ledger>,
        staging: Staging,
        blobs: Arc<dyn BlobStore>,
        limits: UploadLimits,
    ) -> Self {
        Self {
            ledger,
            staging,
            blobs,
            limits,
        }
    }

    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.limits.ttl.as_millis()).unwrap_or(i64::MAX)
    }

    /// Starts an upload of `total` bytes.
    pub async fn begin(
        &self,
        owner: Owner,
        file_name: &str,
        content_type: &str,
        total: u64,
    ) -> Result<Upload, UploadError> {
        if total > self.limits.max_bytes {
            return Err(UploadError::TooLarge {
                total,
                max: self.limits.max_bytes,
            });
        }
        let now = now_ms();
        let upload = Upload {
            id: UploadId::new(),
            owner,
            file_name: file_name_of(file_name)?,
            content_type: content_type_of(content_type)?,
            total,
            received: 0,
            blob: None,
            created_ms: now,
            expires_ms: now.saturating_add(self.ttl_ms()),
        };
        self.ledger.create(&upload, self.limits.max_open).await?;
        metrics::counter!("pushmail_mailbox_uploads_begun_total").increment(1);
        if total == 0 {
            return self.finish(upload).await;
        }
        Ok(upload)
    }

    /// Adds `data` at `offset`.
    pub async fn chunk(
        &self,
        owner: &Owner,
        id: &str,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<Upload, UploadError> {
        let id = UploadId::parse(id).ok_or(UploadError::NotFound)?;
        let len = data.len() as u64;
        if len == 0 {
            return Err(UploadError::EmptyChunk);
        }
        if len > self.limits.max_chunk_bytes {
            return Err(UploadError::ChunkTooLarge {
                len,
                max: self.limits.max_chunk_bytes,
            });
        }
        let upload = self
            .ledger
            .get(owner, &id, now_ms())
            .await?
            .ok_or(UploadError::NotFound)?;
        // Checked before anything is written: a phone repeating a chunk it
        // was not sure of costs no disk.
        check_fits(&upload, offset, len)?;
        let file = self.staging.write(&id, offset, data).await?;
        let chunk = Chunk { offset, len, file };
        // A chunk the ledger does not take stays staged, unnamed, until the
        // upload is finished or swept: removing it here could race the
        // assembly on another replica.
        match self.ledger.append(owner, &id, &chunk, now_ms()).await {
            Ok(Appended::Accepted(upload)) => {
                metrics::counter!("pushmail_mailbox_upload_bytes_total").increment(len);
                if upload.received == upload.total {
                    return self.finish(upload).await;
                }
                Ok(upload)
            }
            Ok(Appended::Elsewhere(upload)) => Err(UploadError::Offset {
                offset,
                received: upload.received,
            }),
            Ok(Appended::Missing) => Err(UploadError::NotFound),
            Err(error) => Err(error.into()),
        }
    }

    /// The upload as it stands (finishing one whose bytes are all in but
    /// which a crash left unassembled).
    pub async fn get(&self, owner: &Owner, id: &str) -> Result<Upload, UploadError> {
        let id = UploadId::parse(id).ok_or(UploadError::NotFound)?;
        let upload = self
            .ledger
            .get(owner, &id, now_ms())
            .await?
            .ok_or(UploadError::NotFound)?;
        if !upload.complete() && upload.received == upload.total {
            return self.finish(upload).await;
        }
        Ok(upload)
    }

    /// The named uploads' files, for a Send: each must be the account's,
    /// complete, and all of them at most `max_bytes`.
    pub async fn files(
        &self,
        owner: &Owner,
        ids: &[String],
        max_bytes: u64,
    ) -> Result<Vec<File>, UploadError> {
        // Counted before any is looked up: a request naming thousands
        // costs one answer, not thousands of reads.
        if ids.len() > MAX_PER_SEND {
            return Err(UploadError::TooMuchToSend {
                count: ids.len(),
                bytes: 0,
                max: max_bytes,
            });
        }
        let mut uploads = Vec::with_capacity(ids.len());
        for id in ids {
            let upload = self.get(owner, id).await?;
            if !upload.complete() {
                return Err(UploadError::Incomplete {
                    id: id.clone(),
                    received: upload.received,
                    total: upload.total,
                });
            }
            uploads.push(upload);
        }
        let bytes = uploads.iter().map(|u| u.total).sum::<u64>();
        if uploads.len() > MAX_PER_SEND || bytes > max_bytes {
            return Err(UploadError::TooMuchToSend {
                count: uploads.len(),
                bytes,
                max: max_bytes,
            });
        }
        let mut files = Vec::with_capacity(uploads.len());
        for upload in uploads {
            let blob = upload
                .blob
                .as_deref()
                .map(BlobRef::parse)
                .transpose()?
                .ok_or(UploadError::NotFound)?;
            // Swept by blob retention although the upload is still live:
            // as good as expired.
            let bytes = self.blobs.get(&blob).await?.ok_or(UploadError::NotFound)?;
            files.push(File {
                name: upload.file_name,
                content_type: upload.content_type,
                bytes,
            });
        }
        Ok(files)
    }

    /// Assembles a fully received upload into one blob, granted to its
    /// owner. Idempotent: the blob is content-addressed and the ledger
    /// keeps the first completion.
    async fn finish(&self, mut upload: Upload) -> Result<Upload, UploadError> {
        let assembled = async {
            let chunks = self.ledger.chunks(&upload.id).await?;
            let bytes = self.staging.assemble(&upload.id, chunks).await?;
            if bytes.len() as u64 != upload.total {
                return Err(UploadError::Damaged {
                    id: upload.id.as_str().to_owned(),
                });
            }
            let blob = self.blobs.put(&bytes).await?;
            let owner = pushmail_common::blob::owner(&upload.owner.tenant, &upload.owner.account);
            self.blobs.grant(&owner, &blob).await?;
            Ok::<_, UploadError>(blob)
        };
        let blob = match assembled.await {
            Ok(blob) => blob,
            Err(error) => {
                // Another replica may have finished (and unstaged) it.
                if let Some(done) = self
                    .ledger
                    .get(&upload.owner, &upload.id, now_ms())
                    .await?
                    .filter(Upload::complete)
                {
                    return Ok(done);
                }
                // Staged bytes gone or not as recorded will not come
                // back: the upload is forgotten and the phone begins
                // again, instead of being told to retry for ever.
                if error.is_damage() {
                    self.staging.remove(&upload.id).await?;
                    self.ledger.remove(&upload.id).await?;
                    return Err(UploadError::Damaged {
                        id: upload.id.as_str().to_owned(),
                    });
                }
                return Err(error);
            }
        };
        let expires_ms = now_ms().saturating_add(self.ttl_ms());
        self.ledger
            .complete(&upload.id, blob.as_str(), expires_ms)
            .await?;
        metrics::counter!("pushmail_mailbox_uploads_completed_total").increment(1);
        if let Err(error) = self.staging.remove(&upload.id).await {
            tracing::warn!(upload = upload.id.as_str(), error = %Report(&error), "staged chunks of a complete upload stay until the sweep");
        }
        upload.blob = Some(blob.as_str().to_owned());
        upload.expires_ms = expires_ms;
        Ok(upload)
    }

    /// Forgets expired uploads and removes staged files no upload owns.
    pub async fn sweep(&self) -> Result<Swept, UploadError> {
        let mut swept = Swept::default();
        loop {
            let expired = self.ledger.expired(now_ms(), 500).await?;
            if expired.is_empty() {
                break;
            }
            for id in expired {
                self.staging.remove(&id).await?;
                self.ledger.remove(&id).await?;
                swept.expired += 1;
            }
        }
        // A crash between the two removals above leaves files the ledger
        // no longer names; the ledger row always exists before any file.
        for id in self.staging.staged().await? {
            if !self.ledger.exists(&id).await? {
                self.staging.remove(&id).await?;
                swept.orphans += 1;
            }
        }
        metrics::counter!("pushmail_mailbox_uploads_expired_total").increment(swept.expired);
        Ok(swept)
    }
}

/// Sweeps every `interval` until `shutdown`; a failed sweep is logged and
/// tried again at the next.
pub async fn sweep_every(
    uploads: Arc<Uploads>,
    interval: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    // Not at start: every replica would sweep at once on a rollout.
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match uploads.sweep().await {
            Ok(swept) if swept != Swept::default() => {
                tracing::info!(
                    expired = swept.expired,
                    orphans = swept.orphans,
                    "uploads swept"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %Report(&error), "the upload sweep failed"),
        }
    }
}

fn check_fits(upload: &Upload, offset: u64, len: u64) -> Result<(), UploadError> {
    if offset != upload.received {
        return Err(UploadError::Offset {
            offset,
            received: upload.received,
        });
    }
    // A complete upload has received its total: any chunk ends past it.
    let end = offset.saturating_add(len);
    if end > upload.total {
        return Err(UploadError::BeyondEnd {
            end,
            total: upload.total,
        });
    }
    Ok(())
}

/// The last path component of what the phone sent (some send a path),
/// without control characters; "attachment" when nothing is left.
fn file_name_of(name: &str) -> Result<String, UploadError> {
    if name.chars().any(char::is_control) {
        return Err(UploadError::BadName("control characters"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(UploadError::BadName("longer than 255 characters"));
    }
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    Ok(match last {
        "" | "." | ".." => "attachment".to_owned(),
        name => name.to_owned(),
    })
}

/// `type/subtype` of RFC 2045 tokens, lowercased; empty means
/// `application/octet-stream`.
fn content_type_of(text: &str) -> Result<String, UploadError> {
    if text.is_empty() {
        return Ok("application/octet-stream".to_owned());
    }
    let token = |t: &str| {
        !t.is_empty()
            && t.len() <= 64
            && t.bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b))
    };
    match text.split_once('/') {
        Some((kind, sub)) if token(kind) && token(sub) => Ok(text.to_ascii_lowercase()),
        _ => Err(UploadError::BadContentType(text.to_owned())),
    }
}

#[cfg(test)]
mod tests;
