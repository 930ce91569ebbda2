//! Hosting a service: its listeners, its background tasks, readiness and
//! an orderly stop, the same for every binary and for standalone.

use std::future::Future;
use std::io;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::Server;

use crate::grpc;
use crate::health::{self, Readiness};
use crate::listen::{self, GrpcLimits, HttpLimits};

/// Any error a service task may end with.
pub type TaskError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A task of the host failed.
#[derive(Debug, thiserror::Error)]
#[error("task {task} failed")]
pub struct HostError {
    /// Which task: `grpc`, `admin`, or a service task's name.
    pub task: String,
    /// Why.
    #[source]
    pub source: TaskError,
}

impl HostError {
    fn of(task: impl Into<String>, source: impl Into<TaskError>) -> Self {
        Self {
            task: task.into(),
            source: source.into(),
        }
    }
}

/// Collects a service's servers and tasks and runs them to a clean stop.
pub struct Host {
    readiness: Readiness,
    shutdown: CancellationToken,
    tasks: JoinSet<Result<(), HostError>>,
}

impl Host {
    /// A host for `readiness`'s service, stopping when `shutdown` is cancelled.
    pub fn new(readiness: Readiness, shutdown: CancellationToken) -> Self {
        Self {
            readiness,
            shutdown,
            tasks: JoinSet::new(),
        }
    }

    /// The service's readiness, to register dependency checks on.
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// The stop token every task should watch.
    pub fn shutdown(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves `/healthz`, `/readyz`, `/metrics` (plus `extra` routes) on `listener`.
    pub fn serve_admin(&mut self, listener: TcpListener, extra: axum::Router) {
        let router = health::admin_router(self.readiness.clone()).merge(extra);
        self.serve_http("admin", listener, router);
    }

    /// Serves an HTTP router until shutdown, finishing open requests, with
    /// the default [`HttpLimits`].
    pub fn serve_http(&mut self, name: &str, listener: TcpListener, router: axum::Router) {
        self.serve_http_with(name, listener, router, HttpLimits::default());
    }

    /// Serves an HTTP router until shutdown within `limits`: connection
    /// caps, head deadline, idle timeout, body limit before any route.
    pub fn serve_http_with(
        &mut self,
        name: &str,
        listener: TcpListener,
        router: axum::Router,
        limits: HttpLimits,
    ) {
        let shutdown = self.shutdown.clone();
        let name = name.to_owned();
        self.tasks.spawn(async move {
            let bounded = listen::http::BoundedTcp::new(&name, listener, &limits);
            listen::http::serve(bounded, router, &limits, shutdown)
                .await
                .map_err(|e| HostError::of(name, e))
        });
    }

    /// Serves `routes` plus gRPC health and reflection on `listener`, with
    /// the default [`GrpcLimits`].
    pub fn serve_grpc(&mut self, listener: TcpListener, routes: Routes) -> Result<(), HostError> {
        self.serve_grpc_with(listener, routes, GrpcLimits::default())
    }

    /// Serves `routes` plus gRPC health and reflection on `listener` within
    /// `limits`: connection caps, a request deadline, a server-wide
    /// concurrency limit, streams per connection, keep-alive pings.
    pub fn serve_grpc_with(
        &mut self,
        listener: TcpListener,
        routes: Routes,
        limits: GrpcLimits,
    ) -> Result<(), HostError> {
        let (reporter, health_service) = tonic_health::server::health_reporter();
        self.readiness.attach_grpc(reporter);
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pushmail_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| HostError::of("grpc".to_owned(), e))?;
        let routes = routes.add_service(health_service).add_service(reflection);
        let shutdown = self.shutdown.clone();
        self.tasks.spawn(async move {
            Server::builder()
                .trace_fn(grpc::request_span)
                .timeout(limits.request_timeout())
                .max_concurrent_streams(Some(limits.max_concurrent_streams))
                .http2_keepalive_interval(Some(limits.keepalive()))
                .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)))
                .layer(listen::grpc::concurrency_layer(&limits))
                .add_routes(routes)
                .serve_with_incoming_shutdown(
                    listen::grpc::incoming("grpc", listener, &limits),
                    shutdown.cancelled_owned(),
                )
                .await
                .map_err(|e| HostError::of("grpc".to_owned(), e))
        });
        Ok(())
    }

    /// Runs a service task; it must return soon after shutdown is cancelled.
    pub fn spawn<F, E>(&mut self, name: &str, task: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<TaskError>,
    {
        let name = name.to_owned();
        self.tasks
            .spawn(async move { task.await.map_err(|e| HostError::of(name, e)) });
    }

    /// Runs a service task that cannot fail (a sweep, a pruner); it must
    /// return soon after shutdown is cancelled.
    pub fn spawn_infallible<F>(&mut self, name: &str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.spawn(name, async move {
            task.await;
            Ok::<(), std::convert::Infallible>(())
        });
    }

    /// Reports ready, then waits for shutdown or the first failing task;
    /// then reports draining and waits for every task to finish.
    pub async fn run(mut self) -> Result<(), HostError> {
        self.readiness.mark_started().await;
        let mut first_error = None;
        tokio::select! {
            () = self.shutdown.cancelled() => {}
            Some(joined) = self.tasks.join_next() => {
                first_error = flatten(joined).err();
                if first_error.is_none() && !self.shutdown.is_cancelled() {
                    tracing::warn!("a service task ended before shutdown");
                }
            }
        }
        self.readiness.mark_draining().await;
        self.shutdown.cancel();
        while let Some(joined) = self.tasks.join_next().await {
            if let Err(err) = flatten(joined) {
                tracing::error!(error = %crate::report::Report(&err), "task failed while stopping");
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

fn flatten(joined: Result<Result<(), HostError>, tokio::task::JoinError>) -> Result<(), HostError> {
    joined.unwrap_or_else(|e| Err(HostError::of("task", e)))
}

/// Binds `addr`, naming it in the error.
pub async fn bind(what: &str, addr: std::net::SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen for {what} on {addr}: {e}")))
}

/// The listeners of a service that serves gRPC: gRPC and admin HTTP.
pub struct GrpcListeners {
    /// gRPC.
    pub grpc: TcpListener,
    /// Admin HTTP.
    pub admin: TcpListener,
}

impl GrpcListeners {
    /// Binds the configured addresses.
    pub async fn bind(server: &crate::config::ServerConfig) -> io::Result<Self> {
        Ok(Self {
            grpc: bind("grpc", server.grpc_addr).await?,
            admin: bind("admin", server.admin_addr).await?,
        })
    }

    /// Free loopback ports, for tests.
    pub async fn ephemeral() -> io::Result<Self> {
        Ok(Self {
            grpc: loopback().await?,
            admin: loopback().await?,
        })
    }
}

/// The listener of a service with no gRPC server: admin HTTP only.
pub struct AdminListener {
    /// Admin HTTP.
    pub admin: TcpListener,
}

impl AdminListener {
    /// Binds the configured address.
    pub async fn bind(server: &crate::config::AdminServerConfig) -> io::Result<Self> {
        Ok(Self {
            admin: bind("admin", server.admin_addr).await?,
        })
    }

    /// A free loopback port, for tests.
    pub async fn ephemeral() -> io::Result<Self> {
        Ok(Self {
            admin: loopback().await?,
        })
    }
}

async fn loopback() -> io::Result<TcpListener> {
    TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await
}
