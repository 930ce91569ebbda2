//! PDF attachments: the text of each page (pdf-extract, on lopdf) and
//! images of the first pages (hayro, a pure-Rust rasteriser; no pdfium
//! binary can be shipped here, and a subprocess renderer would need its
//! own sandbox). Both libraries assert on some malformed files (the fuzz
//! target found pdf-extract's `expect("Font")`), so each call runs under
//! `catch_unwind`: a hostile PDF is an error, not a crash. That needs the
//! workspace's default `panic = "unwind"`; never build with abort.

use std::panic::{AssertUnwindSafe, catch_unwind};

use hayro::hayro_interpret::InterpreterSettings;
use hayro::hayro_syntax::Pdf;
use hayro::vello_cpu::color::palette::css::WHITE;
use hayro::{PixmapSettings, RenderCache, RenderSettings};
use image::{DynamicImage, RgbaImage};

/// What a job may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Largest input, bytes.
    pub max_input_bytes: usize,
    /// Pages whose text is extracted; the rest are counted, not read.
    pub max_text_pages: usize,
    /// Only the first pages are rendered as images.
    pub max_rendered_pages: u32,
    /// Largest rendered page, pixels.
    pub max_pixels: u64,
    /// Most characters of text returned.
    pub max_chars: usize,
    /// Largest one stream may inflate to.
    pub max_stream_bytes: u64,
    /// Largest all streams together may inflate to.
    pub max_inflated_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input_bytes: 32 << 20,
            max_text_pages: 200,
            max_rendered_pages: 10,
            max_pixels: 4_000_000,
            max_chars: 1_000_000,
            max_stream_bytes: 64 << 20,
            max_inflated_bytes: 256 << 20,
        }
    }
}

/// Why a PDF was not converted.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("PDF of {size} bytes is over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("the PDF is encrypted")]
    Encrypted,
    /// hayro could not parse the file (it gives no reason).
    #[error("not a readable PDF")]
    Unreadable,
    /// pdf-extract could not read the text.
    #[error("cannot extract the PDF's text")]
    Text(#[source] pdf_extract::OutputError),
    /// A library panicked on the file (caught, see the module's notes).
    #[error("{what} failed on this file")]
    Panicked { what: &'static str },
    /// The page has no width or no height to render.
    #[error("page {page} has no size")]
    NoPageSize { page: u32 },
    /// The renderer's pixels do not fill the image it sized.
    #[error("the renderer returned a short buffer")]
    ShortBuffer,
    #[error("a stream inflates past {limit} bytes{}", if *.total { " in all" } else { "" })]
    Bomb { limit: u64, total: bool },
    #[error("page {page} asked; the PDF has {pages} (only the first {rendered} are rendered)")]
    NoSuchPage {
        page: u32,
        pages: u32,
        rendered: u32,
    },
}

/// A PDF's text, page by page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    /// Pages in the file.
    pub page_count: u32,
    /// Text of the first pages (at most `max_text_pages`).
    pub pages: Vec<String>,
}

fn check_size(bytes: &[u8], limits: &Limits) -> Result<(), PdfError> {
    if bytes.len() > limits.max_input_bytes {
        return Err(PdfError::TooLarge {
            size: bytes.len(),
            limit: limits.max_input_bytes,
        });
    }
    check_streams(bytes, limits)
}

/// Inflates every zlib stream of the file into nothing, counting, and
/// refuses the file when one stream or all of them together would
/// inflate past the limits: neither PDF library caps what it inflates,
/// and a 1 MB Flate stream can hold 1 GB of zeros. The scan reads the
/// raw bytes (`stream` … `endstream`) rather than the object tree, so a
/// broken cross-reference table cannot hide a stream from it, and it costs
/// at most `max_inflated_bytes` of inflating, in a fixed buffer.
pub(crate) fn check_streams(bytes: &[u8], limits: &Limits) -> Result<(), PdfError> {
    let mut total = 0u64;
    let mut at = 0usize;
    while let Some(found) = find(&bytes[at..], b"stream") {
        let keyword = at + found;
        at = keyword + b"stream".len();
        if bytes[..keyword].ends_with(b"end") {
            continue;
        }
        // The keyword is followed by CRLF or LF, then the data.
        let start = match bytes.get(at..at + 2) {
            Some(b"\r\n") => at + 2,
            Some([b'\n', _]) | Some([b'\r', _]) => at + 1,
            _ => continue,
        };
        let end = find(&bytes[start..], b"endstream").map_or(bytes.len(), |e| start + e);
        at = end;
        let inflated = inflated_len(&bytes[start..end], limits.max_stream_bytes);
        if inflated > limits.max_stream_bytes {
            return Err(PdfError::Bomb {
                limit: limits.max_stream_bytes,
                total: false,
            });
        }
        total = total.saturating_add(inflated);
        if total > limits.max_inflated_bytes {
            return Err(PdfError::Bomb {
                limit: limits.max_inflated_bytes,
                total: true,
            });
        }
    }
    Ok(())
}

