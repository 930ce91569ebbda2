//! The worker pool against files that would take a converter's process
//! down, with the in-code bounds switched off so only the kernel's limits
//! stand between them and the service: the spreadsheet that asks for
//! 512 GiB, a PDF whose one stream inflates to 1 GiB, 30,000 `<div/>`
//! that parse for longer than any deadline. Each costs one worker; the
//! pool's slots come back and it converts an ordinary file afterwards.
//! The workers are the real `pushmail-transcode` binary.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::io::{Cursor, Write as _};
use std::time::Duration;

use pushmail_proto::transcode::v1::Rendition;
use pushmail_transcode::parts::Part;
use pushmail_transcode::pipeline::{FailureKind, Job, Kind, Limits};
use pushmail_transcode::pool::{Pool, PoolError, Settings};
use pushmail_transcode::profile::Profile;
use pushmail_transcode::worker::{Failure, Request, Response};
use tokio::time::Instant;

const WORKERS: usize = 2;

/// One test at a time: `workers_alive` counts this process's workers, and
/// under `cargo test` the tests share the process.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn pool() -> Pool {
    Pool::new(Settings {
        program: env!("CARGO_BIN_EXE_pushmail-transcode").into(),
        count: WORKERS,
        memory_limit_bytes: 512 << 20,
        cpu_seconds: 20,
        max_answer_bytes: 64 << 20,
    })
}

/// Every bound in our code off: what holds is the OS.
fn unbounded() -> Limits {
    let mut limits = Limits::default();
    limits.office.max_sheet_cells = u64::MAX;
    limits.office.max_ratio = u64::MAX;
    limits.office.max_unpacked_bytes = u64::MAX;
    limits.pdf.max_stream_bytes = u64::MAX;
    limits.pdf.max_inflated_bytes = u64::MAX;
    limits.max_html_depth = usize::MAX;
    limits
}

fn job(kind: Kind, content_type: &str) -> Job {
    Job {
        part: Part {
            bytes: Vec::new(),
            content_type: content_type.to_owned(),
            charset: None,
            file_name: None,
            inline: Default::default(),
        },
        kind,
        rendition: Rendition::Text,
        page: 0,
        profile: Profile::new(
            720,
            ["text/html".to_owned(), "text/plain".to_owned()],
            512 * 1024,
            false,
        )
        .unwrap(),
        parts_url: String::new(),
    }
}

async fn convert(
    pool: &Pool,
    kind: Kind,
    content_type: &str,
    bytes: &[u8],
    limits: Limits,
    budget: Duration,
) -> Result<(Response, Vec<u8>), PoolError> {
    let request = Request::Convert {
        job: Box::new(job(kind, content_type)),
        limits,
    };
    pool.run(&request, bytes, Instant::now() + budget, budget)
        .await
}

/// A workbook whose only cells are A1 and the sheet's last cell.
fn sheet_bomb() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let mut put = |name: &str, body: &str| {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    };
    put(
        "[Content_Types].xml",
        r#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>"#,
    );
    put(
        "_rels/.rels",
        r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
    );
    put(
        "xl/workbook.xml",
        r#"<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
    );
    put(
        "xl/_rels/workbook.xml.rels",
        r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
    );
    put(
        "xl/worksheets/sheet1.xml",
        r#"<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="A1:XFD1048576"/><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>a</t></is></c></row><row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>z</t></is></c></row></sheetData></worksheet>"#,
    );
    zip.finish().unwrap().into_inner()
}

/// A PDF whose content stream inflates to `size` zeros.
fn flate_bomb(size: usize) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..size >> 20 {
        z.write_all(&zeros).unwrap();
    }
    let data = z.finish().unwrap();
    let mut pdf = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n\
        2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n\
        3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>\nendobj\n"
        .to_vec();
    pdf.extend_from_slice(
        format!(
            "4 0 obj\n<< /Length {} /Filter /FlateDecode >>\nstream\n",
            data.len()
        )
        .as_bytes(),
    );
    pdf.extend_from_slice(&data);
    pdf.extend_from_slice(b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n");
    pdf
}

