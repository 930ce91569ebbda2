//! The gRPC edge: checks the caller and the account's right to the
//! message, finds the part, runs the conversion (cached, bounded in
//! concurrency and time) and streams the result in chunks.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use pushmail_common::blob::{self, BlobRef, BlobStore};
use pushmail_common::mail;
use pushmail_common::service_identity::{Service as Caller, ServiceVerifier};
use pushmail_proto::common::v1 as common;
use pushmail_proto::transcode::v1::{self as wire, Rendition, transcode_chunk::Item};
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};

use crate::cache::{Cache, Entry, Key};
use crate::config::Config;
use crate::parts::{self, PartError};
use crate::pipeline::{self, ConvertError, Job, Kind};
use crate::profile::Profile;

/// Bytes per streamed chunk: small enough for HTTP/2 flow control, large
/// enough that framing costs nothing.
const CHUNK: usize = 64 * 1024;

type ChunkStream = Pin<Box<dyn Stream<Item = Result<wire::TranscodeChunk, Status>> + Send>>;

/// The service's state.
pub struct Transcoder {
    blobs: Arc<dyn BlobStore>,
    cache: Cache,
    profiles: HashMap<String, Profile>,
    default_profile: String,
    limits: pipeline::Limits,
    max_message_bytes: usize,
    max_part_bytes: usize,
    jobs: Arc<Semaphore>,
    job_timeout: Duration,
    callers: ServiceVerifier,
}

/// Only the gateway fetches for devices (the credential matrix in
/// `docs/security.md`).
const ALLOWED: &[Caller] = &[Caller::Gateway];

impl Transcoder {
    /// From a validated config.
    pub fn new(config: &Config, blobs: Arc<dyn BlobStore>) -> Result<Self, String> {
        let profiles = config
            .profiles
            .iter()
            .map(|(name, p)| Ok((name.clone(), p.profile(name).map_err(|e| e.to_string())?)))
            .collect::<Result<_, String>>()?;
        if !config.profiles.contains_key(&config.default_profile) {
            return Err(format!(
                "default_profile {:?} names no configured profile",
                config.default_profile
            ));
        }
        let l = &config.limits;
        let job_timeout = Duration::from_millis(l.job_timeout_ms);
        let office = crate::convert::office::Limits {
            max_input_bytes: l.max_part_bytes,
            max_entries: l.max_zip_entries,
            max_unpacked_bytes: l.max_unpacked_bytes,
            max_ratio: l.max_zip_ratio,
            ..Default::default()
        };
        Ok(Self {
            blobs,
            cache: Cache::new(config.cache.max_bytes),
            profiles,
            default_profile: config.default_profile.clone(),
            limits: pipeline::Limits {
                image: crate::convert::image::Limits {
                    max_input_bytes: l.max_part_bytes,
                    max_pixels: l.max_pixels,
                },
                pdf: crate::convert::pdf::Limits {
                    max_input_bytes: l.max_part_bytes,
                    max_text_pages: l.max_text_pages,
                    max_rendered_pages: l.max_rendered_pages,
                    max_pixels: l.max_pixels.min(16_000_000),
                    ..Default::default()
                },
                office,
                media: crate::convert::media::Limits {
                    max_input_bytes: l.max_part_bytes,
                    deadline: job_timeout,
                },
                max_text_bytes: l.max_part_bytes,
            },
            max_message_bytes: l.max_message_bytes,
            max_part_bytes: l.max_part_bytes,
            jobs: Arc::new(Semaphore::new(l.concurrent_jobs)),
            job_timeout,
            callers: config
                .security
                .service_keys
                .verifier()
                .map_err(|e| format!("security.service_keys: {e}"))?,
        })
    }

    /// Bytes of previews cached.
    pub fn cached_bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// The raw message, if `account` of `tenant` received it. A message
    /// that exists but was not delivered to the account is NOT_FOUND too:
    /// a device learns nothing about other accounts' mail.
    async fn message(
        &self,
        tenant: &str,
        account: &str,
        blob_ref: &str,
    ) -> Result<Vec<u8>, Status> {
        if tenant.is_empty() || account.is_empty() {
            return Err(Status::invalid_argument(
                "tenant_id and account_id are required",
            ));
        }
        let blob = BlobRef::parse(blob_ref)
            .map_err(|_| Status::invalid_argument("blob_ref must be sha256:<64 hex digits>"))?;
        let unavailable = |e: blob::BlobError| {
            tracing::warn!(error = %e, "blob store failed");
            Status::unavailable("the message store is unavailable")
        };
        let not_found = || Status::not_found("no such message for this account");
        if !self
            .blobs
            .granted(&blob::owner(tenant, account), &blob)
            .await
            .map_err(unavailable)?
        {
            return Err(not_found());
        }
        let raw = self
            .blobs
            .get(&blob)
            .await
            .map_err(unavailable)?
            .ok_or_else(not_found)?;
        if raw.len() > self.max_message_bytes {
            return Err(Status::failed_precondition(format!(
                "the message is {} bytes; at most {} are read",
                raw.len(),
                self.max_message_bytes
            )));
        }
        Ok(raw)
    }