/// How many bytes `data` inflates to as a zlib stream, counting no further
/// than one past `cap`; 0 when it is not one (other filters are small, or
/// left to the worker's memory limit). A corrupt tail ends the count.
fn inflated_len(data: &[u8], cap: u64) -> u64 {
    use std::io::Read as _;
    // A zlib header: deflate method, a window size, the FCHECK bits.
    let zlib = data.len() >= 2
        && data[0] & 0x0f == 8
        && data[0] >> 4 <= 7
        && (u16::from(data[0]) << 8 | u16::from(data[1])) % 31 == 0;
    if !zlib {
        return 0;
    }
    let mut decoder = flate2::read::ZlibDecoder::new(data).take(cap.saturating_add(1));
    let mut buffer = [0u8; 64 * 1024];
    let mut count = 0u64;
    while let Ok(n @ 1..) = decoder.read(&mut buffer) {
        count += n as u64;
    }
    count
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn guarded<T>(what: &'static str, f: impl FnOnce() -> Result<T, PdfError>) -> Result<T, PdfError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err(PdfError::Panicked { what }))
}

fn open(bytes: &[u8]) -> Result<Pdf, PdfError> {
    Pdf::new(bytes.to_vec()).map_err(|e| match e {
        hayro::hayro_syntax::LoadPdfError::Decryption(_) => PdfError::Encrypted,
        hayro::hayro_syntax::LoadPdfError::Invalid => PdfError::Unreadable,
    })
}

/// How many pages `bytes` has.
pub fn page_count(bytes: &[u8], limits: &Limits) -> Result<u32, PdfError> {
    check_size(bytes, limits)?;
    guarded("reading", || {
        Ok(u32::try_from(open(bytes)?.pages().len()).unwrap_or(u32::MAX))
    })
}

/// The text of the first pages.
pub fn text(bytes: &[u8], limits: &Limits) -> Result<Text, PdfError> {
    let page_count = page_count(bytes, limits)?;
    let mut pages = guarded("text extraction", || {
        pdf_extract::extract_text_from_mem_by_pages(bytes).map_err(PdfError::Text)
    })?;
    pages.truncate(limits.max_text_pages);
    let mut left = limits.max_chars;
    for page in &mut pages {
        let kept = page.char_indices().nth(left).map_or(page.len(), |(i, _)| i);
        page.truncate(kept);
        left -= page.chars().count();
    }
    Ok(Text { page_count, pages })
}

/// Page `page` (1-based) rendered `width` pixels wide on white.
pub fn render(
    bytes: &[u8],
    page: u32,
    width: u32,
    limits: &Limits,
) -> Result<(DynamicImage, u32), PdfError> {
    check_size(bytes, limits)?;
    guarded("rendering", || {
        let pdf = open(bytes)?;
        let pages = pdf.pages();
        let count = u32::try_from(pages.len()).unwrap_or(u32::MAX);
        let rendered = limits.max_rendered_pages.min(count);
        if page == 0 || page > rendered {
            return Err(PdfError::NoSuchPage {
                page,
                pages: count,
                rendered,
            });
        }
        let target = &pages[page as usize - 1];
        let (page_width, page_height) = target.render_dimensions();
        if !(page_width > 0.0 && page_height > 0.0) {
            return Err(PdfError::NoPageSize { page });
        }
        let mut scale = width.max(16) as f32 / page_width;
        // Within the pixel budget and vello's 16-bit dimensions.
        let pixels = (page_width * scale) as f64 * (page_height * scale) as f64;
        if pixels > limits.max_pixels as f64 {
            scale *= (limits.max_pixels as f64 / pixels).sqrt() as f32;
        }
        scale = scale.min(65_535.0 / page_width).min(65_535.0 / page_height);
        let pixmap = hayro::render(
            target,
            &RenderCache::new(),
            &InterpreterSettings::default(),
            &RenderSettings::default(),
            &PixmapSettings {
                x_scale: scale,
                y_scale: scale,
                bg_color: WHITE,
            },
        );
        // On an opaque background premultiplied RGBA is plain RGBA, and
        // the alpha channel says nothing: dropped, so the page goes out as
        // a JPEG rather than a PNG.
        let image = RgbaImage::from_raw(
            u32::from(pixmap.width()),
            u32::from(pixmap.height()),
            pixmap.data_as_u8_slice().to_vec(),
        )
        .ok_or(PdfError::ShortBuffer)?;
        Ok((
            DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(image).to_rgb8()),
            count,
        ))
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    /// A one-page PDF whose content stream is `content` deflated.
    fn pdf_with_stream(content: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(content).unwrap();
        let data = z.finish().unwrap();
        let mut pdf = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n\
            2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n\
            3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>\nendobj\n"
            .to_vec();
        pdf.extend_from_slice(
            format!(
                "4 0 obj\n<< /Length {} /Filter /FlateDecode >>\nstream\r\n",
                data.len()
            )
            .as_bytes(),
        );
        pdf.extend_from_slice(&data);
        pdf.extend_from_slice(b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n");
        pdf
    }

    #[test]
    fn a_flate_bomb_is_refused_before_either_library_sees_it() {
        // 100 MiB of zeros deflate to about 100 KB.
        let bomb = pdf_with_stream(&vec![0u8; 100 << 20]);
        assert!(bomb.len() < 200_000, "{}", bomb.len());
        let started = std::time::Instant::now();
        assert!(matches!(
            text(&bomb, &Limits::default()),
            Err(PdfError::Bomb { total: false, .. })
        ));
        assert!(matches!(
            render(&bomb, 1, 320, &Limits::default()),
            Err(PdfError::Bomb { .. })
        ));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // Many streams under the one-stream cap add up to the total cap.
        let per = Limits {
            max_stream_bytes: 1 << 20,
            max_inflated_bytes: 1 << 20,
            ..Limits::default()
        };
        let mut two = pdf_with_stream(&vec![b' '; 700 << 10]);
        two.extend(pdf_with_stream(&vec![b' '; 700 << 10]));
        assert!(matches!(
            check_streams(&two, &per),
            Err(PdfError::Bomb { total: true, .. })
        ));
        // An ordinary content stream passes.
        let page = pdf_with_stream(b"BT /F1 12 Tf 10 10 Td (hello) Tj ET");
        assert!(check_streams(&page, &Limits::default()).is_ok());
        assert_eq!(inflated_len(b"not zlib", 10), 0);
    }
}
