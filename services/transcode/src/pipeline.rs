//! Which converter a part goes to, and what comes out for a profile.
//! Every converter here is CPU-bound and synchronous except audio/video
//! (subprocesses with their own deadline); the service runs the rest on
//! the blocking pool.

use pushmail_proto::transcode::v1::Rendition;
use serde_json::json;

use crate::convert::{html, image, media, office, pdf, slides, text};
use crate::parts::Part;
use crate::profile::Profile;

/// The kinds of content a converter exists for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    Image,
    Pdf,
    Word,
    Spreadsheet,
    Slides,
    Html,
    Text,
    Media,
}

impl Kind {
    /// The kind of `part`, from its type, else its file name's extension.
    pub fn of(part: &Part) -> Option<Self> {
        let by_type = match part.content_type.as_str() {
            "image/jpeg" | "image/jpg" | "image/pjpeg" | "image/png" | "image/gif"
            | "image/bmp" | "image/x-ms-bmp" | "image/webp" | "image/tiff" => Some(Self::Image),
            "application/pdf" => Some(Self::Pdf),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
                Some(Self::Word)
            }
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            | "application/vnd.ms-excel" => Some(Self::Spreadsheet),
            "application/vnd.openxmlformats-officedocument.presentationml.presentation" => {
                Some(Self::Slides)
            }
            "text/html" => Some(Self::Html),
            t if t.starts_with("text/") => Some(Self::Text),
            t if t.starts_with("audio/") || t.starts_with("video/") => Some(Self::Media),
            _ => None,
        };
        by_type.or_else(|| {
            let name = part.file_name.as_deref()?.to_ascii_lowercase();
            let ext = name.rsplit_once('.')?.1;
            Some(match ext {
                "jpg" | "jpeg" | "png" | "gif" | "bmp" | "webp" | "tif" | "tiff" => Self::Image,
                "pdf" => Self::Pdf,
                "docx" => Self::Word,
                "xlsx" | "xls" => Self::Spreadsheet,
                "pptx" => Self::Slides,
                "htm" | "html" => Self::Html,
                "txt" | "csv" | "log" => Self::Text,
                "mp3" | "wav" | "amr" | "m4a" | "mp4" | "avi" | "3gp" | "mov" => Self::Media,
                _ => return None,
            })
        })
    }

    /// Converter name and version, part of the cache key: bump it when a
    /// converter's output changes so no old rendering is served.
    pub fn converter(self) -> &'static str {
        match self {
            Self::Image => "image/1",
            Self::Pdf => "pdf/1",
            Self::Word => "docx/1",
            Self::Spreadsheet => "sheet/1",
            Self::Slides => "pptx/1",
            Self::Html => "html/1",
            Self::Text => "text/1",
            Self::Media => "media/1",
        }
    }
}

/// What one job may cost.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    pub image: image::Limits,
    pub pdf: pdf::Limits,
    pub office: office::Limits,
    pub media: media::Limits,
    /// Largest text or HTML input, bytes.
    pub max_text_bytes: usize,
    /// Deepest HTML nesting converted.
    pub max_html_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            image: image::Limits::default(),
            pdf: pdf::Limits::default(),
            office: office::Limits::default(),
            media: media::Limits::default(),
            max_text_bytes: 32 << 20,
            max_html_depth: html::MAX_DEPTH,
        }
    }
}

/// A conversion's result. The bytes travel beside the rest between a
/// worker and the service (see `crate::worker`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Output {
    pub content_type: String,
    #[serde(skip)]
    pub bytes: Vec<u8>,
    /// Pages of the source (PDF), else 1.
    pub page_count: u32,
}

impl Output {
    /// One page of HTML.
    fn html(page: String) -> Self {
        Self {
            content_type: "text/html; charset=utf-8".to_owned(),
            bytes: page.into_bytes(),
            page_count: 1,
        }
    }
}

