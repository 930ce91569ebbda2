//! Previews per second and peak memory, per input type, against an
//! independent tool doing the same job on the same files in the same run:
//! ImageMagick resizing images, poppler (`pdftotext`, `pdftoppm`) on PDFs,
//! and the Python libraries that wrote the Office files reading their text.
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

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark that fails should stop loudly

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use pushmail_integration_tests::documents;
use pushmail_integration_tests::measure::TABLE_HEAD;
use pushmail_transcode::convert::image::{Limits, Profile, fit, preview};
use pushmail_transcode::convert::{office, pdf, slides};

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

/// One conversion of `input` as `kind`.
fn convert_one(kind: &str, input: &[u8]) {
    match kind {
        "pdf-text" => {
            let text = pdf::text(input, &pdf::Limits::default()).unwrap();
            assert!(text.pages.len() > 1);
        }
        "pdf-page" => {
            let (page, _) = pdf::render(input, 1, 320, &pdf::Limits::default()).unwrap();
            fit(&page, &PROFILE).unwrap();
        }
        "docx" => assert!(
            !office::docx_to_html(input, &office::Limits::default())
                .unwrap()
                .is_empty()
        ),
        "xlsx" => assert!(
            !office::spreadsheet_to_html(input, &office::Limits::default())
                .unwrap()
                .is_empty()
        ),
        "pptx" => assert!(
            !slides::pptx_to_html(input, &office::Limits::default())
                .unwrap()
                .is_empty()
        ),
        _ => {
            let out = preview(input, &PROFILE, &Limits::default()).unwrap();
            assert_eq!(out.width, 320);
        }
    }
}

