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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input_bytes: 32 << 20,
            max_text_pages: 200,
            max_rendered_pages: 10,
            max_pixels: 4_000_000,
            max_chars: 1_000_000,
        }
    }
}

/// Why a PDF was not converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdfError {
    #[error("PDF of {size} bytes is over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("the PDF is encrypted")]
    Encrypted,
    #[error("unreadable PDF: {0}")]
    Corrupt(String),
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
    Ok(())
}

fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, PdfError>) -> Result<T, PdfError> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(PdfError::Corrupt(format!("{what} failed on this file"))))
}

fn open(bytes: &[u8]) -> Result<Pdf, PdfError> {
    Pdf::new(bytes.to_vec()).map_err(|e| match e {
        hayro::hayro_syntax::LoadPdfError::Decryption(_) => PdfError::Encrypted,
        hayro::hayro_syntax::LoadPdfError::Invalid => {
            PdfError::Corrupt("not a readable PDF".to_owned())
        }
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
        pdf_extract::extract_text_from_mem_by_pages(bytes)
            .map_err(|e| PdfError::Corrupt(e.to_string()))
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
            return Err(PdfError::Corrupt("a page without size".to_owned()));
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
        .ok_or_else(|| PdfError::Corrupt("renderer returned a short buffer".to_owned()))?;
        Ok((
            DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(image).to_rgb8()),
            count,
        ))
    })
}
