//! Odd real-world mails: each parses to what a mail client would show.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use pushmail_ingest::mail::{Limits, ParsedMail, parse};

fn corpus(name: &str) -> ParsedMail {
    let path = format!("{}/tests/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read(&path).unwrap();
    parse(&raw, &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn legacy_chinese_charsets_are_decoded() {
    let gb = corpus("gb2312-subject.eml");
    assert_eq!(gb.subject, "季度报告：请审阅");
    let from = gb.from.unwrap();
    assert_eq!(
        (from.name.as_str(), from.address.as_str()),
        ("张伟", "zhangwei@example.cn")
    );
    assert!(
        gb.snippet.starts_with("各位同事，附件是第三季度的财务报告"),
        "{}",
        gb.snippet
    );
    assert_eq!(gb.message_id.as_deref(), Some("gb2312-1@example.cn"));
    assert!(gb.date_ms.is_some());

    let big5 = corpus("big5-subject.eml");
    assert_eq!(big5.subject, "會議通知");
    assert_eq!(big5.snippet, "明天下午三點開會。");

    let gb18030 = corpus("gb18030-html.eml");
    assert_eq!(gb18030.subject, "€ 发票 𠀀");
}

#[test]
fn html_only_bodies_give_a_text_snippet() {
    let mail = corpus("gb18030-html.eml");
    assert!(
        mail.snippet.contains("Your invoice is ready."),
        "{}",
        mail.snippet
    );
    assert!(
        !mail.snippet.contains('<') && !mail.snippet.contains("color:red"),
        "{}",
        mail.snippet
    );
}

#[test]
fn attachments_are_listed_with_their_sections() {
    let mail = corpus("nested-attachments.eml");
    assert_eq!(mail.subject, "Q3 numbers");
    assert_eq!(mail.snippet, "See the attached spreadsheet and the chart.");
    assert_eq!(mail.to.len(), 2);
    let listed: Vec<(&str, &str, &str)> = mail
        .attachments
        .iter()
        .map(|a| {
            (
                a.part_id.as_str(),
                a.file_name.as_str(),
                a.content_type.as_str(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("2", "q3.xls", "application/vnd.ms-excel"),
            ("3", "图表.png", "image/png")
        ]
    );
    assert_eq!(mail.attachments[0].size_bytes, 13 * 20, "decoded size");
}

#[test]
fn broken_and_sparse_mails_still_summarise() {
    let bare = corpus("missing-headers.eml");
    assert_eq!(
        (
            bare.subject.as_str(),
            bare.from.as_ref(),
            bare.message_id.as_ref()
        ),
        ("", None, None)
    );
    assert_eq!(bare.snippet, "Just a body, no subject, no sender.");

    let garbage = corpus("garbage-8bit.eml");
    assert!(garbage.subject.contains("price"), "{:?}", garbage.subject);
    assert_eq!(garbage.from.unwrap().address, "x@example.com");
    assert!(garbage.snippet.contains("body with"), "{}", garbage.snippet);

    let broken = corpus("broken-boundary.eml");
    assert_eq!(broken.subject, "broken");
    assert!(
        broken.snippet.contains("first part text"),
        "{}",
        broken.snippet
    );

    let huge = corpus("huge-header.eml");
    assert_eq!(huge.subject, "huge");
    assert_eq!(huge.message_id.as_deref(), Some("huge-1@example.com"));
    assert_eq!(huge.snippet, "small body");
}

/// The parser never panics, whatever the bytes: every corpus mail, cut at
/// every length and with bytes flipped (a stable stand-in for the fuzz
/// target, which needs nightly).
#[test]
fn mangled_input_never_panics() {
    let dir = format!("{}/tests/corpus", env!("CARGO_MANIFEST_DIR"));
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for entry in std::fs::read_dir(dir).unwrap() {
        let raw = std::fs::read(entry.unwrap().path()).unwrap();
        let raw = &raw[..raw.len().min(4_096)];
        for cut in (0..raw.len()).step_by(7) {
            let _ = parse(&raw[..cut], &Limits::default());
        }
        for _ in 0..200 {
            let mut mangled = raw.to_vec();
            for _ in 0..8 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed as usize) % mangled.len();
                mangled[at] = (seed >> 32) as u8;
            }
            let _ = parse(&mangled, &Limits::default());
        }
    }
}
