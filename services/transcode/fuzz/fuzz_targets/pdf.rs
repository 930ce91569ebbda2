//! PDF text extraction and page rendering from arbitrary bytes: an error,
//! never a panic escaping the converter.

#![no_main]

use libfuzzer_sys::fuzz_target;

mod converters;
use converters::pdf::{Limits, render, text};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_pixels: 100_000,
        max_rendered_pages: 2,
        ..Limits::default()
    };
    let _ = text(data, &limits);
    let _ = render(data, 1, 64, &limits);
});
