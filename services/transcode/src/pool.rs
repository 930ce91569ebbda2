//! The pool of converter workers (`crate::worker`): at most `count` at
//! once, each a fresh process of the service's own binary with an address
//! space (`RLIMIT_AS`) and CPU time (`RLIMIT_CPU`) limit the kernel
//! enforces, killed with its whole process group (ffmpeg included) when
//! the job's deadline passes or its caller goes away. Whatever a hostile
//! file does to a worker, the service sees an error for that one job and
//! the slot is free again.
//!
//! The limits are set from here with `prlimit(2)` right after the spawn,
//! before the worker has been sent any input (it blocks reading stdin),
//! rather than in a `pre_exec` hook: the workspace forbids `unsafe`, and
//! the worker runs nothing of the file's before it reads the job. Soft and
//! hard limits are equal, so nothing in the worker can raise them.

use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustix::process::{Pid, Resource, Rlimit, Signal};
use tokio::io::AsyncReadExt as _;
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::frame::{self, FrameError};
use crate::worker::{Request, Response, WORKER_ARG};

/// How the workers are started and bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The binary run as `<program> transcode-worker`.
    pub program: PathBuf,
    /// Workers at once.
    pub count: usize,
    /// `RLIMIT_AS` of each worker, bytes.
    pub memory_limit_bytes: u64,
    /// `RLIMIT_CPU` of each worker, seconds.
    pub cpu_seconds: u64,
    /// Largest answer read from a worker, bytes.
    pub max_answer_bytes: u64,
}

/// Why a job got no answer.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Every worker slot stayed taken until the deadline.
    #[error("every converter worker is busy; try again shortly")]
    Busy,
    /// The job's deadline passed; its worker was killed.
    #[error("the conversion did not finish within {0:?}")]
    Timeout(Duration),
    /// The worker ended without answering (a limit killed it, it aborted).
    #[error("the converter worker {}", describe(.0))]
    Died(ExitStatus),
    /// No worker could be started.
    #[error("cannot start a converter worker ({program}): {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// The limits could not be set on a worker (it was killed unused).
    #[error("cannot limit a converter worker: {0}")]
    Limit(#[source] std::io::Error),
    /// The worker answered something unreadable.
    #[error("the converter worker answered nonsense: {0}")]
    Protocol(#[source] FrameError),
}

/// A bounded set of worker slots.
pub struct Pool {
    settings: Settings,
    slots: Arc<Semaphore>,
}

/// A started worker; dropping it (the caller went away, the deadline
/// passed) kills its process group, so nothing it started outlives it.
struct Running {
    child: Child,
    group: Option<Pid>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(group) = self.group.take() {
            // Fails only when the group is gone already.
            let _ = rustix::process::kill_process_group(group, Signal::KILL);
        }
    }
}

impl Running {
    async fn kill_and_reap(&mut self) {
        if let Some(group) = self.group {
            let _ = rustix::process::kill_process_group(group, Signal::KILL);
        }
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(1), self.child.wait()).await {
            // Reaped: its process group id may be reused from now on.
            self.group = None;
        }
    }
}

