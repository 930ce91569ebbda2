//! `pushmail-transcode`'s entry point, built with the tests so a test can run
//! transcode as a process of its own.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]

use std::process::ExitCode;

fn main() -> ExitCode {
    if pushmail_transcode::worker::is_worker() {
        return pushmail_transcode::worker::main();
    }
    pushmail_common::cli::main::<pushmail_transcode::Config, _, _, _>(pushmail_transcode::start)
}
