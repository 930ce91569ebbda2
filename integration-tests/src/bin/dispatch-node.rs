//! `pushmail-dispatch`'s entry point, built with the tests so a test can run
//! dispatch as a process of its own and `kill -9` it (a runtime dropped in
//! process leaves librdkafka's threads alive, still in the group).

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]

use std::process::ExitCode;

fn main() -> ExitCode {
    pushmail_common::cli::main::<pushmail_dispatch::Config, _, _, _>(pushmail_dispatch::start)
}
