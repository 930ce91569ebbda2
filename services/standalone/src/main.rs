//! `pushmail`: the operator CLI. `pushmail standalone` runs every service
//! in this one process on embedded adapters; `pushmail device` is the
//! demo device.

mod config;
mod demo;
mod device;
mod secrets;
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
    /// A demo device: hold a connection, print and ack notifications.
    Device(device::DeviceArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Standalone(args) => {
            pushmail_common::cli::main_with_args::<config::StandaloneConfig, _, _, _>(
                &args,
                standalone::run,
            )
        }
        Command::Device(args) => device::run(args),
    }
}
