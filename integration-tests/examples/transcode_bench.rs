//! Image previews per second and peak memory, per input type, against
//! ImageMagick resizing the same files in the same run.
//!
//! The corpus is written by ImageMagick at start (photo-like plasma
//! images, 2048×1536, as JPEG, PNG and WebP). Ours: `preview()` to a
//! 320-pixel-wide JPEG on one thread, each type in a child process so its
//! peak resident memory (VmHWM) is its own. Baseline: `convert -resize
//! 320x -quality 82` on one file per process (how a shell-out works) and
//! `mogrify` over the whole set in one process (ImageMagick at its best).
//! The goal (≥ 2× ImageMagick for JPEG resize) is judged against the
//! better of the two.
//!
//! Writes a Markdown report to the path given as the first argument. Run
//! by `make bench`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark that fails should stop loudly

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use pushmail_integration_tests::measure::TABLE_HEAD;
use pushmail_transcode::convert::image::{Limits, Profile, preview};

const FILES: usize = 6;
const ROUNDS: usize = 3;
const GOAL: f64 = 2.0;
const PROFILE: Profile = Profile {
    max_width: 320,
    accepts_png: false,
    max_bytes: 200_000,
};

fn imagemagick(tool: &str) -> String {
    let debian = format!("/usr/bin/{tool}-im6.q16");
    if Path::new(&debian).exists() {
        debian
    } else {
        tool.to_owned()
    }
}

fn corpus(dir: &Path, extension: &str) -> Vec<PathBuf> {
    (0..FILES)
        .map(|i| {
            let path = dir.join(format!("img{i}.{extension}"));
            let status = Command::new(imagemagick("convert"))
                .args([
                    "-size",
                    "2048x1536",
                    "-seed",
                    &i.to_string(),
                    "plasma:fractal",
                    "-quality",
                    "90",
                ])
                .arg(&path)
                .status()
                .unwrap();
            assert!(status.success());
            path
        })
        .collect()
}

/// Child mode: `measure <files…>`; prints `rate <conversions/s> hwm <kB>`.
fn measure(files: &[String]) {
    let inputs: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let started = Instant::now();
    for _ in 0..ROUNDS {
        for input in &inputs {
            let out = preview(input, &PROFILE, &Limits::default()).unwrap();
            assert_eq!(out.width, 320);
        }
    }
    let rate = (ROUNDS * inputs.len()) as f64 / started.elapsed().as_secs_f64();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("0")
        .to_owned();
    println!("rate {rate} hwm {hwm}");
}

/// (conversions/s, peak kB) of ours over `files`, in a child process.
fn ours(files: &[PathBuf]) -> (f64, f64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .arg("measure")
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    (words[1].parse().unwrap(), words[3].parse().unwrap())
}

/// ImageMagick, one `convert` per file: conversions/s.
fn convert_each(files: &[PathBuf], out: &Path) -> f64 {
    let started = Instant::now();
    for _ in 0..ROUNDS {
        for (i, file) in files.iter().enumerate() {
            let status = Command::new(imagemagick("convert"))
                .arg(file)
                .args(["-resize", "320x", "-quality", "82"])
                .arg(out.join(format!("each{i}.jpg")))
                .status()
                .unwrap();
            assert!(status.success());
        }
    }
    (ROUNDS * files.len()) as f64 / started.elapsed().as_secs_f64()
}

/// ImageMagick, `mogrify` over the set in one process: conversions/s.
fn mogrify(files: &[PathBuf], out: &Path) -> f64 {
    let started = Instant::now();
    for _ in 0..ROUNDS {
        let status = Command::new(imagemagick("mogrify"))
            .args([
                "-resize", "320x", "-quality", "82", "-format", "jpg", "-path",
            ])
            .arg(out)
            .args(files)
            .status()
            .unwrap();
        assert!(status.success());
    }
    (ROUNDS * files.len()) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("measure") {
        return measure(&args[1..]);
    }
    let report_path = args.first().expect("report path").clone();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let mut report = String::new();
    writeln!(
        report,
        "# Transcode: image previews against ImageMagick\n\n\
         {FILES} photo-like images (ImageMagick `plasma:fractal`, 2048×1536) per type, {ROUNDS} rounds, to a 320-pixel-wide JPEG at quality 82 (ours: `convert::image::preview`, one thread, in a child process per type so its peak memory is its own). Baseline in the same run: ImageMagick 6 on the same files, `convert` once per file and `mogrify` over the set in one process; the goal is judged against the faster of the two. This 2-core machine is shared.\n"
    )
    .unwrap();
    report.push_str(TABLE_HEAD);
    let mut notes = String::new();
    for (extension, label) in [("jpg", "JPEG"), ("png", "PNG"), ("webp", "WebP")] {
        let files = corpus(dir.path(), extension);
        let (rate, hwm) = ours(&files);
        let each = convert_each(&files, &out);
        let batch = mogrify(&files, &out);
        let (baseline_name, baseline) = if batch >= each {
            ("ImageMagick `mogrify`", batch)
        } else {
            ("ImageMagick `convert`", each)
        };
        let ratio = rate / baseline;
        let goal = if extension == "jpg" {
            format!(
                "≥ {GOAL}×: {}",
                if ratio >= GOAL { "met" } else { "NOT met" }
            )
        } else {
            String::new()
        };
        writeln!(
            report,
            "| {label} previews per second | {rate:.1} | {baseline_name} | {baseline:.1} | {ratio:.2} | {goal} |"
        )
        .unwrap();
        writeln!(
            notes,
            "- {label}: ours {rate:.1}/s, peak resident memory {:.1} MiB; ImageMagick `convert` per file {each:.1}/s, `mogrify` {batch:.1}/s.",
            hwm / 1024.0
        )
        .unwrap();
        eprintln!("{label}: ours {rate:.1}/s vs convert {each:.1}/s, mogrify {batch:.1}/s");
    }
    report.push('\n');
    report.push_str(&notes);
    std::fs::write(&report_path, report).unwrap();
}
