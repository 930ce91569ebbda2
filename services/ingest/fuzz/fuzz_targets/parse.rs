//! The parsing entry point on arbitrary bytes: it must never panic, hang or
//! allocate without bound. Seed it with `../tests/corpus`.

#![no_main]

use libfuzzer_sys::fuzz_target;

// The parser module itself (pushmail-common's), compiled here without the rest
// of the service.
#[allow(dead_code)]
#[path = "../../../common/src/mail/mod.rs"]
mod mail;

use mail::{Limits, parse};

fuzz_target!(|data: &[u8]| {
    let _ = parse(data, &Limits::default());
});
