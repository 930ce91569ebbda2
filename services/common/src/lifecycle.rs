//! Process lifecycle: stop signals and the bounded grace period.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Why a service stopped other than cleanly.
#[derive(Debug, thiserror::Error)]
pub enum StopError<E> {
    /// The service itself failed.
    #[error(transparent)]
    Service(E),
    /// The service did not finish within the grace period after the signal.
    #[error("did not stop within the {0:?} grace period")]
    GraceExceeded(Duration),
    /// A second signal asked for an immediate exit.
    #[error("forced to stop by a second signal")]
    Forced,
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("sigterm received"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("sigint received"),
                }
            }
            Err(err) => {
                tracing::warn!(error = %crate::report::Report(&err), "cannot listen for sigterm; ctrl-c only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs `service` until it returns or `stop` resolves. After `stop`,
/// `shutdown` is cancelled and the service gets `grace` to finish; a second
/// `stop` ends the wait at once.
pub async fn run_until<E, S, F>(
    service: S,
    shutdown: CancellationToken,
    grace: Duration,
    mut stop: impl FnMut() -> F,
) -> Result<(), StopError<E>>
where
    S: Future<Output = Result<(), E>>,
    F: Future<Output = ()>,
{
    tokio::pin!(service);
    tokio::select! {
        result = &mut service => return result.map_err(StopError::Service),
        () = stop() => {}
    }
    tracing::info!(grace_seconds = grace.as_secs(), "stopping");
    shutdown.cancel();
    tokio::select! {
        result = tokio::time::timeout(grace, &mut service) => match result {
            Ok(result) => result.map_err(StopError::Service),
            Err(_) => Err(StopError::GraceExceeded(grace)),
        },
        () = stop() => Err(StopError::Forced),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stop signal that arrives once and never again.
    fn signal_once() -> impl FnMut() -> std::pin::Pin<Box<dyn Future<Output = ()>>> {
        let mut calls = 0;
        move || {
            calls += 1;
            if calls == 1 {
                Box::pin(async {})
            } else {
                Box::pin(std::future::pending())
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn second_signal_forces_the_stop() {
        let token = CancellationToken::new();
        let service = std::future::pending::<Result<(), std::io::Error>>();
        let result = run_until(service, token, Duration::from_secs(5), || async {}).await;
        assert!(matches!(result, Err(StopError::Forced)), "{result:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn service_that_honours_shutdown_stops_cleanly() {
        let token = CancellationToken::new();
        let inner = token.clone();
        let service = async move {
            inner.cancelled().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<(), std::io::Error>(())
        };
        let result = run_until(service, token, Duration::from_secs(5), signal_once()).await;
        assert!(result.is_ok(), "{result:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn service_that_hangs_is_cut_at_the_grace_period() {
        let token = CancellationToken::new();
        let service = std::future::pending::<Result<(), std::io::Error>>();
        let result = run_until(
            service,
            token.clone(),
            Duration::from_secs(5),
            signal_once(),
        )
        .await;
        assert!(matches!(result, Err(StopError::GraceExceeded(_))));
        assert!(token.is_cancelled());
    }
}
