//! Image previews from arbitrary bytes: never a panic, never more memory
//! than the pixel cap allows (libFuzzer's -rss_limit_mb catches that).

#![no_main]

use libfuzzer_sys::fuzz_target;

mod converters;
use converters::image::{Limits, Profile, preview};

fuzz_target!(|data: &[u8]| {
    let profile = Profile {
        max_width: 64,
        accepts_png: data.first().is_some_and(|b| b & 1 == 1),
        max_bytes: 16 * 1024,
    };
    let limits = Limits {
        max_input_bytes: 1 << 20,
        max_pixels: 4_000_000,
    };
    let _ = preview(data, &profile, &limits);
});
