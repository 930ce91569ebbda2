//! The gRPC edge: checks the caller and the account's right to the
//! message, has a worker find the part and another convert it (cached;
//! the workers bounded in number, memory, CPU and time by `crate::pool`)
//! and streams the result in chunks. Nothing here parses the stored
//! message or an attachment: that is the workers' job.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use pushmail_common::blob::{self, BlobRef, BlobStore};
use pushmail_common::config::ConfigError;
use pushmail_common::service_identity::{Service as Caller, ServiceVerifier};
use pushmail_proto::transcode::v1::{self as wire, Rendition, transcode_chunk::Item};
use tokio::time::Instant;
use tonic::{Request, Response, Status};

use crate::cache::{Cache, Entry, Key};
use crate::config::Config;
use crate::parts;
use crate::pipeline::{self, Job, Kind};
use crate::pool::{self, Pool, PoolError};
use crate::profile::Profile;
use crate::refusal::Refusal;
use crate::worker::{Request as WorkerRequest, Response as WorkerResponse};

/// Bytes per streamed chunk: small enough for HTTP/2 flow control, large
/// enough that framing costs nothing.
const CHUNK: usize = 64 * 1024;

type ChunkStream = Pin<Box<dyn Stream<Item = Result<wire::TranscodeChunk, Status>> + Send>>;

/// The service's state.
pub(crate) struct Transcoder {
    blobs: Arc<dyn BlobStore>,
    cache: Cache,
    profiles: HashMap<String, Profile>,
    default_profile: String,
    limits: pipeline::Limits,
    max_message_bytes: usize,
    max_part_bytes: usize,
    pool: Pool,
    job_timeout: Duration,
    callers: ServiceVerifier,
}

/// Only the gateway fetches for devices (the credential matrix in
/// `docs/security.md`).
const ALLOWED: &[Caller] = &[Caller::Gateway];

