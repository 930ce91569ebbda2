//! Memory of the transcode service while 8 hostile files are converted at
//! once, against 8 ordinary files converted at once in the same run.
//!
//! `pushmail-transcode` runs as shipped (its own process, 8 workers of
//! `workers.memory_limit_bytes` each), once per round:
//! - **ordinary** (the baseline): a ReportLab PDF as text and as a page
//!   image, an ImageMagick photo for two profiles, an openpyxl workbook, a
//!   python-docx document, an HTML body;
//! - **hostile**: the attack suite's files (`hostile.rs`: the 512 GiB
//!   spreadsheet, the 200 MiB Flate stream, the 1000× docx, 10,000 zip
//!   entries, a broken zip, 30,000 `<div/>` as attachment and as body),
//!   with the default bounds;
//! - **hostile, bounds off**: the same with every bound in our code
//!   switched off (sheet cells, PDF inflate caps, zip ratio and size, HTML
//!   depth), so only the kernel's limits on the workers hold.
//!
//! A sampler reads `/proc` every 2 ms: the service's VmHWM (its peak, the
//! kernel's own high-water mark), each worker's VmHWM (the last sample
//! before it exits; a worker killed by its limit cannot exceed the limit
//! anyway), and the sum of VmRSS over the service and its workers.
//!
//! Writes a Markdown report to the path given as the first argument; the
//! service binary is the `pushmail-transcode` of the same profile, or the
//! second argument. Run by `make bench` after `cargo build --profile bench
//! -p pushmail-transcode`.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark that fails should stop loudly

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use pushmail_common::blob::{BlobStore as _, LocalBlobStore, owner};
use pushmail_common::config::ServerConfig;
use pushmail_common::service_identity::Service;
use pushmail_integration_tests::documents::{self, Attached};
use pushmail_integration_tests::{authed, credential, free_port, hostile, wait_ready};
use pushmail_proto::transcode::v1 as pb;
use pushmail_proto::transcode::v1::transcode_service_client::TranscodeServiceClient;
use tokio::process::Command;

const TENANT: &str = "0193a1b2-0000-7000-8000-000000000001";
const ACCOUNT: &str = "0193a1b2-0000-7000-8000-0000000000a1";
const WORKERS: usize = 8;
const MEMORY_LIMIT: u64 = 512 << 20;

/// A request: part and profile.
type Ask = (&'static str, &'static str, pb::Rendition);

