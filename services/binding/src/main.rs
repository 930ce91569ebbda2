//! `pushmail-binding`: see the library for the service.

use std::process::ExitCode;

fn main() -> ExitCode {
    pushmail_common::cli::main::<pushmail_binding::Config, _, _, _>(pushmail_binding::start)
}