impl Pool {
    /// A pool with `settings.count` slots.
    pub fn new(settings: Settings) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(settings.count)),
            settings,
        }
    }

    /// Worker slots free now.
    pub fn idle(&self) -> usize {
        self.slots.available_permits()
    }

    /// Runs one job in a fresh worker: waits for a slot, sends `request`
    /// and `body`, reads the answer; all before `deadline`.
    pub async fn run(
        &self,
        request: &Request,
        body: &[u8],
        deadline: Instant,
        budget: Duration,
    ) -> Result<(Response, Vec<u8>), PoolError> {
        let _slot = tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or(PoolError::Busy)?;
        let mut worker = self.spawn()?;
        let answer = tokio::time::timeout_at(deadline, self.exchange(&mut worker, request, body));
        let answer = match answer.await {
            Ok(answer) => answer,
            Err(_) => {
                // Reaped before the slot is released, so a pool of N slots
                // never has more than N converters holding memory.
                worker.kill_and_reap().await;
                return Err(PoolError::Timeout(budget));
            }
        };
        let stderr = worker.child.stderr.take();
        // The worker exits once it has answered; one that answered and
        // lingers is killed with its group when `worker` drops.
        let status = tokio::time::timeout(Duration::from_secs(1), worker.child.wait()).await;
        if let Ok(Ok(_)) = status {
            // Reaped: its process group id may be reused from now on.
            worker.group = None;
        }
        match (answer, status) {
            (Ok(answer), _) => Ok(answer),
            (Err(e), Ok(Ok(status))) if !status.success() => {
                let said = match stderr {
                    Some(stderr) => {
                        let mut text = Vec::new();
                        let mut first = stderr.take(2048);
                        let read = first.read_to_end(&mut text);
                        let _ = tokio::time::timeout(Duration::from_millis(100), read).await;
                        String::from_utf8_lossy(&text).trim().to_owned()
                    }
                    None => String::new(),
                };
                tracing::warn!(
                    job = request.kind(),
                    worker = %describe(&status),
                    stderr = %said,
                    pipe = %e,
                    "converter worker died"
                );
                Err(PoolError::Died(status))
            }
            (Err(e), _) => Err(PoolError::Protocol(e)),
        }
    }

    /// Starts a worker in a process group of its own, its limits set.
    fn spawn(&self) -> Result<Running, PoolError> {
        let s = &self.settings;
        let child = Command::new(&s.program)
            .arg(WORKER_ARG)
            // Nothing of the service's environment (credentials, config)
            // reaches a process that parses hostile bytes; PATH finds ffmpeg.
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            // glibc reserves 64 MiB of address space per malloc arena, up
            // to 8 per core: on a large node that alone would exceed
            // RLIMIT_AS in a worker with a few threads (ffmpeg's).
            .env("MALLOC_ARENA_MAX", "2")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| PoolError::Spawn {
                program: s.program.display().to_string(),
                source,
            })?;
        let pid = child
            .id()
            .and_then(|id| Pid::from_raw(i32::try_from(id).ok()?));
        let worker = Running { child, group: pid };
        let pid = pid.ok_or_else(|| PoolError::Limit(std::io::ErrorKind::NotFound.into()))?;
        let limit = |resource, soft: u64, hard: u64| {
            rustix::process::prlimit(
                Some(pid),
                resource,
                Rlimit {
                    current: Some(soft),
                    maximum: Some(hard),
                },
            )
            .map_err(|e| PoolError::Limit(e.into()))
        };
        limit(Resource::As, s.memory_limit_bytes, s.memory_limit_bytes)?;
        // SIGXCPU at the soft limit, SIGKILL a second later at the hard one.
        limit(Resource::Cpu, s.cpu_seconds, s.cpu_seconds + 1)?;
        // A crashing worker writes no core file of a hostile attachment.
        limit(Resource::Core, 0, 0)?;
        Ok(worker)
    }

    async fn exchange(
        &self,
        worker: &mut Running,
        request: &Request,
        body: &[u8],
    ) -> Result<(Response, Vec<u8>), FrameError> {
        let mut stdin = worker
            .child
            .stdin
            .take()
            .ok_or_else(|| FrameError::Io(std::io::ErrorKind::BrokenPipe.into()))?;
        frame::write_async(&mut stdin, request, body).await?;
        drop(stdin);
        let stdout = worker
            .child
            .stdout
            .as_mut()
            .ok_or_else(|| FrameError::Io(std::io::ErrorKind::BrokenPipe.into()))?;
        frame::read_async(stdout, self.settings.max_answer_bytes).await
    }
}

impl Request {
    /// The job's name, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::FindPart { .. } => "find_part",
            Self::Describe { .. } => "describe",
            Self::Convert { .. } => "convert",
        }
    }
}

/// How a worker ended, in words an operator can act on.
fn describe(status: &ExitStatus) -> String {
    match status.signal() {
        Some(6) => {
            "aborted (SIGABRT: an allocation over its memory limit, or a stack overflow)".to_owned()
        }
        Some(9) => "was killed (SIGKILL: its CPU time limit)".to_owned(),
        Some(11) => "crashed (SIGSEGV: a stack overflow)".to_owned(),
        Some(24) => "was stopped at its CPU time limit (SIGXCPU)".to_owned(),
        Some(n) => format!("was killed by signal {n}"),
        None => format!("exited with {status}"),
    }
}