struct Round {
    name: &'static str,
    answers: Vec<(String, String, Duration)>,
    wall: Duration,
    service_peak_kib: u64,
    worker_peaks_kib: Vec<u64>,
    tree_peak_kib: u64,
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Samples the service and its workers until `stop`.
fn sample(pid: u32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(HashMap<u32, u64>, u64)> {
    std::thread::spawn(move || {
        let mut workers: HashMap<u32, u64> = HashMap::new();
        let mut tree = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let mut sum = status_kib(pid, "VmRSS:").unwrap_or(0);
            for child in children(pid) {
                if let Some(hwm) = status_kib(child, "VmHWM:") {
                    let peak = workers.entry(child).or_default();
                    *peak = (*peak).max(hwm);
                }
                sum += status_kib(child, "VmRSS:").unwrap_or(0);
            }
            tree = tree.max(sum);
            std::thread::sleep(Duration::from_millis(2));
        }
        (workers, tree)
    })
}

async fn start(
    exe: &Path,
    dir: &Path,
    blobs: &Path,
    bounds: bool,
) -> (tokio::process::Child, SocketAddr) {
    let mut config = pushmail_integration_tests::edge::transcode_config(blobs);
    config.workers.program = None;
    // As shipped (the test helper lengthens it for debug builds).
    config.limits.job_timeout_ms = pushmail_transcode::Config::default().limits.job_timeout_ms;
    config.workers.count = WORKERS;
    config.workers.memory_limit_bytes = MEMORY_LIMIT;
    if !bounds {
        let l = &mut config.limits;
        l.max_sheet_cells = u64::MAX / 2;
        l.max_pdf_stream_bytes = u64::MAX / 2;
        l.max_pdf_inflated_bytes = u64::MAX / 2;
        l.max_zip_ratio = u64::MAX / 2;
        l.max_unpacked_bytes = u64::MAX / 2;
        l.max_zip_entries = usize::MAX / 2;
        l.max_html_depth = usize::MAX / 2;
    }
    let grpc: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    config.server = ServerConfig {
        grpc_addr: grpc,
        admin_addr: admin,
    };
    config.telemetry.log_level = "error".to_owned();
    let file = dir.join(format!("transcode-{bounds}.toml"));
    std::fs::write(&file, toml::to_string(&config).unwrap()).unwrap();
    let child = Command::new(exe)
        .arg("--config")
        .arg(&file)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_ready(admin, Duration::from_secs(30)).await.unwrap();
    (child, grpc)
}

async fn round(
    name: &'static str,
    exe: &Path,
    dir: &Path,
    blobs: &Path,
    blob: &str,
    asks: &[Ask],
    bounds: bool,
) -> Round {
    let (mut child, grpc) = start(exe, dir, blobs, bounds).await;
    let pid = child.id().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample(pid, stop.clone());
    let client = TranscodeServiceClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();
    let token = credential(Service::Gateway);
    let started = Instant::now();
    let calls = asks.iter().map(|&(part, profile, rendition)| {
        let mut client = client.clone();
        let request = pb::TranscodeRequest {
            tenant_id: TENANT.to_owned(),
            account_id: ACCOUNT.to_owned(),
            blob_ref: blob.to_owned(),
            part_id: part.to_owned(),
            profile_name: profile.to_owned(),
            rendition: rendition as i32,
            ..Default::default()
        };
        let token = token.clone();
        async move {
            let began = Instant::now();
            let outcome = match client.transcode(authed(&token, request)).await {
                Ok(stream) => {
                    let chunks = stream.into_inner().collect::<Vec<_>>().await;
                    match chunks.into_iter().find_map(Result::err) {
                        None => "OK".to_owned(),
                        Some(status) => format!("{:?}", status.code()),
                    }
                }
                Err(status) => format!("{:?}", status.code()),
            };
            (format!("{part} ({profile})"), outcome, began.elapsed())
        }
    });
    let answers = futures::future::join_all(calls).await;
    let wall = started.elapsed();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let service_peak_kib = status_kib(pid, "VmHWM:").unwrap();
    stop.store(true, Ordering::Relaxed);
    let (workers, tree_peak_kib) = sampler.join().unwrap();
    child.kill().await.unwrap();
    let mut worker_peaks_kib: Vec<u64> = workers.into_values().collect();
    worker_peaks_kib.sort_unstable();
    Round {
        name,
        answers,
        wall,
        service_peak_kib,
        worker_peaks_kib,
        tree_peak_kib,
    }
}

fn store_message(blobs: &Path, html: &str, attachments: &[Attached<'_>]) -> String {
    let raw = documents::multipart("bench", html, attachments);
    let runtime = tokio::runtime::Handle::current();
    let store = LocalBlobStore::new(blobs);
    tokio::task::block_in_place(|| {
        runtime.block_on(async {
            let blob = store.put(&raw).await.unwrap();
            store.grant(&owner(TENANT, ACCOUNT), &blob).await.unwrap();
            blob.as_str().to_owned()
        })
    })
}

fn ordinary(dir: &Path) -> Vec<(&'static str, &'static str, Vec<u8>)> {
    documents::python(
        dir,
        "import openpyxl, docx\n\
         wb = openpyxl.Workbook(); ws = wb.active\n\
         for r in range(1, 201):\n    ws.append([r, 'row %d' % r, r * 1.5, '季度'])\n\
         wb.save('ordinary.xlsx')\n\
         d = docx.Document(); d.add_heading('Quarterly report', 1)\n\
         for i in range(50):\n    d.add_paragraph('Paragraph %d of the report.' % i)\n\
         d.save('ordinary.docx')\n",
    );
    let photo = documents::imagemagick(dir, &["-size", "1600x1200", "plasma:"], "photo.jpg");
    vec![
        ("application/pdf", "report.pdf", documents::pdf(dir)),
        ("image/jpeg", "photo.jpg", photo),
        (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "ordinary.xlsx",
            std::fs::read(dir.join("ordinary.xlsx")).unwrap(),
        ),
        (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "ordinary.docx",
            std::fs::read(dir.join("ordinary.docx")).unwrap(),
        ),
    ]
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn write_report(path: &Path, rounds: &[Round]) {
    let base = &rounds[0];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Transcode under hostile files\n\n\
         8 conversions at once against `pushmail-transcode` (bench profile, `limits.job_timeout_ms` \
         as shipped: 4 s) with \
         {WORKERS} workers of `workers.memory_limit_bytes` = {} MiB each; the baseline is \
         8 ordinary files converted at once in the same run. Peaks from `/proc` (VmHWM of \
         the service; each worker's VmHWM at its last 2 ms sample; the sum of VmRSS over \
         the service and its workers). Generated by \
         `integration-tests/examples/transcode_attack_bench.rs`.\n",
        MEMORY_LIMIT >> 20
    );
    let _ = writeln!(
        out,
        "| metric | this run | baseline (same run) | baseline value | ratio | goal |\n|---|---|---|---|---|---|"
    );
    for r in &rounds[1..] {
        let worst = r.worker_peaks_kib.last().copied().unwrap_or(0);
        let base_worst = base.worker_peaks_kib.last().copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "| largest worker peak RSS, MiB ({}) | {} | ordinary files | {} | {:.2} | < {} |",
            r.name,
            mib(worst),
            mib(base_worst),
            worst as f64 / base_worst.max(1) as f64,
            MEMORY_LIMIT >> 20
        );
        let _ = writeln!(
            out,
            "| service peak RSS, MiB ({}) | {} | ordinary files | {} | {:.2} | unchanged |",
            r.name,
            mib(r.service_peak_kib),
            mib(base.service_peak_kib),
            r.service_peak_kib as f64 / base.service_peak_kib.max(1) as f64
        );
        let _ = writeln!(
            out,
            "| service + workers peak RSS, MiB ({}) | {} | ordinary files | {} | {:.2} | < service + {WORKERS} × limit |",
            r.name,
            mib(r.tree_peak_kib),
            mib(base.tree_peak_kib),
            r.tree_peak_kib as f64 / base.tree_peak_kib.max(1) as f64
        );
        let _ = writeln!(
            out,
            "| all 8 answered, s ({}) | {:.2} | ordinary files | {:.2} | {:.2} | < 4 (job timeout) |",
            r.name,
            r.wall.as_secs_f64(),
            base.wall.as_secs_f64(),
            r.wall.as_secs_f64() / base.wall.as_secs_f64().max(0.001)
        );
    }
    for r in rounds {
        let _ = writeln!(
            out,
            "\n## {}\n\nservice peak {} MiB; service + workers peak {} MiB; workers seen {}, their peaks (MiB): {}\n\n| request | answer | time, ms |\n|---|---|---|",
            r.name,
            mib(r.service_peak_kib),
            mib(r.tree_peak_kib),
            r.worker_peaks_kib.len(),
            r.worker_peaks_kib
                .iter()
                .map(|k| mib(*k))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (ask, answer, took) in &r.answers {
            let _ = writeln!(out, "| {ask} | {answer} | {} |", took.as_millis());
        }
    }
    std::fs::write(path, &out).unwrap();
    print!("{out}");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let report = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "bench/reports/transcode_attacks.md".to_owned()),
    );
    // The service binary beside this example's profile directory, or the
    // one given second (a bench-profile build measured by a debug client).
    let exe = std::env::args().nth(2).map_or_else(
        || {
            let mut dir = std::env::current_exe().unwrap();
            dir.pop();
            if dir.ends_with("examples") {
                dir.pop();
            }
            dir.join("pushmail-transcode")
        },
        PathBuf::from,
    );
    assert!(
        exe.is_file(),
        "build it first: cargo build --profile bench -p pushmail-transcode ({})",
        exe.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let blobs = dir.path().join("blobs");

    let files = ordinary(dir.path());
    let attached: Vec<_> = files
        .iter()
        .map(|(content_type, file_name, bytes)| Attached {
            content_type,
            file_name,
            bytes,
            content_id: None,
        })
        .collect();
    let ordinary_blob = store_message(
        &blobs,
        "<h1>Report</h1><p>See the <b>attachments</b>.</p>",
        &attached,
    );
    let ordinary_asks: [Ask; 8] = [
        ("2", "smartphone", pb::Rendition::Text),
        ("2", "smartphone", pb::Rendition::Image),
        ("3", "smartphone", pb::Rendition::Text),
        ("3", "tablet", pb::Rendition::Text),
        ("4", "smartphone", pb::Rendition::Text),
        ("5", "smartphone", pb::Rendition::Text),
        ("body", "smartphone", pb::Rendition::Text),
        ("2", "tablet", pb::Rendition::Image),
    ];

    let hostile_files = hostile::attachments(dir.path());
    let attached: Vec<_> = hostile_files
        .iter()
        .map(|f| Attached {
            content_type: f.content_type,
            file_name: f.file_name,
            bytes: &f.bytes,
            content_id: None,
        })
        .collect();
    let hostile_blob = store_message(&blobs, &hostile::nested_divs(), &attached);
    let hostile_asks: [Ask; 8] = [
        ("2", "smartphone", pb::Rendition::Text),
        ("3", "smartphone", pb::Rendition::Text),
        ("4", "smartphone", pb::Rendition::Text),
        ("5", "smartphone", pb::Rendition::Text),
        ("6", "smartphone", pb::Rendition::Text),
        ("7", "smartphone", pb::Rendition::Text),
        ("body", "smartphone", pb::Rendition::Text),
        ("3", "tablet", pb::Rendition::Image),
    ];

    let rounds = vec![
        round(
            "ordinary",
            &exe,
            dir.path(),
            &blobs,
            &ordinary_blob,
            &ordinary_asks,
            true,
        )
        .await,
        round(
            "hostile",
            &exe,
            dir.path(),
            &blobs,
            &hostile_blob,
            &hostile_asks,
            true,
        )
        .await,
        round(
            "hostile, bounds off",
            &exe,
            dir.path(),
            &blobs,
            &hostile_blob,
            &hostile_asks,
            false,
        )
        .await,
    ];
    for r in &rounds {
        for peak in &r.worker_peaks_kib {
            assert!(
                *peak * 1024 <= MEMORY_LIMIT,
                "{}: a worker over its limit",
                r.name
            );
        }
    }
    write_report(&report, &rounds);
}
