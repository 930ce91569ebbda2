//! `pushmail-activesync`'s entry point, built with the tests so a test can run
//! activesync as a process of its own.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]

use std::process::ExitCode;

fn main() -> ExitCode {
    pushmail_common::cli::main::<pushmail_activesync::Config, _, _, _>(pushmail_activesync::start)
}
