//! Test files written at test time by tools from outside the project
//! (ImageMagick, ReportLab, python-pptx, python-docx), and mail messages
//! carrying them, so the converters are checked against independent
//! writers rather than against our own idea of a format.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;

/// Runs a Python script in `dir` with Debian's interpreter (python3-docx,
/// python3-openpyxl, python3-reportlab), not one earlier on PATH.
pub fn python(dir: &Path, script: &str) {
    run_python("/usr/bin/python3", dir, script);
}

/// Runs a Python script in `dir` with the venv that has python-pptx
/// (`$PUSHMAIL_PYTHON`, made by scripts/provision.sh).
pub fn python_pptx(dir: &Path, script: &str) {
    let python = std::env::var("PUSHMAIL_PYTHON")
        .unwrap_or_else(|_| "/var/cache/pushmail/pyvenv/bin/python".to_owned());
    run_python(&python, dir, script);
}

fn run_python(python: &str, dir: &Path, script: &str) {
    let status = Command::new(python)
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .status()
        .unwrap_or_else(|e| panic!("{python}: {e} (scripts/provision.sh installs it)"));
    assert!(status.success(), "{python} failed on:\n{script}");
}

/// Runs ImageMagick (`convert-im6.q16`: `/usr/local/bin/convert` may be
/// something else on a test machine) in `dir`; returns the bytes of `out`.
pub fn imagemagick(dir: &Path, args: &[&str], out: &str) -> Vec<u8> {
    let status = Command::new("/usr/bin/convert-im6.q16")
        .args(args)
        .arg(out)
        .current_dir(dir)
        .status()
        .expect("ImageMagick (installed by scripts/provision.sh)");
    assert!(status.success(), "convert {args:?} {out}");
    std::fs::read(dir.join(out)).expect("the converted file")
}

/// A two-page PDF by ReportLab: "Quarterly report" and a sentence per page.
pub fn pdf(dir: &Path) -> Vec<u8> {
    python(
        dir,
        r#"
from reportlab.pdfgen import canvas
c = canvas.Canvas("report.pdf", pagesize=(595, 842))
c.setFont("Helvetica", 24)
c.drawString(72, 760, "Quarterly report")
c.setFont("Helvetica", 12)
c.drawString(72, 720, "Revenue grew by twelve percent.")
c.rect(72, 400, 300, 200, fill=1)
c.showPage()
c.setFont("Helvetica", 12)
c.drawString(72, 760, "Second page: outlook for next year.")
c.showPage()
c.save()
"#,
    );
    std::fs::read(dir.join("report.pdf")).expect("report.pdf")
}

/// A PowerPoint file by python-pptx: a title slide and a slide with a
/// bulleted body and a table.
pub fn pptx(dir: &Path) -> Vec<u8> {
    python_pptx(
        dir,
        r#"
from pptx import Presentation
from pptx.util import Inches
p = Presentation()
s = p.slides.add_slide(p.slide_layouts[0])
s.shapes.title.text = "Roadmap 2027"
s.placeholders[1].text = "Push mail for every phone"
s = p.slides.add_slide(p.slide_layouts[1])
s.shapes.title.text = "Milestones"
body = s.placeholders[1].text_frame
body.text = "Q1: SMS wake-up & WAP Push"
body.add_paragraph().text = "Q2: 季度目标"
t = s.shapes.add_table(2, 2, Inches(1), Inches(4), Inches(4), Inches(1)).table
t.cell(0, 0).text = "Region"
t.cell(0, 1).text = "Devices"
t.cell(1, 0).text = "South"
t.cell(1, 1).text = "1,200"
p.save("roadmap.pptx")
"#,
    );
    std::fs::read(dir.join("roadmap.pptx")).expect("roadmap.pptx")
}

/// One attachment of a [`multipart`] message.
#[derive(Debug, Clone)]
pub struct Attached<'a> {
    pub content_type: &'a str,
    pub file_name: &'a str,
    pub bytes: &'a [u8],
    /// `Content-ID` for inline images (without `<>`).
    pub content_id: Option<&'a str>,
}

/// A multipart/mixed message: an HTML body (with a plain alternative)
/// and base64 attachments, as a mail client writes it.
pub fn multipart(subject: &str, html: &str, attachments: &[Attached<'_>]) -> Vec<u8> {
    let b64 = |bytes: &[u8]| {
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        text.as_bytes()
            .chunks(76)
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect::<Vec<_>>()
            .join("\r\n")
    };
    let mut out = format!(
        "From: Boss <boss@example.net>\r\nTo: user@example.com\r\nSubject: {subject}\r\n\
         Date: Thu, 26 Nov 2026 10:00:00 +0800\r\nMessage-ID: <{}@example.net>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n\
         --outer\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
         --alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the HTML version.\r\n\
         --alt\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n\
         --alt--\r\n",
        uuid::Uuid::new_v4(),
        b64(html.as_bytes()),
    );
    for a in attachments {
        let id = a
            .content_id
            .map(|id| format!("Content-ID: <{id}>\r\n"))
            .unwrap_or_default();
        let disposition = if a.content_id.is_some() {
            "inline"
        } else {
            "attachment"
        };
        out.push_str(&format!(
            "--outer\r\nContent-Type: {}; name=\"{}\"\r\n{id}Content-Disposition: {disposition}; filename=\"{}\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            a.content_type,
            a.file_name,
            a.file_name,
            b64(a.bytes)
        ));
    }
    out.push_str("--outer--\r\n");
    out.into_bytes()
}
