//! The command line shared by every service binary, so each `main.rs` is
//! one call: arguments → config → telemetry → the service's `start`.

use std::fmt::Display;
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use crate::config::{self, ServiceConfig};
use crate::lifecycle::{self, StopError};
use crate::telemetry::{self, TelemetryConfig};

/// Arguments of a service binary.
#[derive(Debug, Clone, Parser)]
#[command(version)]
pub struct ServiceArgs {
    /// TOML config file; environment variables override it.
    #[arg(long, env = "PUSHMAIL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print the effective config (secrets masked) and exit.
    #[arg(long)]
    pub dump_config: bool,
}

/// What the command line needs from a service's config.
pub trait Hosted: ServiceConfig {
    /// Telemetry settings.
    fn telemetry(&self) -> &TelemetryConfig;
    /// Grace period after a stop signal.
    fn grace(&self) -> Duration;
    /// Async worker threads; `None` is one per core.
    fn worker_threads(&self) -> Option<usize> {
        None
    }
}

/// Runs a service binary. Exit codes: 0 clean stop, 1 failure, 2 bad
/// config or arguments.
pub fn main<C, F, Fut, E>(start: F) -> ExitCode
where
    C: Hosted,
    F: FnOnce(C, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    main_with_args(&ServiceArgs::parse(), start)
}

/// [`main`] with arguments parsed by the caller (a subcommand).
pub fn main_with_args<C, F, Fut, E>(args: &ServiceArgs, start: F) -> ExitCode
where
    C: Hosted,
    F: FnOnce(C, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let config: C = match config::load(args.config.as_deref()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(2);
        }
    };
    if args.dump_config {
        print!("{}", config::dump(&config));
        return ExitCode::SUCCESS;
    }
    let mut builder = match config.worker_threads() {
        // One thread: the current-thread scheduler runs everything on it,
        // without the work-stealing machinery a one-worker pool still pays
        // at every wake-up (an idle session node wakes once per heartbeat).
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        threads => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            if let Some(threads) = threads {
                builder.worker_threads(threads);
            }
            builder
        }
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let (code, telemetry) = runtime.block_on(async move {
        let telemetry = match telemetry::init(&format!("pushmail-{}", C::NAME), config.telemetry())
        {
            Ok(guard) => guard,
            Err(err) => {
                eprintln!("cannot start telemetry: {}", crate::report::Report(&err));
                return (ExitCode::FAILURE, None);
            }
        };
        let grace = config.grace();
        let shutdown = CancellationToken::new();
        let stopped = lifecycle::run_until(
            start(config, shutdown.clone()),
            shutdown,
            grace,
            lifecycle::stop_signal,
        )
        .await;
        let code = match stopped {
            Ok(()) => {
                tracing::info!("stopped");
                ExitCode::SUCCESS
            }
            Err(StopError::Service(err)) => {
                tracing::error!(error = format!("{err:#}"), "service failed");
                ExitCode::FAILURE
            }
            Err(err) => {
                tracing::error!(error = %err, "unclean stop");
                ExitCode::FAILURE
            }
        };
        (code, Some(telemetry))
    });
    // Flushing spans blocks; done here, off the async context, while the
    // runtime (which the exporter needs) is still alive.
    drop(telemetry);
    // A task that never yields (seen once: a stopped standalone spinning
    // one worker) would keep a plain drop of the runtime waiting for ever;
    // the process has stopped, so it exits regardless, and says so.
    let started = std::time::Instant::now();
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    if started.elapsed() >= RUNTIME_SHUTDOWN {
        eprintln!(
            "a task did not stop within {RUNTIME_SHUTDOWN:?} of the shutdown; exiting anyway"
        );
    }
    code
}

/// How long a stopped process waits for its runtime's last tasks.
const RUNTIME_SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(5);
