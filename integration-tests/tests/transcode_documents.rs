//! PDFs written by ReportLab and PowerPoint files written by python-pptx,
//! converted: the text survives, pages render at the screen's width, and
//! broken or locked files are refused with a reason.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use image::GenericImageView as _;
use pushmail_common::report::Report;
use pushmail_integration_tests::documents;
use pushmail_transcode::convert::office::{Limits as OfficeLimits, OfficeError};
use pushmail_transcode::convert::pdf::{self, Limits, PdfError};
use pushmail_transcode::convert::slides::pptx_to_html;

#[test]
fn a_pdf_gives_its_text_per_page_and_renders_its_pages() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = documents::pdf(dir.path());
    let limits = Limits::default();

    let text = pdf::text(&bytes, &limits).unwrap();
    assert_eq!(text.page_count, 2);
    assert_eq!(text.pages.len(), 2);
    assert!(
        text.pages[0].contains("Quarterly report"),
        "{:?}",
        text.pages
    );
    assert!(text.pages[0].contains("Revenue grew by twelve percent."));
    assert!(
        text.pages[1].contains("outlook for next year"),
        "{:?}",
        text.pages
    );

    // A4 at 320 px wide keeps its aspect ratio; the black box drawn at
    // (72, 400)-(372, 600) in PDF points is dark, the margin is white.
    let (page, pages) = pdf::render(&bytes, 1, 320, &limits).unwrap();
    assert_eq!(pages, 2);
    assert_eq!(page.width(), 320);
    assert!((452..=453).contains(&page.height()), "{}", page.height());
    let scale = 320.0 / 595.0;
    let inside = page.get_pixel((200.0 * scale) as u32, ((842.0 - 500.0) * scale) as u32);
    let margin = page.get_pixel(5, 5);
    assert!(inside.0[..3].iter().all(|c| *c < 60), "{inside:?}");
    assert!(margin.0[..3].iter().all(|c| *c > 240), "{margin:?}");
}

#[test]
fn pages_past_the_end_or_the_render_limit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = documents::pdf(dir.path());
    let one = Limits {
        max_rendered_pages: 1,
        ..Limits::default()
    };
    assert!(matches!(
        pdf::render(&bytes, 2, 320, &one),
        Err(PdfError::NoSuchPage {
            page: 2,
            pages: 2,
            rendered: 1
        })
    ));
    assert!(matches!(
        pdf::render(&bytes, 3, 320, &Limits::default()),
        Err(PdfError::NoSuchPage { page: 3, .. })
    ));
    assert!(matches!(
        pdf::render(&bytes, 0, 320, &Limits::default()),
        Err(PdfError::NoSuchPage { page: 0, .. })
    ));
    // The pixel budget shrinks the page rather than refusing it.
    let small = Limits {
        max_pixels: 10_000,
        ..Limits::default()
    };
    let (page, _) = pdf::render(&bytes, 1, 2000, &small).unwrap();
    assert!(u64::from(page.width()) * u64::from(page.height()) <= 10_500);
}

#[test]
fn broken_locked_and_oversized_pdfs_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = documents::pdf(dir.path());
    let limits = Limits::default();

    assert!(matches!(
        pdf::text(b"%PDF-1.4\nnot really", &limits),
        Err(PdfError::Unreadable)
    ));
    // Truncated: whatever pages survive or an error, never a panic.
    assert!(matches!(
        pdf::render(&bytes[..bytes.len() / 3], 1, 320, &limits),
        Err(PdfError::Unreadable | PdfError::Text(_) | PdfError::Panicked { .. }) | Ok(_)
    ));
    let tiny = Limits {
        max_input_bytes: 100,
        ..limits
    };
    assert!(matches!(
        pdf::page_count(&bytes, &tiny),
        Err(PdfError::TooLarge { .. })
    ));

    documents::python(
        dir.path(),
        r#"
from reportlab.pdfgen import canvas
c = canvas.Canvas("locked.pdf", encrypt="secret")
c.drawString(72, 720, "Confidential")
c.showPage()
c.save()
"#,
    );
    let locked = std::fs::read(dir.path().join("locked.pdf")).unwrap();
    let refused = pdf::text(&locked, &limits).unwrap_err();
    assert!(
        matches!(refused, PdfError::Encrypted | PdfError::Unreadable),
        "{refused:?}"
    );
}

#[test]
fn a_presentation_keeps_its_slides_titles_text_and_tables_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = documents::pptx(dir.path());
    let html = pptx_to_html(&bytes, &OfficeLimits::default()).unwrap();
    let first = html.find("Roadmap 2027").expect(&html);
    let second = html.find("Milestones").expect(&html);
    assert!(first < second, "{html}");
    assert!(html.contains("<h3>Roadmap 2027</h3>"), "{html}");
    assert!(html.contains("<p>Push mail for every phone</p>"), "{html}");
    assert!(
        html.contains("<p>Q1: SMS wake-up &amp; WAP Push</p>"),
        "{html}"
    );
    assert!(html.contains("<p>Q2: 季度目标</p>"), "{html}");
    assert!(
        html.contains("<table><tr><td>Region </td><td>Devices </td></tr><tr><td>South </td><td>1,200 </td></tr></table>"),
        "{html}"
    );
    assert_eq!(html.matches("<section>").count(), 2, "{html}");
}

#[test]
fn a_presentation_that_is_not_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let docx_like = {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        zip.start_file(
            "word/document.xml",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        std::io::Write::write_all(&mut zip, b"<w:document/>").unwrap();
        zip.finish().unwrap().into_inner()
    };
    assert!(matches!(
        pptx_to_html(&docx_like, &OfficeLimits::default()),
        Err(OfficeError::NoSlides)
    ));
    let bytes = documents::pptx(dir.path());
    assert!(matches!(
        pptx_to_html(&bytes[..bytes.len() / 2], &OfficeLimits::default()),
        Err(OfficeError::Archive(_))
    ));
}

#[test]
fn a_file_that_panics_the_pdf_library_is_an_error() {
    // Found by `make fuzz-transcode`: pdf-extract's `expect("Font")` on a
    // font resource that is not a dictionary.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../services/transcode/tests/corpus/pdf-extract-font-panic.pdf"
    );
    let bytes = std::fs::read(path).unwrap();
    let refused = pdf::text(&bytes, &Limits::default()).unwrap_err();
    assert!(
        matches!(
            refused,
            PdfError::Panicked {
                what: "text extraction"
            }
        ),
        "{refused:?}"
    );
    assert_eq!(
        Report(&refused).to_string(),
        "text extraction failed on this file"
    );
}
