//! `pushmail-mailbox`: see the library for the service.

use std::process::ExitCode;

fn main() -> ExitCode {
    pushmail_common::cli::main::<pushmail_mailbox::Config, _, _, _>(pushmail_mailbox::start)
}
