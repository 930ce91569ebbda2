//! The parsing entry point on arbitrary bytes: it must never panic, hang or
//! allocate without bound. Seed it with `../tests/corpus`.

#![no_main]

use libfuzzer_sys::fuzz_target;

use pushmail_mime::{Limits, parse};

fuzz_target!(|data: &[u8]| {
    let _ = parse(data, &Limits::default());
});
