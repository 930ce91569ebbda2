//! `pushmail-ingest`: see the library for the service.

use std::process::ExitCode;

fn main() -> ExitCode {
    pushmail_common::cli::main::<pushmail_ingest::Config, _, _, _>(pushmail_ingest::start)
}
