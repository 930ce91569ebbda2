//! Mails in legacy and mislabelled charsets, written by Python's `email`
//! package and by hand in the shapes Outlook, Foxmail and Thunderbird use
//! (`samples/make_samples.py`), each summarised as the manifest says a
//! mail client shows it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use pushmail_mime::{Limits, ParsedMail, parse};
use serde_json::Value;

fn samples_dir() -> String {
    format!("{}/tests/samples", env!("CARGO_MANIFEST_DIR"))
}

fn manifest() -> Vec<Value> {
    let text = std::fs::read_to_string(format!("{}/manifest.json", samples_dir())).unwrap();
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// What the summary shows, in the manifest's terms.
fn shown(mail: &ParsedMail) -> (String, String, Vec<String>) {
    let from = mail
        .from
        .as_ref()
        .map(|f| f.name.clone())
        .unwrap_or_default();
    let names = mail
        .attachments
        .iter()
        .map(|a| a.file_name.clone())
        .collect();
    (mail.subject.clone(), from, names)
}

#[test]
fn every_sample_reads_as_a_mail_client_shows_it() {
    let samples = manifest();
    assert!(samples.len() >= 50, "{} samples", samples.len());
    let mut wrong = Vec::new();
    for sample in &samples {
        let file = sample["file"].as_str().unwrap();
        let raw = std::fs::read(format!("{}/{file}", samples_dir())).unwrap();
        let mail = parse(&raw, &Limits::default()).unwrap_or_else(|e| panic!("{file}: {e}"));
        let text = |key: &str| sample[key].as_str().unwrap().to_owned();
        let expected_names: Vec<String> = sample["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect();
        let expected = (text("subject"), text("from_name"), expected_names);
        let got = shown(&mail);
        let snippet_start = text("snippet_start");
        if got != expected || !mail.snippet.starts_with(&snippet_start) {
            wrong.push(format!(
                "{file}:\n  expected {expected:?}, snippet {snippet_start:?}…\n  got      {got:?}, snippet {:?}",
                mail.snippet
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {}:\n{}",
        wrong.len(),
        samples.len(),
        wrong.join("\n")
    );
}

/// Replacement characters stand only where bytes were broken: the sample
/// with broken bytes has them, no other sample has any.
#[test]
fn replacement_characters_appear_only_for_broken_bytes() {
    for sample in manifest() {
        let file = sample["file"].as_str().unwrap();
        let raw = std::fs::read(format!("{}/{file}", samples_dir())).unwrap();
        let mail = parse(&raw, &Limits::default()).unwrap();
        let (subject, from, names) = shown(&mail);
        let replaced = [subject, from, mail.snippet.clone()]
            .iter()
            .chain(&names)
            .map(|s| s.matches('\u{fffd}').count())
            .sum::<usize>();
        let expected = if file == "negative-broken-bytes.eml" {
            2
        } else {
            0
        };
        assert_eq!(replaced, expected, "{file}: {mail:?}");
    }
}
