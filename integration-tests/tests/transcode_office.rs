//! Word documents and spreadsheets written at test time by independent
//! libraries (python-docx, openpyxl), and zips that must be refused.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use pushmail_common::report::Report;
use pushmail_transcode::convert::office::{
    Bomb, Limits, OfficeError, docx_to_html, spreadsheet_to_html,
};

/// Runs a Python script (with the Debian python3-docx / python3-openpyxl).
fn python(dir: &Path, script: &str) {
    // Debian's interpreter, which has the packages (not one earlier on PATH).
    let status = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .status()
        .expect("/usr/bin/python3 (python3-docx, python3-openpyxl: installed by make test)");
    assert!(status.success(), "{script}");
}

#[test]
fn a_word_document_keeps_its_headings_paragraphs_and_tables() {
    let dir = tempfile::tempdir().unwrap();
    python(
        dir.path(),
        r#"
import docx
d = docx.Document()
d.add_heading("季度报告 Q3", level=1)
d.add_paragraph("Revenue grew by 12% & costs < plan.")
d.add_heading("Details", level=2)
t = d.add_table(rows=2, cols=2)
t.cell(0, 0).text = "Region"
t.cell(0, 1).text = "Sales"
t.cell(1, 0).text = "华南"
t.cell(1, 1).text = "1,200"
d.save("report.docx")
"#,
    );
    let bytes = std::fs::read(dir.path().join("report.docx")).unwrap();
    let html = docx_to_html(&bytes, &Limits::default()).unwrap();
    assert!(html.contains("<h1>季度报告 Q3</h1>"), "{html}");
    assert!(
        html.contains("<p>Revenue grew by 12% &amp; costs &lt; plan.</p>"),
        "{html}"
    );
    assert!(html.contains("<h2>Details</h2>"), "{html}");
    assert!(
        html.contains("<table><tr><td><p>Region</p></td><td><p>Sales</p></td></tr>"),
        "{html}"
    );
    assert!(html.contains("华南") && html.contains("1,200"), "{html}");
}

#[test]
fn every_sheet_becomes_a_table_and_big_ones_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    python(
        dir.path(),
        r#"
import openpyxl
wb = openpyxl.Workbook()
ws = wb.active
ws.title = "Sales"
ws.append(["Region", "Q3"])
ws.append(["华东", 1200])
big = wb.create_sheet("Log")
for i in range(300):
    big.append([i, "row %d" % i])
wb.save("book.xlsx")
"#,
    );
    let bytes = std::fs::read(dir.path().join("book.xlsx")).unwrap();
    let html = spreadsheet_to_html(&bytes, &Limits::default()).unwrap();
    assert!(html.contains("<h2>Sales</h2>"), "{html}");
    assert!(html.contains("<td>华东</td><td>1200</td>"), "{html}");
    assert!(html.contains("<h2>Log</h2>") && html.contains("row 299"));
    let small = Limits {
        max_cells: 50,
        ..Limits::default()
    };
    let cut = spreadsheet_to_html(&bytes, &small).unwrap();
    assert!(cut.contains("only the first 50 cells"), "{cut}");
    assert!(!cut.contains("row 299"));
}

#[test]
fn zip_bombs_and_broken_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // 50 MB of zeros in one entry: deflate packs it a thousandfold.
    let path = dir.path().join("bomb.docx");
    {
        let file = std::fs::File::create(&path).unwrap();
        let mut zip = zip::ZipWriter::new(file);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("word/document.xml", options).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..50 {
            zip.write_all(&zeros).unwrap();
        }
        zip.finish().unwrap();
    }
    let bomb = std::fs::read(&path).unwrap();
    assert!(bomb.len() < 200_000, "a small file: {}", bomb.len());
    assert!(matches!(
        docx_to_html(&bomb, &Limits::default()),
        Err(OfficeError::Bomb(Bomb::Ratio { .. }))
    ));
    assert!(matches!(
        spreadsheet_to_html(&bomb, &Limits::default()),
        Err(OfficeError::Bomb(Bomb::Ratio { .. }))
    ));
    let broken = docx_to_html(b"PK\x03\x04 broken", &Limits::default()).unwrap_err();
    assert!(matches!(broken, OfficeError::Archive(_)), "{broken:?}");
    let said = Report(&broken).to_string();
    assert!(said.starts_with("not a readable zip archive: "), "{said}");
    assert!(matches!(
        spreadsheet_to_html(b"not a spreadsheet", &Limits::default()),
        Err(OfficeError::Workbook(_))
    ));
}
