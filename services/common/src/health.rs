//! Liveness, readiness and metrics over HTTP; health over gRPC.
//!
//! `/healthz` answers 200 while the process serves requests at all.
//! `/readyz` answers 200 only after start-up finished, while every
//! dependency check passes and before draining began, so Kubernetes stops
//! routing to a pod that is stopping or cut off from PostgreSQL/Redis/Kafka.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;
use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::blob::BlobStore;
#[cfg(feature = "bus")]
use crate::bus::EventBus;
use crate::grpc::{self, TracedChannel};
use crate::telemetry;

/// Why a dependency check failed: the dependency's own error, kept whole
/// so the report shows its causes.
pub type CheckError = Box<dyn std::error::Error + Send + Sync>;

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), CheckError>> + Send>>;
type CheckFn = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// How long one dependency check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// A service's readiness: start-up state, draining, dependency checks.
#[derive(Clone)]
pub struct Readiness {
    inner: Arc<Inner>,
}

struct Inner {
    service: String,
    draining: AtomicBool,
    started: watch::Sender<bool>,
    checks: Mutex<Vec<(String, CheckFn)>>,
    grpc: Mutex<Option<HealthReporter>>,
}

/// The outcome of one readiness probe.
#[derive(Debug, Serialize)]
pub struct ReadinessReport {
    /// Whether the service should receive traffic.
    pub ready: bool,
    /// Service name.
    pub service: String,
    /// `starting`, `serving` or `draining`.
    pub state: &'static str,
    /// Each dependency check.
    pub checks: Vec<CheckResult>,
}

/// One dependency check's result.
#[derive(Debug, Serialize)]
pub struct CheckResult {
    /// What was checked, e.g. `postgres`.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Readiness {
    /// A service that has not started yet.
    pub fn new(service: &str) -> Self {
        let (started, _) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                service: service.to_owned(),
                draining: AtomicBool::new(false),
                started,
                checks: Mutex::new(Vec::new()),
                grpc: Mutex::new(None),
            }),
        }
    }

    /// Registers a dependency that must be reachable for the service to be ready.
    pub fn add_check<F, Fut, E>(&self, name: &str, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<CheckError>,
    {
        let check: CheckFn = Arc::new(move || {
            let checked = check();
            Box::pin(async move { checked.await.map_err(Into::into) })
        });
        self.lock_checks().push((name.to_owned(), check));
    }

    /// The event bus must answer.
    #[cfg(feature = "bus")]
    pub fn add_bus_check(&self, bus: Arc<dyn EventBus>) {
        self.add_check("bus", move || {
            let bus = bus.clone();
            async move { bus.check().await }
        });
    }

    /// Redis must answer `PING`.
    pub fn add_redis_check(&self, redis: redis::aio::ConnectionManager) {
        self.add_check("redis", move || crate::redis::ping(redis.clone()));
    }

    /// The upstream gRPC service `name` must report serving.
    pub fn add_upstream_check(&self, name: &str, channel: TracedChannel) {
        self.add_check(name, move || grpc::check_upstream(channel.clone()));
    }

    /// The blob store must be writable.
    pub fn add_blob_check(&self, blobs: Arc<dyn BlobStore>) {
        self.add_check("blob_store", move || {
            let blobs = blobs.clone();
            async move { blobs.check().await }
        });
    }

    /// Reports gRPC health through `reporter` as well.
    pub fn attach_grpc(&self, reporter: HealthReporter) {
        *self
            .inner
            .grpc
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(reporter);
    }

    /// Start-up finished: listeners bound, dependencies connected.
    pub async fn mark_started(&self) {
        self.inner.started.send_replace(true);
        self.set_grpc(ServingStatus::Serving).await;
        tracing::info!(service = %self.inner.service, "ready");
    }

    /// Stopping: report not ready so traffic moves elsewhere.
    pub async fn mark_draining(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
        self.set_grpc(ServingStatus::NotServing).await;
    }

    /// Waits until [`Readiness::mark_started`] was called.
    pub async fn wait_started(&self) {
        let mut rx = self.inner.started.subscribe();
        // An error means the sender is gone, which cannot happen while self lives.
        let _ = rx.wait_for(|started| *started).await;
    }

    /// Runs every check (concurrently, each bounded) and reports.
    pub async fn report(&self) -> ReadinessReport {
        let checks: Vec<(String, CheckFn)> = self.lock_checks().clone();
        let results =
            futures::future::join_all(checks.into_iter().map(|(name, check)| async move {
                let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check()).await {
                    Ok(outcome) => outcome,
                    Err(elapsed) => Err(elapsed.into()),
                };
                CheckResult {
                    name,
                    ok: outcome.is_ok(),
                    error: outcome
                        .err()
                        .map(|err| crate::report::Report(err.as_ref()).to_string()),
                }
            }))
            .await;
        let started = *self.inner.started.borrow();
        let draining = self.inner.draining.load(Ordering::SeqCst);
        let state = match (started, draining) {
            (_, true) => "draining",
            (true, false) => "serving",
            (false, false) => "starting",
        };
        ReadinessReport {
            ready: state == "serving" && results.iter().all(|r| r.ok),
            service: self.inner.service.clone(),
            state,
            checks: results,
        }
    }

    fn lock_checks(&self) -> std::sync::MutexGuard<'_, Vec<(String, CheckFn)>> {
        self.inner
            .checks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn set_grpc(&self, status: ServingStatus) {
        let reporter = self
            .inner
            .grpc
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(reporter) = reporter {
            reporter.set_service_status("", status).await;
        }
    }
}

/// The admin router: `/healthz`, `/readyz`, `/metrics`.
pub fn admin_router(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(readiness)
}

async fn readyz(State(readiness): State<Readiness>) -> impl IntoResponse {
    let report = readiness.report().await;
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report))
}

async fn metrics() -> impl IntoResponse {
    let handle = telemetry::metrics_handle();
    handle.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn not_ready_until_started_and_while_a_check_fails() {
        let readiness = Readiness::new("t");
        let healthy = Arc::new(AtomicBool::new(true));
        let flag = healthy.clone();
        readiness.add_check("dep", move || {
            let ok = flag.load(Ordering::SeqCst);
            async move {
                if ok {
                    Ok(())
                } else {
                    Err(std::io::Error::other("down"))
                }
            }
        });
        assert!(!readiness.report().await.ready, "not started");
        readiness.mark_started().await;
        assert!(readiness.report().await.ready);
        healthy.store(false, Ordering::SeqCst);
        let report = readiness.report().await;
        assert!(!report.ready);
        assert_eq!(report.checks[0].error.as_deref(), Some("down"));
        healthy.store(true, Ordering::SeqCst);
        readiness.mark_draining().await;
        assert_eq!(readiness.report().await.state, "draining");
        assert!(!readiness.report().await.ready);
    }
}