    async fn part(
        &self,
        raw: Vec<u8>,
        part_id: &str,
        prefer_html: bool,
    ) -> Result<parts::Part, Status> {
        if part_id.is_empty() || part_id.len() > 64 {
            return Err(Status::invalid_argument(
                "part_id is required (an IMAP section or \"body\")",
            ));
        }
        let section = part_id.to_owned();
        let part = tokio::task::spawn_blocking(move || parts::find(&raw, &section, prefer_html))
            .await
            .map_err(|_| Status::internal("the MIME parser failed"))?
            .map_err(|e| match e {
                PartError::NoSuchPart(_) => Status::not_found(e.to_string()),
                _ => Status::failed_precondition(e.to_string()),
            })?;
        if part.bytes.len() > self.max_part_bytes {
            return Err(Status::failed_precondition(format!(
                "part {part_id} is {} bytes; at most {} are converted",
                part.bytes.len(),
                self.max_part_bytes
            )));
        }
        Ok(part)
    }

    fn profile(&self, request: &wire::TranscodeRequest) -> Result<Profile, Status> {
        if !request.profile_name.is_empty() {
            return self
                .profiles
                .get(&request.profile_name)
                .cloned()
                .ok_or_else(|| {
                    let mut names: Vec<_> = self.profiles.keys().map(String::as_str).collect();
                    names.sort_unstable();
                    Status::invalid_argument(format!(
                        "no profile {:?}; configured: {}",
                        request.profile_name,
                        names.join(", ")
                    ))
                });
        }
        match &request.profile {
            Some(p) => {
                Profile::from_wire(p).map_err(|e| Status::invalid_argument(format!("profile: {e}")))
            }
            None => Ok(self.profiles[&self.default_profile].clone()),
        }
    }