/// Child mode: `measure <kind> <files…>`; prints `rate <conversions/s> hwm <kB>`.
fn measure(kind: &str, files: &[String]) {
    let inputs: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let started = Instant::now();
    for _ in 0..ROUNDS {
        for input in &inputs {
            convert_one(kind, input);
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
fn ours(kind: &str, files: &[PathBuf]) -> (f64, f64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["measure", kind])
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
        return measure(&args[1], &args[2..]);
    }
    let report_path = args.first().expect("report path").clone();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let mut report = String::new();
    writeln!(
        report,
        "# Transcode: previews against independent tools\n\n\
         {FILES} photo-like images (ImageMagick `plasma:fractal`, 2048×1536) per type, {ROUNDS} rounds, to a 320-pixel-wide JPEG at quality 82 (ours: `convert::image::preview`, one thread, in a child process per type so its peak memory is its own). Baseline in the same run: ImageMagick 6 on the same files, `convert` once per file and `mogrify` over the set in one process; the goal is judged against the faster of the two. Documents ({FILES} per type, written at start by ReportLab, python-docx, openpyxl and python-pptx): ours against poppler (once per file: its process start-up counts, as it would for a service shelling out) or the writing library reading the text in one Python process (start-up not counted) on the same files in the same run. This 2-core machine is shared.\n"
    )
    .unwrap();
    report.push_str(TABLE_HEAD);
    let mut notes = String::new();
    for (extension, label) in [("jpg", "JPEG"), ("png", "PNG"), ("webp", "WebP")] {
        let files = corpus(dir.path(), extension);
        let (rate, hwm) = ours(extension, &files);
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
    documents_table(dir.path(), &mut report, &mut notes);
    report.push('\n');
    report.push_str(&notes);
    std::fs::write(&report_path, report).unwrap();
}

/// Conversions/s of a tool run once per file.
fn per_file(files: &[PathBuf], tool: &str, args: impl Fn(&Path) -> Vec<String>) -> f64 {
    let started = Instant::now();
    for _ in 0..ROUNDS {
        for file in files {
            let status = Command::new(tool).args(args(file)).status().unwrap();
            assert!(status.success(), "{tool}");
        }
    }
    (ROUNDS * files.len()) as f64 / started.elapsed().as_secs_f64()
}

/// Conversions/s of a Python loop reading every file `ROUNDS` times in one
/// process (its start-up not counted: the script times itself).
fn python_loop(files: &[PathBuf], python: &str, read_one: &str) -> f64 {
    let list: Vec<String> = files
        .iter()
        .map(|f| format!("{:?}", f.display().to_string()))
        .collect();
    let script = format!(
        "import time\n{read_one}\nfiles = [{}]\nt = time.perf_counter()\nfor _ in range({ROUNDS}):\n    for f in files:\n        read(f)\nprint({} / (time.perf_counter() - t))\n",
        list.join(", "),
        ROUNDS * files.len()
    );
    let out = Command::new(python)
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Documents: PDFs (text, first page as an image), Word, Excel and
/// PowerPoint, each against an independent reader in the same run.
fn documents_table(dir: &Path, report: &mut String, notes: &mut String) {
    let docs = dir.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    documents::python(
        &docs,
        r#"
from reportlab.pdfgen import canvas
import docx, openpyxl
for n in range(6):
    c = canvas.Canvas(f"doc{n}.pdf")
    for page in range(10):
        y = 800
        for line in range(40):
            c.drawString(40, y, f"Document {n} page {page} line {line}: quarterly figures and outlook.")
            y -= 18
        c.showPage()
    c.save()
    d = docx.Document()
    for p in range(200):
        d.add_paragraph(f"Paragraph {p} of document {n}: revenue, costs and the plan.")
    t = d.add_table(rows=20, cols=5)
    for r in range(20):
        for k in range(5):
            t.cell(r, k).text = f"{r}.{k}"
    d.save(f"doc{n}.docx")
    w = openpyxl.Workbook()
    s = w.active
    for r in range(1, 401):
        for k in range(1, 6):
            s.cell(r, k, f"{n}-{r}-{k}")
    w.save(f"doc{n}.xlsx")
"#,
    );
    documents::python_pptx(
        &docs,
        r#"
from pptx import Presentation
for n in range(6):
    p = Presentation()
    for i in range(30):
        s = p.slides.add_slide(p.slide_layouts[1])
        s.shapes.title.text = f"Slide {i}"
        s.placeholders[1].text = f"Point one of slide {i}\nPoint two of deck {n}"
    p.save(f"doc{n}.pptx")
"#,
    );
    let files = |ext: &str| -> Vec<PathBuf> {
        (0..FILES)
            .map(|n| docs.join(format!("doc{n}.{ext}")))
            .collect()
    };
    let out = dir.join("out");
    let pyvenv = std::env::var("PUSHMAIL_PYTHON")
        .unwrap_or_else(|_| "/var/cache/pushmail/pyvenv/bin/python".to_owned());
    let rows: Vec<(&str, &str, Vec<PathBuf>, &str, f64)> = vec![
        (
            "pdf-text",
            "PDF text (10 pages)",
            files("pdf"),
            "poppler `pdftotext` per file",
            per_file(&files("pdf"), "pdftotext", |f| {
                vec![
                    f.display().to_string(),
                    out.join("t.txt").display().to_string(),
                ]
            }),
        ),
        (
            "pdf-page",
            "PDF first page → 320 px JPEG",
            files("pdf"),
            "poppler `pdftoppm` per file",
            per_file(&files("pdf"), "pdftoppm", |f| {
                [
                    "-f",
                    "1",
                    "-l",
                    "1",
                    "-scale-to-x",
                    "320",
                    "-scale-to-y",
                    "-1",
                    "-jpeg",
                ]
                .iter()
                .map(|a| (*a).to_owned())
                .chain([f.display().to_string(), out.join("p").display().to_string()])
                .collect()
            }),
        ),
        (
            "docx",
            "Word → HTML (200 paragraphs, a table)",
            files("docx"),
            "python-docx reading the text",
            python_loop(
                &files("docx"),
                "/usr/bin/python3",
                "import docx\ndef read(f):\n    d = docx.Document(f)\n    [p.text for p in d.paragraphs]\n    [c.text for t in d.tables for r in t.rows for c in r.cells]",
            ),
        ),
        (
            "xlsx",
            "Excel → HTML (2,000 cells)",
            files("xlsx"),
            "openpyxl reading the cells",
            python_loop(
                &files("xlsx"),
                "/usr/bin/python3",
                "import openpyxl\ndef read(f):\n    w = openpyxl.load_workbook(f, read_only=True)\n    [c for s in w for r in s.iter_rows(values_only=True) for c in r]",
            ),
        ),
        (
            "pptx",
            "PowerPoint → HTML (30 slides)",
            files("pptx"),
            "python-pptx reading the text",
            python_loop(
                &files("pptx"),
                &pyvenv,
                "from pptx import Presentation\ndef read(f):\n    p = Presentation(f)\n    [sh.text_frame.text for s in p.slides for sh in s.shapes if sh.has_text_frame]",
            ),
        ),
    ];
    for (kind, label, inputs, baseline_name, baseline) in rows {
        let (rate, hwm) = ours(kind, &inputs);
        let ratio = rate / baseline;
        writeln!(
            report,
            "| {label} per second | {rate:.1} | {baseline_name} | {baseline:.1} | {ratio:.2} |  |"
        )
        .unwrap();
        writeln!(
            notes,
            "- {label}: ours {rate:.1}/s, peak resident memory {:.1} MiB.",
            hwm / 1024.0
        )
        .unwrap();
        eprintln!("{label}: ours {rate:.1}/s vs {baseline_name} {baseline:.1}/s");
    }
}
