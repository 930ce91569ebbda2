//! Images for a small screen: JPEG, PNG, GIF (first frame), BMP, WebP and
//! TIFF in; a JPEG (or a PNG, for transparency the phone can show) no
//! wider than the screen and no bigger than the profile allows, turned
//! upright by its EXIF orientation. The header's dimensions are checked
//! before anything is decoded, so a small file claiming a huge image (a
//! decompression bomb) costs nothing.

use std::io::Cursor;

use fast_image_resize as fr;
use image::{DynamicImage, ImageDecoder as _, ImageReader};

/// What the phone can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// Screen width in pixels: wider images are scaled down, never up.
    pub max_width: u32,
    /// The phone shows PNG (kept for images with transparency).
    pub accepts_png: bool,
    /// Largest preview, bytes.
    pub max_bytes: usize,
}

/// What a job may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Largest input, bytes.
    pub max_input_bytes: usize,
    /// Most pixels a source may have (width × height).
    pub max_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input_bytes: 32 << 20,
            max_pixels: 40_000_000,
        }
    }
}

/// A preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub width: u32,
    pub height: u32,
}

/// Why an image was not converted.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("image of {size} bytes is over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("image of {width}×{height} pixels is over the {limit}-pixel limit")]
    TooManyPixels { width: u32, height: u32, limit: u64 },
    #[error("not an image format this service reads")]
    UnknownFormat,
    /// The decoder refused the file (reading the header or the pixels).
    #[error("unreadable image")]
    Corrupt(#[source] image::ImageError),
    /// Scaling the decoded image failed.
    #[error("cannot scale the image")]
    Scale(#[source] fr::ResizeError),
    /// Encoding the preview failed.
    #[error("cannot encode the preview")]
    Encode(#[source] image::ImageError),
    #[error("no preview fits in {0} bytes")]
    CannotFit(usize),
}

/// JPEG qualities tried, best first, until the preview fits.
const QUALITIES: [u8; 4] = [82, 70, 55, 40];

/// The preview of `bytes` for `profile`.
pub fn preview(bytes: &[u8], profile: &Profile, limits: &Limits) -> Result<Preview, ImageError> {
    if bytes.len() > limits.max_input_bytes {
        return Err(ImageError::TooLarge {
            size: bytes.len(),
            limit: limits.max_input_bytes,
        });
    }
    let reader = || {
        ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| ImageError::Corrupt(image::ImageError::IoError(e)))
    };
    if reader()?.format().is_none() {
        return Err(ImageError::UnknownFormat);
    }
    let (width, height) = reader()?.into_dimensions().map_err(ImageError::Corrupt)?;
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(ImageError::TooManyPixels {
            width,
            height,
            limit: limits.max_pixels,
        });
    }
    let mut reader = reader()?;
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(width);
    decoder_limits.max_image_height = Some(height);
    // Eight bytes a pixel covers 16-bit RGBA; more means the header lied.
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8));
    reader.limits(decoder_limits);
    let mut decoder = reader.into_decoder().map_err(ImageError::Corrupt)?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(ImageError::Corrupt)?;
    image.apply_orientation(orientation);
    fit(&image, profile)
}

/// A decoded image (a rendered PDF page, a video frame) scaled to the
/// profile and encoded within its byte budget.
pub fn fit(image: &DynamicImage, profile: &Profile) -> Result<Preview, ImageError> {
    let alpha = image.color().has_alpha() && profile.accepts_png;
    let mut image = if alpha {
        DynamicImage::ImageRgba8(image.to_rgba8())
    } else {
        DynamicImage::ImageRgb8(image.to_rgb8())
    };
    let mut target = profile.max_width.max(16).min(image.width());
    // Each pass a quarter smaller, until some quality fits.
    for _ in 0..6 {
        let scaled = scale(&image, target)?;
        if let Some(preview) = encode(&scaled, alpha, profile.max_bytes)? {
            return Ok(preview);
        }
        image = scaled;
        target = (target * 3 / 4).max(16);
    }
    Err(ImageError::CannotFit(profile.max_bytes))
}

/// `image` scaled to `width` (aspect kept); as is when already that narrow.
fn scale(image: &DynamicImage, width: u32) -> Result<DynamicImage, ImageError> {
    if width >= image.width() {
        return Ok(image.clone());
    }
    let height =
        u32::try_from(u64::from(image.height()) * u64::from(width) / u64::from(image.width()))
            .unwrap_or(1)
            .max(1);
    let mut scaled = DynamicImage::new(width, height, image.color());
    fr::Resizer::new()
        .resize(
            image,
            &mut scaled,
            &fr::ResizeOptions::new()
                .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3)),
        )
        .map_err(ImageError::Scale)?;
    Ok(scaled)
}

/// The smallest acceptable encoding within `max_bytes`, if any.
fn encode(
    image: &DynamicImage,
    png: bool,
    max_bytes: usize,
) -> Result<Option<Preview>, ImageError> {
    let done = |bytes: Vec<u8>, content_type| Preview {
        bytes,
        content_type,
        width: image.width(),
        height: image.height(),
    };
    if png {
        let mut out = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .map_err(ImageError::Encode)?;
        return Ok((out.len() <= max_bytes).then(|| done(out, "image/png")));
    }
    for quality in QUALITIES {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
            .encode_image(image)
            .map_err(ImageError::Encode)?;
        if out.len() <= max_bytes {
            return Ok(Some(done(out, "image/jpeg")));
        }
    }
    Ok(None)
}
