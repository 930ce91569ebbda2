//! Audio and video: what the file is (container, duration, codecs, frame
//! size, sample rate) and, for video, a still to show. No Rust crate
//! reads video or AMR (symphonia covers common audio only), so this runs
//! Debian's `ffprobe`/`ffmpeg` as subprocesses on a private temporary
//! copy, with a deadline after which they are killed.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

/// What a job may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Largest input, bytes.
    pub max_input_bytes: usize,
    /// Wall time for one tool run.
    pub deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input_bytes: 64 << 20,
            deadline: Duration::from_secs(10),
        }
    }
}

/// One stream of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    /// `audio` or `video`.
    pub kind: String,
    /// ffmpeg's codec name (`h264`, `mp3`, `pcm_s16le`, `amr_nb`, …).
    pub codec: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u32>,
}

/// What a media file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaInfo {
    /// ffmpeg's container names (`mov,mp4,m4a,3gp,3g2,mj2`, `avi`, `wav`, …).
    pub container: String,
    pub duration_ms: Option<u64>,
    pub size: u64,
    pub streams: Vec<Stream>,
}

/// Why a media file was not read.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("media of {size} bytes is over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    /// The tool exited with an error; `reason` is the first line it wrote.
    #[error("not a media file {tool} reads: {reason}")]
    Unreadable { tool: &'static str, reason: String },
    /// ffprobe's output is not the JSON asked for.
    #[error("unreadable ffprobe output")]
    Probe(#[source] serde_json::Error),
    /// The file has neither an audio nor a video stream.
    #[error("no audio or video stream")]
    NoStream,
    /// ffmpeg wrote no frame (an audio file, or no decodable picture).
    #[error("no video frame")]
    NoFrame,
    #[error("{tool} did not finish within {deadline:?}")]
    Timeout {
        tool: &'static str,
        deadline: Duration,
    },
    /// The private copy the tools read could not be written.
    #[error("cannot stage the file for the tools")]
    Stage(#[source] std::io::Error),
    /// The tool could not be started or waited for.
    #[error("cannot run {tool}")]
    Run {
        tool: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// Reads what `bytes` is.
pub async fn probe(bytes: &[u8], limits: &Limits) -> Result<MediaInfo, MediaError> {
    let file = stage(bytes, limits)?;
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ],
        file.path(),
        &[],
        limits.deadline,
    )
    .await?;
    let json: Value = serde_json::from_slice(&out).map_err(MediaError::Probe)?;
    let format = &json["format"];
    let number = |v: &Value| {
        v.as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .or_else(|| v.as_f64())
    };
    let count = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
    let streams: Vec<Stream> = json["streams"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|s| matches!(s["codec_type"].as_str(), Some("audio" | "video")))
        .map(|s| Stream {
            kind: s["codec_type"].as_str().unwrap_or_default().to_owned(),
            codec: s["codec_name"].as_str().unwrap_or_default().to_owned(),
            width: count(&s["width"]),
            height: count(&s["height"]),
            sample_rate: s["sample_rate"].as_str().and_then(|r| r.parse().ok()),
            channels: count(&s["channels"]),
        })
        .collect();
    if streams.is_empty() {
        return Err(MediaError::NoStream);
    }
    Ok(MediaInfo {
        container: format["format_name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        duration_ms: number(&format["duration"])
            .filter(|d| d.is_finite() && *d >= 0.0)
            .map(|d| (d * 1000.0).round() as u64),
        size: bytes.len() as u64,
        streams,
    })
}

/// A JPEG still of a video, `width` pixels wide, from one second in (or
/// the first frame of a shorter one).
pub async fn still(bytes: &[u8], width: u32, limits: &Limits) -> Result<Vec<u8>, MediaError> {
    let file = stage(bytes, limits)?;
    let scale = format!("thumbnail,scale={}:-2", width.max(16));
    // One decoding thread: a worker is one core's worth of work, and each
    // thread's stack and malloc arena count against its address space.
    let out = run(
        "ffmpeg",
        &["-v", "error", "-nostdin", "-threads", "1"],
        file.path(),
        &[
            "-frames:v",
            "1",
            "-vf",
            &scale,
            "-f",
            "image2",
            "-c:v",
            "mjpeg",
            "pipe:1",
        ],
        limits.deadline,
    )
    .await?;
    if out.is_empty() {
        return Err(MediaError::NoFrame);
    }
    Ok(out)
}

/// A private copy the tools can seek in (an MP4's index may be at its end).
fn stage(bytes: &[u8], limits: &Limits) -> Result<tempfile::NamedTempFile, MediaError> {
    if bytes.len() > limits.max_input_bytes {
        return Err(MediaError::TooLarge {
            size: bytes.len(),
            limit: limits.max_input_bytes,
        });
    }
    let file = tempfile::NamedTempFile::new().map_err(MediaError::Stage)?;
    std::fs::write(file.path(), bytes).map_err(MediaError::Stage)?;
    Ok(file)
}

/// Runs `tool before -i input after`, killed at the deadline; its stdout.
async fn run(
    tool: &'static str,
    before: &[&str],
    input: &Path,
    after: &[&str],
    deadline: Duration,
) -> Result<Vec<u8>, MediaError> {
    let child = Command::new(tool)
        .args(before)
        .arg("-i")
        .arg(input)
        .args(after)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| MediaError::Run { tool, source })?;
    let out = tokio::time::timeout(deadline, child.wait_with_output())
        .await
        .map_err(|_| MediaError::Timeout { tool, deadline })?
        .map_err(|source| MediaError::Run { tool, source })?;
    if !out.status.success() {
        let reason = String::from_utf8_lossy(&out.stderr);
        return Err(MediaError::Unreadable {
            tool,
            reason: reason.lines().next().unwrap_or("failed").to_owned(),
        });
    }
    Ok(out.stdout)
}