impl Transcoder {
    /// From a validated config.
    pub(crate) fn new(config: &Config, blobs: Arc<dyn BlobStore>) -> Result<Self, ConfigError> {
        let profiles = config
            .profiles
            .iter()
            .map(|(name, p)| Ok((name.clone(), p.profile(name)?)))
            .collect::<Result<_, ConfigError>>()?;
        if !config.profiles.contains_key(&config.default_profile) {
            return Err(ConfigError::invalid(
                "default_profile",
                format!("{:?} names no configured profile", config.default_profile),
            ));
        }
        let l = &config.limits;
        let job_timeout = Duration::from_millis(l.job_timeout_ms);
        let office = crate::convert::office::Limits {
            max_input_bytes: l.max_part_bytes,
            max_entries: l.max_zip_entries,
            max_unpacked_bytes: l.max_unpacked_bytes,
            max_ratio: l.max_zip_ratio,
            max_sheet_cells: l.max_sheet_cells,
            ..Default::default()
        };
        let w = &config.workers;
        let program = w
            .program()
            .map_err(|e| ConfigError::invalid("workers.program", e.to_string()))?;
        let pool = Pool::new(pool::Settings {
            program,
            count: w.count,
            memory_limit_bytes: w.memory_limit_bytes,
            cpu_seconds: w.cpu_seconds,
            // A part, or a preview (a profile's largest is 64 MiB).
            max_answer_bytes: (l.max_part_bytes as u64).max(64 << 20),
        });
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
                    max_stream_bytes: l.max_pdf_stream_bytes,
                    max_inflated_bytes: l.max_pdf_inflated_bytes,
                    ..Default::default()
                },
                office,
                media: crate::convert::media::Limits {
                    max_input_bytes: l.max_part_bytes,
                    deadline: job_timeout,
                },
                max_text_bytes: l.max_part_bytes,
                max_html_depth: l.max_html_depth,
            },
            max_message_bytes: l.max_message_bytes,
            max_part_bytes: l.max_part_bytes,
            pool,
            job_timeout,
            callers: config
                .security
                .service_keys
                .verifier()
                .map_err(|e| ConfigError::invalid("security.service_keys", e.to_string()))?,
        })
    }

    /// The deadline of a request's conversion work, starting now.
    fn deadline(&self) -> Instant {
        Instant::now() + self.job_timeout
    }

    /// Runs one worker job; a failure is already the caller's answer.
    async fn work(
        &self,
        request: &WorkerRequest,
        body: &[u8],
        deadline: Instant,
    ) -> Result<(WorkerResponse, Vec<u8>), Refusal> {
        self.pool
            .run(request, body, deadline, self.job_timeout)
            .await
            .map_err(|e| {
                if let PoolError::Spawn { .. } | PoolError::Limit(_) = e {
                    // The service's fault, not the file's: an operator must look.
                    tracing::error!(error = %pushmail_common::report::Report(&e), "no converter worker");
                }
                Refusal::Worker(e)
            })
    }

    /// The raw message, if `account` of `tenant` received it. A message
    /// that exists but was not delivered to the account is NOT_FOUND too:
    /// a device learns nothing about other accounts' mail.
    async fn message(
        &self,
        tenant: &str,
        account: &str,
        blob_ref: &str,
    ) -> Result<Vec<u8>, Refusal> {
        if tenant.is_empty() || account.is_empty() {
            return Err(Refusal::Unidentified);
        }
        let blob = BlobRef::parse(blob_ref).map_err(Refusal::BlobRef)?;
        let unavailable = |e: blob::BlobError| {
            tracing::warn!(error = %pushmail_common::report::Report(&e), "blob store failed");
            Refusal::Store
        };
        let not_found = || Refusal::NoSuchMessage;
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
            return Err(Refusal::MessageTooBig {
                size: raw.len(),
                max: self.max_message_bytes,
            });
        }
        Ok(raw)
    }

    /// Part `part_id` of `raw`, found by a worker.
    async fn part(
        &self,
        raw: &[u8],
        part_id: &str,
        prefer_html: bool,
        deadline: Instant,
    ) -> Result<parts::Part, Refusal> {
        if part_id.is_empty() || part_id.len() > 64 {
            return Err(Refusal::NoPartId);
        }
        let request = WorkerRequest::FindPart {
            section: part_id.to_owned(),
            prefer_html,
        };
        let part = match self.work(&request, raw, deadline).await? {
            (WorkerResponse::Part(mut part), bytes) => {
                part.bytes = bytes;
                *part
            }
            (WorkerResponse::NoPart(e), _) => return Err(e.into()),
            (other, _) => return Err(unexpected(&other)),
        };
        if part.bytes.len() > self.max_part_bytes {
            return Err(Refusal::PartTooBig {
                part: part_id.to_owned(),
                size: part.bytes.len(),
                max: self.max_part_bytes,
            });
        }
        Ok(part)
    }

    fn profile(&self, request: &wire::TranscodeRequest) -> Result<Profile, Refusal> {
        if !request.profile_name.is_empty() {
            return self
                .profiles
                .get(&request.profile_name)
                .cloned()
                .ok_or_else(|| {
                    let mut names: Vec<_> = self.profiles.keys().map(String::as_str).collect();
                    names.sort_unstable();
                    Refusal::UnknownProfile {
                        name: request.profile_name.clone(),
                        configured: names.join(", "),
                    }
                });
        }
        match &request.profile {
            Some(p) => Profile::try_from(p).map_err(Refusal::Profile),
            None => Ok(self.profiles[&self.default_profile].clone()),
        }
    }

    /// Runs `job` in a worker. Dropping the future (the caller went away)
    /// kills the worker and frees its slot.
    async fn run(&self, mut job: Job, deadline: Instant) -> Result<Entry, Refusal> {
        let bytes = std::mem::take(&mut job.part.bytes);
        let request = WorkerRequest::Convert {
            job: Box::new(job),
            limits: self.limits,
        };
        match self.work(&request, &bytes, deadline).await? {
            (WorkerResponse::Converted(output), bytes) => Ok(Entry {
                content_type: output.content_type,
                bytes,
                page_count: output.page_count,
            }),
            (WorkerResponse::Failed(e), _) => Err(Refusal::Failed(e)),
            (other, _) => Err(unexpected(&other)),
        }
    }

    async fn transcode(&self, request: wire::TranscodeRequest) -> Result<ChunkStream, Refusal> {
        let profile = self.profile(&request)?;
        let raw = self
            .message(&request.tenant_id, &request.account_id, &request.blob_ref)
            .await?;
        let deadline = self.deadline();
        let part = self
            .part(
                &raw,
                &request.part_id,
                profile.accepts("text/html"),
                deadline,
            )
            .await?;
        drop(raw);
        let kind =
            Kind::of(&part).ok_or_else(|| Refusal::NoConverter(part.content_type.clone()))?;
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
            .get_or_convert(&key, || self.run(job, deadline))
            .await?;
        let header = wire::TranscodeHeader {
            content_type: entry.content_type.clone(),
            total_bytes: entry.bytes.len() as u64,
            etag: key.etag(),
            page_count: entry.page_count,
            file_name,
        };
        Ok(chunks(header, entry, request.offset, request.limit))
    }

    async fn fetch_part(&self, request: wire::FetchPartRequest) -> Result<ChunkStream, Refusal> {
        let raw = self
            .message(&request.tenant_id, &request.account_id, &request.blob_ref)
            .await?;
        let part = self
            .part(&raw, &request.part_id, false, self.deadline())
            .await?;
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
    ) -> Result<wire::MessageDescription, Refusal> {
        let raw = self
            .message(&request.tenant_id, &request.account_id, &request.blob_ref)
            .await?;
        let job = WorkerRequest::Describe {
            max_message_bytes: self.max_message_bytes,
        };
        match self.work(&job, &raw, self.deadline()).await? {
            (WorkerResponse::Described, encoded) => {
                prost::Message::decode(encoded.as_slice()).map_err(Refusal::Description)
            }
            (WorkerResponse::Failed(e), _) => Err(Refusal::Failed(e)),
            (other, _) => Err(unexpected(&other)),
        }
    }
}

/// A worker's answer that does not fit its question: a worker gone wrong.
fn unexpected(answer: &WorkerResponse) -> Refusal {
    Refusal::OutOfTurn(answer.kind())
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
pub(crate) struct Service(pub Arc<Transcoder>);

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
