//! Word, Excel and PowerPoint files from arbitrary bytes (zip or not):
//! an error or a preview, never a panic, never an unbounded inflate.

#![no_main]

use libfuzzer_sys::fuzz_target;

mod converters;
use converters::office::{Limits, docx_to_html, spreadsheet_to_html};
use converters::slides::pptx_to_html;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_unpacked_bytes: 16 << 20,
        max_cells: 1_000,
        ..Limits::default()
    };
    let _ = docx_to_html(data, &limits);
    let _ = spreadsheet_to_html(data, &limits);
    let _ = pptx_to_html(data, &limits);
});
