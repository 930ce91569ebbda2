//! The converter worker: a subprocess that runs one job (find a part of a
//! stored message, describe the message, or convert a part) and exits. It
//! is the service's own binary started with [`WORKER_ARG`], under the
//! memory and CPU limits `crate::pool` sets on it, so everything that
//! parses untrusted bytes (MIME included) runs where an allocation
//! failure, a stack overflow, an abort or an endless loop ends one
//! process, never the service. One job per process: nothing a hostile file
//! did (heap, CPU time used, state) carries over to the next one.

use std::io::{self, Write as _};
use std::process::ExitCode;

use pushmail_common::report::Report;
use pushmail_mime as mail;
use pushmail_proto::common::v1 as common;
use pushmail_proto::transcode::v1 as wire;
use serde::{Deserialize, Serialize};

use crate::frame::{self, FrameError};
use crate::parts::{self, Part, PartError};
use crate::pipeline::{self, ConvertError, FailureKind, Job, Limits, Output};

/// The hidden argument that makes the service binary (`pushmail-transcode`
/// or the standalone `pushmail`) a worker.
pub(crate) const WORKER_ARG: &str = "transcode-worker";

/// Whether this process was started as a worker (`argv[1]`).
pub fn is_worker() -> bool {
    std::env::args_os().nth(1).is_some_and(|a| a == WORKER_ARG)
}

/// What the service asks a worker. The body of the frame is the raw
/// message (`FindPart`, `Describe`) or the part's bytes (`Convert`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// Part `section` of the message (`parts::find`).
    FindPart { section: String, prefer_html: bool },
    /// The message's summary and parts.
    Describe { max_message_bytes: usize },
    /// Converts the part (its bytes are the body).
    Convert { job: Box<Job>, limits: Limits },
}

/// What a worker answers. The body is the part's bytes (`Part`), the
/// encoded `MessageDescription` (`Described`) or the preview (`Converted`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    Part(Box<Part>),
    NoPart(PartError),
    Described,
    Converted(Output),
    Failed(Failure),
}

/// A job the worker refused, as it crosses the pipe: the kind, which
/// decides the caller's status, and what the error said with its causes
/// (an error value and its sources do not cross a process boundary).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{detail}")]
pub struct Failure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// The error and its causes, for the caller.
    pub detail: String,
}

impl From<&ConvertError> for Failure {
    fn from(e: &ConvertError) -> Self {
        Self {
            kind: e.kind(),
            detail: Report(e).to_string(),
        }
    }
}

impl From<&mail::ParseError> for Failure {
    fn from(e: &mail::ParseError) -> Self {
        let kind = match e {
            mail::ParseError::TooLarge { .. } => FailureKind::OverLimit,
            _ => FailureKind::Unreadable,
        };
        Self {
            kind,
            detail: Report(e).to_string(),
        }
    }
}

impl Response {
    /// The answer's name, for errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Part(_) => "a part",
            Self::NoPart(_) => "no part",
            Self::Described => "a description",
            Self::Converted(_) => "a preview",
            Self::Failed(_) => "a failure",
        }
    }
}

/// Why a worker could not answer at all.
#[derive(Debug, thiserror::Error)]
enum WorkerError {
    #[error("reading the job: {0}")]
    Read(#[source] FrameError),
    #[error("writing the answer: {0}")]
    Write(#[source] FrameError),
    #[error("starting the runtime for audio/video: {0}")]
    Runtime(#[source] io::Error),
}

/// The worker's `main`: one job from stdin, its answer to stdout.
pub fn main() -> ExitCode {
    match serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The service logs this line with the job it was running.
            let _ = writeln!(io::stderr(), "transcode worker: {e}");
            ExitCode::from(3)
        }
    }
}

fn serve() -> Result<(), WorkerError> {
    let (request, body): (Request, Vec<u8>) =
        frame::read(&mut io::stdin().lock()).map_err(WorkerError::Read)?;
    let (response, out) = handle(request, body)?;
    frame::write(&mut io::stdout().lock(), &response, &out).map_err(WorkerError::Write)
}

fn handle(request: Request, body: Vec<u8>) -> Result<(Response, Vec<u8>), WorkerError> {
    Ok(match request {
        Request::FindPart {
            section,
            prefer_html,
        } => match parts::find(&body, &section, prefer_html) {
            Ok(mut part) => {
                let bytes = std::mem::take(&mut part.bytes);
                (Response::Part(Box::new(part)), bytes)
            }
            Err(e) => (Response::NoPart(e), Vec::new()),
        },
        Request::Describe { max_message_bytes } => match describe(&body, max_message_bytes) {
            Ok(description) => (
                Response::Described,
                prost::Message::encode_to_vec(&description),
            ),
            Err(e) => (Response::Failed(Failure::from(&e)), Vec::new()),
        },
        Request::Convert { mut job, limits } => {
            job.part.bytes = body;
            let output = if job.is_blocking() {
                pipeline::convert_blocking(&job, &limits)
            } else {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(WorkerError::Runtime)?
                    .block_on(pipeline::convert_media(&job, &limits))
            };
            match output {
                Ok(mut output) => {
                    let bytes = std::mem::take(&mut output.bytes);
                    (Response::Converted(output), bytes)
                }
                Err(e) => (Response::Failed(Failure::from(&e)), Vec::new()),
            }
        }
    })
}

fn describe(
    raw: &[u8],
    max_message_bytes: usize,
) -> Result<wire::MessageDescription, mail::ParseError> {
    let limits = mail::Limits {
        max_message_bytes,
        ..mail::Limits::default()
    };
    let parsed = mail::parse(raw, &limits)?;
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
        has_html_body: parts::has_html_body(raw),
    })
}
