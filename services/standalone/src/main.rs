//! `pushmail`: the operator CLI. `pushmail standalone` runs every service
//! in this one process on embedded adapters; `pushmail device` is the
//! demo device; `pushmail loadgen` (feature `loadgen`) the end-to-end
//! load generator.

mod config;
mod demo;
mod device;
mod enroll;
mod guide;
mod keys;
#[cfg(feature = "loadgen")]
mod loadgen;
mod mailbox_cli;
mod refused;
mod secrets;
mod sms;
mod standalone;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pushmail_common::cli::ServiceArgs;

/// pushmail: carrier-grade push mail.
#[derive(Debug, Parser)]
#[command(name = "pushmail", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every service in this process with embedded defaults.
    Standalone(ServiceArgs),
    /// A demo device: hold a connection, print and ack notifications; or
    /// list, read, reply to and send mail through the gateway.
    Device(Box<device::DeviceArgs>),
    /// End-to-end load: the standalone platform, phones, mail over SMTP at
    /// a constant rate; writes a latency report.
    #[cfg(feature = "loadgen")]
    Loadgen(loadgen::LoadgenArgs),
    /// Print a fresh set of the platform's secrets as KEY=value lines.
    Keys(keys::KeysArgs),
    /// The load generator's phones (started by `loadgen`).
    #[cfg(feature = "loadgen")]
    #[command(hide = true)]
    LoadgenDevices(loadgen::SwarmArgs),
}

fn main() -> ExitCode {
    // Transcode's converter workers are this binary too (standalone runs
    // transcode in-process): the hidden argument comes before any CLI.
    if pushmail_transcode::worker::is_worker() {
        return pushmail_transcode::worker::main();
    }
    match Cli::parse().command {
        Command::Standalone(args) => {
            if let Some(code) = refused::intercept(&args) {
                return code;
            }
            pushmail_common::cli::main_with_args::<config::StandaloneConfig, _, _, _>(
                &args,
                standalone::run,
            )
        }
        Command::Device(args) => device::run(*args),
        #[cfg(feature = "loadgen")]
        Command::Loadgen(args) => {
            if let Err(e) = args.validate() {
                eprintln!("pushmail loadgen: {e}");
                return ExitCode::from(2);
            }
            let service = args.service.clone();
            pushmail_common::cli::main_with_args::<config::StandaloneConfig, _, _, _>(
                &service,
                move |config, shutdown| loadgen::run(config, args, shutdown),
            )
        }
        #[cfg(feature = "loadgen")]
        Command::LoadgenDevices(args) => loadgen::swarm(args),
        Command::Keys(args) => keys::run(&args),
    }
}