/// The pool still converts an ordinary body, and every slot is free.
async fn still_converts(pool: &Pool) {
    let (answer, bytes) = convert(
        pool,
        Kind::Html,
        "text/html",
        "<p>季度<b>报告</b></p>".as_bytes(),
        Limits::default(),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert!(matches!(answer, Response::Converted(_)), "{answer:?}");
    assert!(String::from_utf8(bytes).unwrap().contains("<b>报告</b>"));
    assert_eq!(pool.idle(), WORKERS);
}

#[tokio::test]
async fn an_allocation_past_the_memory_limit_kills_one_worker() {
    let _serial = SERIAL.lock().await;
    let pool = pool();
    let started = std::time::Instant::now();
    let died = convert(
        &pool,
        Kind::Spreadsheet,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        &sheet_bomb(),
        unbounded(),
        Duration::from_secs(20),
    )
    .await
    .unwrap_err();
    assert!(matches!(died, PoolError::Died(_)), "{died}");
    assert!(died.to_string().contains("SIGABRT"), "{died}");
    assert!(started.elapsed() < Duration::from_secs(10));
    still_converts(&pool).await;
    // With the bound on, the same file is refused by the worker at once.
    let (answer, _) = convert(
        &pool,
        Kind::Spreadsheet,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        &sheet_bomb(),
        Limits::default(),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert!(
        matches!(&answer, Response::Failed(Failure { kind: FailureKind::OverLimit, detail }) if detail.contains("1048576 rows")),
        "{answer:?}"
    );
}

#[tokio::test]
async fn a_flate_bomb_costs_one_worker() {
    let _serial = SERIAL.lock().await;
    let pool = pool();
    let bomb = flate_bomb(1 << 30);
    assert!(bomb.len() < 16 << 20, "{}", bomb.len());
    let outcome = convert(
        &pool,
        Kind::Pdf,
        "application/pdf",
        &bomb,
        unbounded(),
        Duration::from_secs(30),
    )
    .await;
    // lopdf inflates the stream whole: past 512 MiB the worker aborts
    // (or the library reports the failed read, or the deadline comes
    // first): never the service.
    match outcome {
        Err(PoolError::Died(_) | PoolError::Timeout(_)) | Ok((Response::Failed(_), _)) => {}
        other => panic!("{other:?}"),
    }
    still_converts(&pool).await;
    let (answer, _) = convert(
        &pool,
        Kind::Pdf,
        "application/pdf",
        &bomb,
        Limits::default(),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert!(
        matches!(&answer, Response::Failed(Failure { kind: FailureKind::OverLimit, detail }) if detail.contains("inflates")),
        "{answer:?}"
    );
}

#[tokio::test]
async fn a_job_past_its_deadline_is_killed_and_its_slot_freed() {
    let _serial = SERIAL.lock().await;
    let pool = pool();
    let divs = "<div/>".repeat(30_000);
    let started = std::time::Instant::now();
    let late = convert(
        &pool,
        Kind::Html,
        "text/html",
        divs.as_bytes(),
        unbounded(),
        Duration::from_millis(500),
    )
    .await
    .unwrap_err();
    assert!(matches!(late, PoolError::Timeout(_)), "{late}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(workers_alive(), 0, "the late worker is gone");
    still_converts(&pool).await;
    // With the bound on: refused before parsing.
    let (answer, _) = convert(
        &pool,
        Kind::Html,
        "text/html",
        divs.as_bytes(),
        Limits::default(),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert!(
        matches!(&answer, Response::Failed(Failure { kind: FailureKind::OverLimit, detail }) if detail.contains("30000")),
        "{answer:?}"
    );
}

#[tokio::test]
async fn a_caller_that_goes_away_takes_its_worker_with_it() {
    let _serial = SERIAL.lock().await;
    let pool = pool();
    let divs = "<div/>".repeat(30_000);
    let job = convert(
        &pool,
        Kind::Html,
        "text/html",
        divs.as_bytes(),
        unbounded(),
        Duration::from_secs(60),
    );
    // The gRPC stream dropped mid-conversion drops this future.
    let cancelled = tokio::time::timeout(Duration::from_millis(500), job).await;
    assert!(cancelled.is_err(), "still converting at 500 ms");
    assert_eq!(pool.idle(), WORKERS, "the slot is free at once");
    for _ in 0..50 {
        if workers_alive() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(workers_alive(), 0, "the worker was killed");
    still_converts(&pool).await;
}

#[tokio::test]
async fn garbage_and_broken_files_are_answers_not_crashes() {
    let _serial = SERIAL.lock().await;
    let pool = pool();
    for (kind, content_type, bytes) in [
        (
            Kind::Word,
            "application/msword",
            b"PK\x03\x04 not a zip".to_vec(),
        ),
        (Kind::Pdf, "application/pdf", b"%PDF-1.7 garbage".to_vec()),
        (Kind::Image, "image/png", vec![0x89, b'P', b'N', b'G', 0, 0]),
    ] {
        let (answer, _) = convert(
            &pool,
            kind,
            content_type,
            &bytes,
            Limits::default(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert!(matches!(answer, Response::Failed(_)), "{answer:?}");
    }
    // The MIME parser runs in a worker too.
    let raw = b"From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n";
    let request = Request::FindPart {
        section: "body".to_owned(),
        prefer_html: false,
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let (answer, bytes) = pool
        .run(&request, raw, deadline, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(matches!(answer, Response::Part(_)), "{answer:?}");
    assert_eq!(bytes, b"hello\r\n");
    still_converts(&pool).await;
}

/// Live (not yet reaped is fine: not running) workers that are this
/// process's children.
fn workers_alive() -> usize {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            // pid (comm) state ppid …
            let after = stat.rsplit_once(") ").map(|(_, rest)| rest).unwrap_or("");
            let mut fields = after.split(' ');
            let state = fields.next().unwrap_or("Z");
            let ppid = fields.next().unwrap_or("");
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            ppid == me
                && state != "Z"
                && String::from_utf8_lossy(&cmdline).contains("transcode-worker")
        })
        .count()
}
