//! `pushmail-activesync`: see the library for the service.

use std::process::ExitCode;

fn main() -> ExitCode {
    pushmail_common::cli::main::<pushmail_activesync::Config, _, _, _>(pushmail_activesync::start)
}