/// Why a part was not converted, where it happened (in a worker). The
/// converters' own errors are kept whole; [`ConvertError::kind`] says
/// which kind of failure each is, and that is what the caller is told.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConvertError {
    #[error("no converter for {0}")]
    Unsupported(&'static str),
    #[error("the device profile accepts none of {0}")]
    NotAccepted(&'static str),
    #[error("page {asked} asked; text is read from the first {read} of {pages} pages")]
    NoSuchPage { asked: u32, read: usize, pages: u32 },
    #[error(transparent)]
    Image(#[from] image::ImageError),
    #[error(transparent)]
    Pdf(#[from] pdf::PdfError),
    #[error(transparent)]
    Office(#[from] office::OfficeError),
    #[error(transparent)]
    Html(#[from] html::HtmlError),
    #[error(transparent)]
    Text(#[from] text::TextError),
    #[error(transparent)]
    Media(#[from] media::MediaError),
}

/// The kind of a failed conversion: what decides the caller's answer
/// (`crate::refusal`), so it crosses the worker's pipe as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FailureKind {
    /// No converter for the part, as asked.
    Unsupported,
    /// The device takes none of what the converter makes.
    NotAccepted,
    /// The file is broken or not what it says.
    Unreadable,
    /// The file is over a bound (size, pixels, cells, inflation, depth).
    OverLimit,
    /// The page asked for is not there.
    NoSuchPage,
    /// A tool the converter runs (ffmpeg) did not finish in time.
    Timeout,
}

impl ConvertError {
    /// Which kind of failure this is.
    pub(crate) fn kind(&self) -> FailureKind {
        use FailureKind as K;
        use html::HtmlError as H;
        use image::ImageError as I;
        use media::MediaError as M;
        use office::OfficeError as O;
        use pdf::PdfError as P;
        // Every converter variant is named (the text converter's aside),
        // so a new one cannot fall into a kind unseen.
        match self {
            Self::Unsupported(_) => K::Unsupported,
            Self::NotAccepted(_) => K::NotAccepted,
            Self::NoSuchPage { .. } | Self::Pdf(P::NoSuchPage { .. }) => K::NoSuchPage,
            Self::Media(M::Timeout { .. }) => K::Timeout,
            Self::Image(I::UnknownFormat | I::Corrupt(_) | I::Scale(_) | I::Encode(_))
            | Self::Pdf(
                P::Encrypted
                | P::Unreadable
                | P::Text(_)
                | P::Panicked { .. }
                | P::NoPageSize { .. }
                | P::ShortBuffer,
            )
            | Self::Office(
                O::Archive(_)
                | O::Entry { .. }
                | O::Utf8 { .. }
                | O::Xml { .. }
                | O::Workbook(_)
                | O::Sheet { .. }
                | O::NoSlides,
            )
            | Self::Html(H::Render(_))
            | Self::Media(
                M::Unreadable { .. }
                | M::Probe(_)
                | M::NoStream
                | M::NoFrame
                | M::Stage(_)
                | M::Run { .. },
            ) => K::Unreadable,
            Self::Image(I::TooLarge { .. } | I::TooManyPixels { .. } | I::CannotFit(_))
            | Self::Pdf(P::TooLarge { .. } | P::Bomb { .. })
            | Self::Office(O::TooLarge { .. } | O::Bomb(_) | O::SheetTooLarge { .. })
            | Self::Html(H::TooLarge { .. } | H::TooDeep { .. })
            | Self::Media(M::TooLarge { .. })
            | Self::Text(_) => K::OverLimit,
        }
    }
}

/// One conversion.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Job {
    pub part: Part,
    pub kind: Kind,
    #[serde(with = "rendition")]
    pub rendition: Rendition,
    pub page: u32,
    pub profile: Profile,
    /// Base URL (relative to the body's) of this message's parts, for inline images.
    pub parts_url: String,
}

impl Job {
    /// Whether the job runs on the blocking pool (everything but media).
    pub(crate) fn is_blocking(&self) -> bool {
        self.kind != Kind::Media
    }
}

/// Runs a blocking job.
pub(crate) fn convert_blocking(job: &Job, limits: &Limits) -> Result<Output, ConvertError> {
    let one = |content_type: String, bytes: Vec<u8>| Output {
        content_type,
        bytes,
        page_count: 1,
    };
    match job.kind {
        Kind::Image => {
            let preview = image::preview(
                &job.part.bytes,
                &image_profile(&job.profile)?,
                &limits.image,
            )?;
            Ok(one(preview.content_type.to_owned(), preview.bytes))
        }
        Kind::Pdf if job.rendition == Rendition::Image => {
            let (page, pages) = pdf::render(
                &job.part.bytes,
                job.page.max(1),
                job.profile.screen_width,
                &limits.pdf,
            )?;
            let preview = image::fit(&page, &image_profile(&job.profile)?)?;
            Ok(Output {
                content_type: preview.content_type.to_owned(),
                bytes: preview.bytes,
                page_count: pages,
            })
        }
        Kind::Pdf => pdf_text(job, limits),
        Kind::Word => document(
            &office::docx_to_html(&job.part.bytes, &limits.office)?,
            job,
            limits,
        ),
        Kind::Spreadsheet => document(
            &office::spreadsheet_to_html(&job.part.bytes, &limits.office)?,
            job,
            limits,
        ),
        Kind::Slides => document(
            &slides::pptx_to_html(&job.part.bytes, &limits.office)?,
            job,
            limits,
        ),
        Kind::Html => mobile_html(job, limits),
        Kind::Text => {
            if !job.profile.accepts("text/plain") {
                return Err(ConvertError::NotAccepted("text/plain"));
            }
            let decoded = text::to_utf8(
                &job.part.bytes,
                job.part.charset.as_deref(),
                limits.max_text_bytes,
            )?;
            Ok(one(
                "text/plain; charset=utf-8".to_owned(),
                truncate(decoded.text, job.profile.max_len()).into_bytes(),
            ))
        }
        Kind::Media => Err(ConvertError::Unsupported(
            "audio/video on the blocking pool",
        )),
    }
}

/// A PDF's text (one page, or all read), as a mobile page.
fn pdf_text(job: &Job, limits: &Limits) -> Result<Output, ConvertError> {
    let text = pdf::text(&job.part.bytes, &limits.pdf)?;
    let pages: Vec<(usize, &String)> = match job.page {
        0 => text.pages.iter().enumerate().collect(),
        n => {
            let i = n as usize - 1;
            let page = text.pages.get(i).ok_or(ConvertError::NoSuchPage {
                asked: n,
                read: text.pages.len(),
                pages: text.page_count,
            })?;
            vec![(i, page)]
        }
    };
    let mut body = String::new();
    for (i, page) in pages {
        body.push_str(&format!("<section><h2>Page {}</h2>", i + 1));
        for paragraph in page.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
            body.push_str(&format!(
                "<p>{}</p>",
                escape(paragraph).replace('\n', "<br>")
            ));
        }
        body.push_str("</section>");
    }
    let mut out = document(&body, job, limits)?;
    out.page_count = text.page_count;
    Ok(out)
}

/// An HTML part made safe and small, or its text when the device takes no
/// HTML or the page is over its size.
fn mobile_html(job: &Job, limits: &Limits) -> Result<Output, ConvertError> {
    let decoded = text::to_utf8(
        &job.part.bytes,
        job.part.charset.as_deref(),
        limits.max_text_bytes,
    )?;
    if job.profile.accepts("text/html") {
        let inline = job
            .part
            .inline
            .iter()
            .map(|(cid, section)| (cid.clone(), format!("{}{section}/preview", job.parts_url)))
            .collect();
        let page = html::mobile_html(
            &decoded.text,
            &html::Sanitise {
                inline,
                allow_remote: job.profile.allow_remote_images,
                limit: limits.max_text_bytes,
                max_depth: limits.max_html_depth,
            },
        )?;
        if page.len() <= job.profile.max_len() {
            return Ok(Output::html(page));
        }
    }
    plain(&decoded.text, job, limits)
}

/// Runs an audio/video job: metadata as JSON, or a still for an image rendition.
pub(crate) async fn convert_media(job: &Job, limits: &Limits) -> Result<Output, ConvertError> {
    if job.rendition == Rendition::Image {
        let still = media::still(&job.part.bytes, job.profile.screen_width, &limits.media).await?;
        let preview = image::preview(&still, &image_profile(&job.profile)?, &limits.image)?;
        return Ok(Output {
            content_type: preview.content_type.to_owned(),
            bytes: preview.bytes,
            page_count: 1,
        });
    }
    let info = media::probe(&job.part.bytes, &limits.media).await?;
    let streams: Vec<_> = info
        .streams
        .iter()
        .map(|s| {
            json!({
                "kind": s.kind, "codec": s.codec, "width": s.width, "height": s.height,
                "sample_rate": s.sample_rate, "channels": s.channels,
            })
        })
        .collect();
    let body = json!({
        "container": info.container,
        "duration_ms": info.duration_ms,
        "size": info.size,
        "streams": streams,
    });
    Ok(Output {
        content_type: "application/json".to_owned(),
        bytes: body.to_string().into_bytes(),
        page_count: 1,
    })
}

/// A rendition as its wire number (the generated enum has no serde).
mod rendition {
    use pushmail_proto::transcode::v1::Rendition;
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(r: &Rendition, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i32(*r as i32)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Rendition, D::Error> {
        Ok(Rendition::try_from(i32::deserialize(d)?).unwrap_or_default())
    }
}

fn image_profile(profile: &Profile) -> Result<image::Profile, ConvertError> {
    if !profile.accepts("image/jpeg") && !profile.accepts("image/png") {
        return Err(ConvertError::NotAccepted("image/jpeg, image/png"));
    }
    Ok(image::Profile {
        max_width: profile.screen_width,
        accepts_png: profile.accepts("image/png"),
        max_bytes: profile.max_len(),
    })
}

/// Converted HTML as a page when the device shows HTML and it fits, else as text.
fn document(body: &str, job: &Job, limits: &Limits) -> Result<Output, ConvertError> {
    if job.profile.accepts("text/html") {
        let page = html::mobile_html(
            body,
            &html::Sanitise {
                limit: limits.max_text_bytes,
                max_depth: limits.max_html_depth,
                ..html::Sanitise::default()
            },
        )?;
        if page.len() <= job.profile.max_len() {
            return Ok(Output::html(page));
        }
    }
    plain(body, job, limits)
}

fn plain(html_text: &str, job: &Job, limits: &Limits) -> Result<Output, ConvertError> {
    if !job.profile.accepts("text/plain") {
        return Err(ConvertError::NotAccepted("text/html, text/plain"));
    }
    // About 8 pixels a column on a phone's default font.
    let columns = (job.profile.screen_width / 8).clamp(20, 160) as usize;
    let text = html::plain_text(
        html_text,
        columns,
        limits.max_text_bytes,
        limits.max_html_depth,
    )?;
    Ok(Output {
        content_type: "text/plain; charset=utf-8".to_owned(),
        bytes: truncate(text, job.profile.max_len()).into_bytes(),
        page_count: 1,
    })
}

/// At most `max` bytes, cut at a character boundary, marked when cut.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mark = "\n…";
    let mut end = max.saturating_sub(mark.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(mark);
    text
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use pushmail_common::report::Report;

    use super::*;
    use crate::worker::Failure;

    #[test]
    fn converter_errors_keep_their_kind_and_cross_with_their_causes() {
        let io = || std::io::Error::other("disk gone");
        let truncated = image::ImageError::Corrupt(::image::ImageError::IoError(
            std::io::ErrorKind::UnexpectedEof.into(),
        ));
        let cases = [
            (ConvertError::from(truncated), FailureKind::Unreadable),
            (
                pdf::PdfError::Panicked { what: "rendering" }.into(),
                FailureKind::Unreadable,
            ),
            (
                office::OfficeError::NoSlides.into(),
                FailureKind::Unreadable,
            ),
            (
                office::OfficeError::Bomb(office::Bomb::Overlong {
                    name: "word/document.xml".to_owned(),
                })
                .into(),
                FailureKind::OverLimit,
            ),
            (
                html::HtmlError::Render(html2text::Error::TooNarrow).into(),
                FailureKind::Unreadable,
            ),
            (
                media::MediaError::Stage(io()).into(),
                FailureKind::Unreadable,
            ),
            (
                media::MediaError::Run {
                    tool: "ffprobe",
                    source: io(),
                }
                .into(),
                FailureKind::Unreadable,
            ),
        ];
        for (err, kind) in &cases {
            assert_eq!(err.kind(), *kind, "{}", Report(err));
        }
        let details: Vec<String> = cases
            .iter()
            .map(|(err, _)| Failure::from(err).detail)
            .collect();
        assert_eq!(
            details,
            [
                "unreadable image: unexpected end of file",
                "rendering failed on this file",
                "the presentation has no slides",
                "refused as a zip bomb: word/document.xml is longer than it declares",
                "cannot render the HTML as text: Output width not wide enough.",
                "cannot stage the file for the tools: disk gone",
                "cannot run ffprobe: disk gone",
            ]
        );
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        let cut = truncate("季度报告季度报告".repeat(10), 20);
        assert!(cut.len() <= 20);
        assert!(cut.ends_with('…'));
        assert_eq!(truncate("short".into(), 20), "short");
    }
}
