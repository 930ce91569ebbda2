//! Image previews of files ImageMagick writes at test time: sizes, EXIF
//! orientation, transparency, first frames, and the files that must be
//! refused (a bomb, a truncated file, not an image).

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::path::{Path, PathBuf};
use std::process::Command;

use pushmail_common::report::Report;
use pushmail_transcode::convert::image::{ImageError, Limits, Profile, preview};

/// ImageMagick's `convert` (the Debian binary, not a look-alike earlier on PATH).
fn convert(dir: &Path, args: &[&str], out: &str) -> Vec<u8> {
    let binary = ["/usr/bin/convert-im6.q16", "/usr/bin/convert"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("ImageMagick (the imagemagick package, installed by make test)");
    let path: PathBuf = dir.join(out);
    let status = Command::new(binary).args(args).arg(&path).status().unwrap();
    assert!(status.success(), "convert {args:?} {out}");
    std::fs::read(path).unwrap()
}

const PHONE: Profile = Profile {
    max_width: 320,
    accepts_png: true,
    max_bytes: 200_000,
};

fn decoded(bytes: &[u8]) -> image::DynamicImage {
    image::load_from_memory(bytes).unwrap()
}

#[test]
fn every_format_is_scaled_to_the_screen_and_stays_the_picture() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (name, args, expect) in [
        (
            "photo.jpg",
            vec!["-size", "1600x1200", "gradient:red-blue"],
            (320, 240),
        ),
        ("scan.bmp", vec!["-size", "800x600", "xc:red"], (320, 240)),
        ("fax.tiff", vec!["-size", "640x960", "xc:red"], (320, 480)),
        ("web.webp", vec!["-size", "1000x500", "xc:red"], (320, 160)),
        ("small.png", vec!["-size", "100x80", "xc:red"], (100, 80)),
    ] {
        let bytes = convert(d, &args, name);
        let out = preview(&bytes, &PHONE, &Limits::default()).unwrap();
        assert_eq!((out.width, out.height), expect, "{name}");
        assert!(out.bytes.len() <= PHONE.max_bytes, "{name}");
        let back = decoded(&out.bytes);
        assert_eq!((back.width(), back.height()), expect, "{name} as encoded");
        // Red stays red.
        let p = back.to_rgb8().get_pixel(expect.0 / 2, expect.1 - 1).0;
        if name != "photo.jpg" {
            assert!(p[0] > 200 && p[1] < 60 && p[2] < 60, "{name}: {p:?}");
        }
    }
}

#[test]
fn exif_orientation_transparency_and_first_frames_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Landscape pixels, blue on the left, tagged by exiftool with EXIF
    // orientation 6 ("rotate 90° clockwise to show").
    convert(
        d,
        &[
            "-size",
            "400x200",
            "xc:red",
            "-fill",
            "blue",
            "-draw",
            "rectangle 0,0 199,199",
        ],
        "rotated.jpg",
    );
    let tagged = Command::new("exiftool")
        .args(["-q", "-overwrite_original", "-n", "-Orientation=6"])
        .arg(d.join("rotated.jpg"))
        .status()
        .expect("exiftool (libimage-exiftool-perl, installed by make test)");
    assert!(tagged.success());
    let rotated = std::fs::read(d.join("rotated.jpg")).unwrap();
    let out = preview(
        &rotated,
        &Profile {
            max_width: 1_000,
            ..PHONE
        },
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(
        (out.width, out.height),
        (200, 400),
        "shown upright: portrait"
    );
    let upright = decoded(&out.bytes).to_rgb8();
    let top = upright.get_pixel(100, 50).0;
    let bottom = upright.get_pixel(100, 350).0;
    assert!(
        top[2] > 200 && top[0] < 60,
        "blue on top after rotating: {top:?}"
    );
    assert!(bottom[0] > 200 && bottom[2] < 60, "red below: {bottom:?}");

    // Transparency: PNG when the phone shows it, JPEG otherwise.
    let logo = convert(
        d,
        &[
            "-size",
            "400x400",
            "xc:none",
            "-fill",
            "green",
            "-draw",
            "circle 200,200 200,100",
        ],
        "logo.png",
    );
    let out = preview(&logo, &PHONE, &Limits::default()).unwrap();
    assert_eq!((out.content_type, out.width), ("image/png", 320));
    assert_eq!(
        decoded(&out.bytes).to_rgba8().get_pixel(0, 0).0[3],
        0,
        "still transparent"
    );
    let out = preview(
        &logo,
        &Profile {
            accepts_png: false,
            ..PHONE
        },
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(out.content_type, "image/jpeg");

    // An animation: its first frame.
    let gif = convert(
        d,
        &[
            "-size", "100x50", "xc:red", "-size", "100x50", "xc:blue", "-loop", "0",
        ],
        "anim.gif",
    );
    let out = preview(&gif, &PHONE, &Limits::default()).unwrap();
    let p = decoded(&out.bytes).to_rgb8().get_pixel(50, 25).0;
    assert!(p[0] > 200 && p[2] < 60, "the first (red) frame: {p:?}");

    // A tight byte budget: smaller and coarser, but within it.
    let photo = convert(d, &["-size", "1200x900", "plasma:fractal"], "plasma.jpg");
    let tight = Profile {
        max_bytes: 8_000,
        ..PHONE
    };
    let out = preview(&photo, &tight, &Limits::default()).unwrap();
    assert!(
        out.bytes.len() <= 8_000 && out.width <= 320,
        "{} bytes, {} wide",
        out.bytes.len(),
        out.width
    );
}

/// CRC-32 (PNG's), to patch a header.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn bombs_truncations_and_strangers_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A real PNG whose header is rewritten to claim 100,000 × 100,000 pixels.
    let mut bomb = convert(d, &["-size", "64x64", "xc:white"], "bomb.png");
    bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        preview(&bomb, &PHONE, &Limits::default()),
        Err(ImageError::TooManyPixels {
            width: 100_000,
            height: 100_000,
            ..
        })
    ));
    // A cut PNG is an error; a cut JPEG decodes to what arrived (as
    // browsers show it) — either way an answer, not a crash.
    let png = convert(d, &["-size", "800x600", "plasma:fractal"], "cut.png");
    let cut = preview(&png[..png.len() / 3], &PHONE, &Limits::default()).unwrap_err();
    assert!(matches!(cut, ImageError::Corrupt(_)), "{cut:?}");
    // The decoder's own reason follows ours.
    let said = Report(&cut).to_string();
    assert!(
        said.starts_with("unreadable image: ") && said.len() > "unreadable image: ".len(),
        "{said}"
    );
    let photo = convert(d, &["-size", "800x600", "gradient:white-black"], "cut.jpg");
    match preview(&photo[..photo.len() / 3], &PHONE, &Limits::default()) {
        Ok(partial) => assert_eq!(partial.width, 320),
        Err(err) => assert!(matches!(err, ImageError::Corrupt(_)), "{err}"),
    }
    assert!(matches!(
        preview(b"%PDF-1.7 not an image", &PHONE, &Limits::default()),
        Err(ImageError::UnknownFormat)
    ));
    let limits = Limits {
        max_input_bytes: 100,
        ..Limits::default()
    };
    assert!(matches!(
        preview(&photo, &PHONE, &limits),
        Err(ImageError::TooLarge { .. })
    ));
}
