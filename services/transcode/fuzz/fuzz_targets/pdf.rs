//! PDF text extraction and page rendering from arbitrary bytes: an error,
//! never a panic escaping the converter. pdf-extract and hayro panic on
//! some files and `pdf.rs` contains that with `catch_unwind`; libFuzzer's
//! panic hook would abort even on a caught panic, so this target installs
//! a quiet hook: only a panic that escapes the guard (and aborts in the
//! harness's own `catch_unwind`) is a finding.

#![no_main]

use libfuzzer_sys::fuzz_target;

mod converters;
use converters::pdf::{Limits, render, text};

static QUIET: std::sync::Once = std::sync::Once::new();

fuzz_target!(|data: &[u8]| {
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let limits = Limits {
        max_pixels: 100_000,
        max_rendered_pages: 2,
        ..Limits::default()
    };
    let _ = text(data, &limits);
    let _ = render(data, 1, 64, &limits);
});
