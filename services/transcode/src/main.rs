//! `pushmail-transcode`: see the library for the service.

use std::process::ExitCode;

fn main() -> ExitCode {
    pushmail_common::cli::main::<pushmail_transcode::Config, _, _, _>(pushmail_transcode::start)
}
