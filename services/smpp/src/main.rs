//! `pushmail-smpp`: see the library for the connector.

use std::process::ExitCode;

fn main() -> ExitCode {
    pushmail_common::cli::main::<pushmail_smpp::Config, _, _, _>(pushmail_smpp::start)
}
