//! `pushmail-session`: see the library for the service.

use std::process::ExitCode;

fn main() -> ExitCode {
    pushmail_common::cli::main::<pushmail_session::Config, _, _, _>(pushmail_session::start)
}
