//! `pushmail-mailbox`'s entry point, built with the tests so a test can run
//! mailbox as a process of its own (the deployment tests ask it to
//! `--dump-config` what compose, kustomize and the chart give it).

use std::process::ExitCode;

fn main() -> ExitCode {
    pushmail_common::cli::main::<pushmail_mailbox::Config, _, _, _>(pushmail_mailbox::start)
}
