//! Charset detection and HTML sanitising from arbitrary bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;

mod converters;
use converters::html::{Sanitise, mobile_html, plain_text};
use converters::text::to_utf8;

fuzz_target!(|data: &[u8]| {
    let Ok(decoded) = to_utf8(data, Some("gb2312"), 1 << 20) else {
        return;
    };
    let options = Sanitise {
        limit: 1 << 20,
        ..Sanitise::default()
    };
    let _ = mobile_html(&decoded.text, &options);
    let _ = plain_text(&decoded.text, 40, 1 << 20, converters::html::MAX_DEPTH);
});
