//! `pushmail-dispatch`: see the library for the service.

use std::process::ExitCode;

fn main() -> ExitCode {
    pushmail_common::cli::main::<pushmail_dispatch::Config, _, _, _>(pushmail_dispatch::start)
}
