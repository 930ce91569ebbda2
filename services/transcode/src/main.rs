//! `pushmail-transcode`: see the library for the service. Started with
//! `transcode-worker` it is one of the service's converter workers.

use std::process::ExitCode;

fn main() -> ExitCode {
    if pushmail_transcode::worker::is_worker() {
        return pushmail_transcode::worker::main();
    }
    pushmail_common::cli::main::<pushmail_transcode::Config, _, _, _>(pushmail_transcode::start)
}
