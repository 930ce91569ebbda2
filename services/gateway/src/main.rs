//! `pushmail-gateway`: see the library for the service.

use std::process::ExitCode;

fn main() -> ExitCode {
    pushmail_common::cli::main::<pushmail_gateway::Config, _, _, _>(pushmail_gateway::start)
}
