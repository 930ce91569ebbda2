//! `pushmail-binding`'s entry point, built with the tests so a test can run
//! binding as a process of its own, kill it with SIGKILL and start it again.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]

use std::process::ExitCode;

fn main() -> ExitCode {
    pushmail_common::cli::main::<pushmail_binding::Config, _, _, _>(pushmail_binding::start)
}
