//! The converters' entry points fed mutated copies of valid files (bytes
//! flipped, runs cut out, tails dropped, headers overwritten), as a fuzzer
//! would: each must answer, converted or refused, and never panic (a run
//! away would be stopped by nextest's timeout). Seeded, so a failure
//! repeats. Each file type must convert its original and, of the
//! mutations, convert some and refuse some: a converter that refused
//! everything (or accepted everything) would pass "never panics" alone.
//! Coverage-guided fuzzing of the same entry points is `make fuzz`.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::path::Path;
use std::process::Command;

use pushmail_transcode::convert::{html, image, office, text};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

const MUTATIONS: usize = 300;

/// How one file type's mutations fared.
#[derive(Debug, Default)]
struct Tally {
    converted: usize,
    refused: usize,
}

impl Tally {
    fn count<T, E>(&mut self, outcome: &Result<T, E>) {
        match outcome {
            Ok(_) => self.converted += 1,
            Err(_) => self.refused += 1,
        }
    }

    /// Both outcomes were seen.
    fn assert_mixed(&self, name: &str) {
        eprintln!(
            "{name}: {} of {} mutations converted",
            self.converted,
            self.converted + self.refused
        );
        assert!(
            self.converted > 0 && self.refused > 0,
            "{name}: {self:?}: every mutation had the same outcome"
        );
    }
}

fn mutate(rng: &mut StdRng, original: &[u8]) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.random_range(0..bytes.len());
        match rng.random_range(0..4) {
            0 => bytes[at] ^= 1 << rng.random_range(0..8),
            1 => bytes.truncate(at),
            2 => {
                let end = (at + rng.random_range(1..64)).min(bytes.len());
                bytes.drain(at..end);
            }
            _ => {
                // A header field set to an extreme.
                let end = (at + 4).min(bytes.len());
                bytes[at..end].fill(0xFF);
            }
        }
    }
    bytes
}

fn imagemagick(dir: &Path, args: &[&str], out: &str) -> Vec<u8> {
    let binary = ["/usr/bin/convert-im6.q16", "/usr/bin/convert"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("ImageMagick (installed by make test)");
    let path = dir.join(out);
    assert!(
        Command::new(binary)
            .args(args)
            .arg(&path)
            .status()
            .unwrap()
            .success()
    );
    std::fs::read(path).unwrap()
}

#[test]
fn mutated_images_are_converted_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let profile = image::Profile {
        max_width: 32,
        accepts_png: true,
        max_bytes: 50_000,
    };
    let limits = image::Limits {
        max_input_bytes: 1 << 20,
        max_pixels: 4_000_000,
    };
    let mut rng = StdRng::seed_from_u64(0x5EED_0001);
    for name in ["s.jpg", "s.png", "s.gif", "s.bmp", "s.webp", "s.tiff"] {
        let sample = imagemagick(dir.path(), &["-size", "64x48", "plasma:fractal"], name);
        image::preview(&sample, &profile, &limits).unwrap();
        let mut tally = Tally::default();
        for _ in 0..MUTATIONS {
            tally.count(&image::preview(
                &mutate(&mut rng, &sample),
                &profile,
                &limits,
            ));
        }
        tally.assert_mixed(name);
    }
}

#[test]
fn mutated_office_files_are_converted_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(
            "import docx, openpyxl\n\
             d = docx.Document(); d.add_heading('Title', 1); d.add_paragraph('Body'); d.save('s.docx')\n\
             wb = openpyxl.Workbook(); wb.active.append(['a', 1]); wb.save('s.xlsx')\n",
        )
        .current_dir(dir.path())
        .status()
        .expect("/usr/bin/python3 with python3-docx and python3-openpyxl");
    assert!(status.success());
    let docx = std::fs::read(dir.path().join("s.docx")).unwrap();
    let xlsx = std::fs::read(dir.path().join("s.xlsx")).unwrap();
    let limits = office::Limits::default();
    office::docx_to_html(&docx, &limits).unwrap();
    office::spreadsheet_to_html(&xlsx, &limits).unwrap();
    let mut rng = StdRng::seed_from_u64(0x5EED_0002);
    let (mut docx_tally, mut xlsx_tally) = (Tally::default(), Tally::default());
    for _ in 0..MUTATIONS {
        docx_tally.count(&office::docx_to_html(&mutate(&mut rng, &docx), &limits));
        xlsx_tally.count(&office::spreadsheet_to_html(
            &mutate(&mut rng, &xlsx),
            &limits,
        ));
    }
    docx_tally.assert_mixed("docx");
    xlsx_tally.assert_mixed("xlsx");
}

#[test]
fn random_text_and_markup_are_converted_or_refused() {
    let mut rng = StdRng::seed_from_u64(0x5EED_0003);
    let sample = "<html><body><p>季度<b>报告</b></p><table><tr><td>1</td></tr></table><img src=\"cid:a\"></body></html>";
    let options = html::Sanitise {
        limit: 1 << 20,
        ..Default::default()
    };
    assert!(
        html::mobile_html(sample, &options)
            .unwrap()
            .contains("报告")
    );
    let mut converted = 0;
    for _ in 0..MUTATIONS {
        let bytes = mutate(&mut rng, sample.as_bytes());
        // Text always decodes (replacement characters, never a refusal),
        // and never grows past the limit.
        assert!(
            text::to_utf8(&bytes, Some("gb18030"), 1 << 20)
                .unwrap()
                .text
                .len()
                <= 1 << 20
        );
        let markup = String::from_utf8_lossy(&bytes);
        if let Ok(mobile) = html::mobile_html(&markup, &options) {
            converted += 1;
            // Sanitised whatever the mutation did: no script, no remote
            // fetch slipped through.
            assert!(!mobile.contains("<script"), "{mobile}");
        }
        if let Ok(plain) = html::plain_text(&markup, 40, 1 << 20, html::MAX_DEPTH) {
            assert!(plain.len() <= 1 << 20);
        }
        let noise: Vec<u8> = (0..rng.random_range(0..512))
            .map(|_| rng.random())
            .collect();
        text::to_utf8(&noise, None, 1 << 20).unwrap();
    }
    assert!(converted > 0, "no mutated markup converted");
}