    /// Runs `job` within the concurrency and time limits.
    async fn run(&self, job: Job) -> Result<Entry, ConvertError> {
        let permit = tokio::time::timeout(self.job_timeout, self.jobs.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or(ConvertError::Busy)?;
        let limits = self.limits;
        let output = if job.is_blocking() {
            let task = tokio::task::spawn_blocking(move || {
                // Held until the converter returns, even after the caller
                // gave up: a runaway job keeps its slot, so they cannot pile up.
                let _permit = permit;
                pipeline::convert_blocking(&job, &limits)
            });
            match tokio::time::timeout(self.job_timeout, task).await {
                Err(_) => return Err(ConvertError::Timeout(self.job_timeout)),
                Ok(Err(_)) => {
                    return Err(ConvertError::Unreadable("the converter crashed".to_owned()));
                }
                Ok(Ok(output)) => output?,
            }
        } else {
            let _permit = permit;
            pipeline::convert_media(&job, &limits).await?
        };
        Ok(Entry {
            content_type: output.content_type,
            bytes: output.bytes,
            page_count: output.page_count,
        })
    }

    async fn transcode(&self, request: wire::TranscodeRequest) -> Result<ChunkStream, Status> {
        let profile = self.profile(&request)?;
        let raw = self
            .message(&request.tenant_id, &request.account_id, &request.blob_ref)
            .await?;
        let part = self
            .part(raw, &request.part_id, profile.accepts("text/html"))
            .await?;
        let kind = Kind::of(&part).ok_or_else(|| {
            Status::failed_precondition(format!("no converter for {}", part.content_type))
        })?;
        let rendition = Rendition::try_from(request.rendition).unwrap_or_default();
        let key = Key::new(
            &part.bytes,
            format!(
                "{};{};p{}",
                profile.key(),
                rendition.as_str_name(),
                request.page
            ),
            kind.converter(),
        );
        let file_name = part.file_name.clone().unwrap_or_default();
        let job = Job {
            part,
            kind,
            rendition,
            page: request.page,
            profile,
            // Relative to the body's URL (…/messages/<ref>/body).
            parts_url: "attachments/".to_owned(),
        };
        let entry = self
            .cache
            .get_or_convert(&key, || self.run(job))
            .await
            .map_err(status)?;
        let header = wire::TranscodeHeader {
            content_type: entry.content_type.clone(),
            total_bytes: entry.bytes.len() as u64,
            etag: key.etag(),
            page_count: entry.page_count,
            file_name,
        };
        Ok(chunks(header, entry, request.offset, request.limit))
    }

    async fn fetch_part(&self, request: wire::FetchPartRequest) -> Result<ChunkStream, Status> {
        let raw = self
            .message(&request.tenant_id, &request.account_id, &request.blob_ref)
            .await?;
        let part = self.part(raw, &request.part_id, false).await?;
        let etag = BlobRef::of(&part.bytes).as_str()["sha256:".len()..][..32].to_owned();
        let header = wire::TranscodeHeader {
            content_type: part.content_type.clone(),
            total_bytes: part.bytes.len() as u64,
            etag,
            page_count: 1,
            file_name: part.file_name.clone().unwrap_or_default(),
        };
        let entry = Arc::new(Entry {
            content_type: part.content_type,
            bytes: part.bytes,
            page_count: 1,
        });
        Ok(chunks(header, entry, request.offset, request.limit))
    }

    async fn describe(
        &self,
        request: wire::DescribeMessageRequest,
    ) -> Result<wire::MessageDescription, Status> {
        let raw = self
            .message(&request.tenant_id, &request.account_id, &request.blob_ref)
            .await?;
        let limits = mail::Limits {
            max_message_bytes: self.max_message_bytes,
            ..mail::Limits::default()
        };
        let (parsed, has_html) = tokio::task::spawn_blocking(move || {
            (mail::parse(&raw, &limits), parts::has_html_body(&raw))
        })
        .await
        .map_err(|_| Status::internal("the MIME parser failed"))?;
        let parsed = parsed.map_err(|e| Status::failed_precondition(e.to_string()))?;
        let address = |a: &mail::MailAddress| common::Address {
            name: a.name.clone(),
            address: a.address.clone(),
        };
        Ok(wire::MessageDescription {
            message_id: parsed.message_id.unwrap_or_default(),
            from: parsed.from.as_ref().map(address),
            to: parsed.to.iter().map(address).collect(),
            subject: parsed.subject,
            snippet: parsed.snippet,
            date_ms: parsed.date_ms.unwrap_or_default(),
            size_bytes: parsed.size_bytes,
            attachments: parsed
                .attachments
                .into_iter()
                .map(|a| common::Attachment {
                    part_id: a.part_id,
                    file_name: a.file_name,
                    content_type: a.content_type,
                    size_bytes: a.size_bytes,
                })
                .collect(),
            has_html_body: has_html,
        })
    }
}

fn status(e: ConvertError) -> Status {
    match e {
        ConvertError::Busy => Status::resource_exhausted(e.to_string()),
        ConvertError::Timeout(_) => Status::deadline_exceeded(e.to_string()),
        ConvertError::NoSuchPage(_) => Status::not_found(e.to_string()),
        _ => Status::failed_precondition(e.to_string()),
    }
}

/// The header, then bytes `offset..offset + limit` (0: to the end) in
/// chunks, copied one chunk at a time.
fn chunks(
    header: wire::TranscodeHeader,
    entry: Arc<Entry>,
    offset: u64,
    limit: u64,
) -> ChunkStream {
    let first = futures::stream::once(async move {
        Ok(wire::TranscodeChunk {
            item: Some(Item::Header(header)),
        })
    });
    let len = entry.bytes.len();
    let start = usize::try_from(offset).unwrap_or(usize::MAX).min(len);
    let end = match limit {
        0 => len,
        n => start
            .saturating_add(usize::try_from(n).unwrap_or(usize::MAX))
            .min(len),
    };
    let data = futures::stream::iter((start..end).step_by(CHUNK)).map(move |from| {
        let to = (from + CHUNK).min(end);
        Ok(wire::TranscodeChunk {
            item: Some(Item::Data(entry.bytes[from..to].to_vec())),
        })
    });
    Box::pin(first.chain(data))
}

/// The tonic service over a shared [`Transcoder`].
#[derive(Clone)]
pub struct Service(pub Arc<Transcoder>);

#[tonic::async_trait]
impl wire::transcode_service_server::TranscodeService for Service {
    type TranscodeStream = ChunkStream;
    type FetchPartStream = ChunkStream;

    async fn transcode(
        &self,
        request: Request<wire::TranscodeRequest>,
    ) -> Result<Response<Self::TranscodeStream>, Status> {
        self.0
            .callers
            .authorize(request.metadata(), "Transcode", ALLOWED)?;
        Ok(Response::new(self.0.transcode(request.into_inner()).await?))
    }

    async fn describe_message(
        &self,
        request: Request<wire::DescribeMessageRequest>,
    ) -> Result<Response<wire::MessageDescription>, Status> {
        self.0
            .callers
            .authorize(request.metadata(), "DescribeMessage", ALLOWED)?;
        Ok(Response::new(self.0.describe(request.into_inner()).await?))
    }

    async fn fetch_part(
        &self,
        request: Request<wire::FetchPartRequest>,
    ) -> Result<Response<Self::FetchPartStream>, Status> {
        self.0
            .callers
            .authorize(request.metadata(), "FetchPart", ALLOWED)?;
        Ok(Response::new(
            self.0.fetch_part(request.into_inner()).await?,
        ))
    }
}
