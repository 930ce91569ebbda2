//! The gateway: the HTTP edge for devices (fetching what a notification
//! points at, [6/9]) and, with [7/9], the tenant admin portal and REST API.

pub mod api;
pub mod config;
pub mod error;
mod fetch;
mod mailbox;
mod portal;
mod reply;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use pushmail_common::config::ConfigError;
use pushmail_common::grpc::TracedChannel;
use pushmail_common::health::Readiness;
use pushmail_common::host::{self, Host};
use pushmail_device_token::TokenVerifier;
use pushmail_proto::binding::v1::admin_service_client::AdminServiceClient;
use pushmail_proto::binding::v1::binding_service_client::BindingServiceClient;
use pushmail_proto::session::v1::session_service_client::SessionServiceClient;
use pushmail_proto::transcode::v1::transcode_service_client::TranscodeServiceClient;
use pushmail_traffic::Traffic;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::Error;

/// Service name, for telemetry and health.
pub const NAME: &str = "gateway";

/// How often idle entries leave the API's rate tables: memory then follows
/// the credentials in use rather than every one ever presented.
const RATE_HOUSEKEEPING: Duration = Duration::from_secs(60);

/// What the service needs from outside.
pub struct Deps {
    /// The binding service.
    pub binding: TracedChannel,
    /// The transcode service.
    pub transcode: TracedChannel,
    /// The session service.
    pub session: TracedChannel,
    /// The mailbox service (the device mailbox API).
    pub mailbox: TracedChannel,
}

impl Deps {
    /// Opens the channels (they connect lazily).
    pub fn connect(config: &Config) -> Result<Self, Error> {
        Ok(Self {
            binding: config.binding.channel()?,
            transcode: config.transcode.channel()?,
            session: config.session.channel()?,
            mailbox: config.mailbox.channel()?,
        })
    }
}

/// Bound listeners (port 0 in tests).
pub struct Listeners {
    /// Public HTTP.
    pub http: TcpListener,
    /// Admin HTTP.
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds the configured addresses.
    pub async fn bind(config: &Config) -> Result<Self, Error> {
        Ok(Self {
            http: host::bind("http", config.server.http_addr).await?,
            admin: host::bind("admin", config.server.admin_addr).await?,
        })
    }
}

/// Production entry point.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let deps = Deps::connect(&config)?;
    let listeners = Listeners::bind(&config).await?;
    run(config, deps, listeners, Readiness::new(NAME), shutdown).await
}

/// Serves until `shutdown`.
pub async fn run(
    config: Config,
    deps: Deps,
    listeners: Listeners,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    if config.tokens.public_key.is_empty() {
        return Err(ConfigError::invalid(
            "tokens.public_key",
            "is required: the binding service's device-token public key (it logs it at start)",
        )
        .into());
    }
    let verifier = TokenVerifier::from_public_key_hex(&config.tokens.public_key)
        .map_err(|_| ConfigError::invalid("tokens.public_key", "must be 64 hex digits"))?;
    let mut host = Host::new(readiness, shutdown);
    host.readiness()
        .add_upstream_check("binding", deps.binding.clone());
    host.readiness()
        .add_upstream_check("transcode", deps.transcode.clone());
    let sessions = api::session::Sessions::new(
        config.portal.session_key.expose(),
        config.portal.session_ttl_minutes,
        config.portal.secure_cookie,
    )
    .map_err(|e| ConfigError::invalid("portal.session_key", e))?;
    let admin_api = Arc::new(api::Api {
        admin: AdminServiceClient::new(deps.binding.clone()),
        session: SessionServiceClient::new(deps.session),
        sessions,
        limiter: api::limit::Limiter::new(api::limit::Limits {
            per_minute: config.api.requests_per_minute,
            burst: config.api.burst,
            max_credentials: config.api.max_tracked_credentials,
            new_per_minute_per_peer: config.api.new_credentials_per_minute_per_peer,
            new_burst_per_peer: config.api.new_credentials_burst_per_peer,
        }),
    });
    let binding = BindingServiceClient::new(deps.binding);
    let traffic = Arc::new(Traffic::default());
    let gate = Arc::new(fetch::Gate::new(
        verifier,
        binding.clone(),
        Duration::from_millis(config.fetch.targets_cache_ms),
    ));
    let fetch = Arc::new(fetch::Fetch::new(
        gate.clone(),
        TranscodeServiceClient::new(deps.transcode),
        traffic.clone(),
    ));
    // Not a readiness check: a mailbox service that is down fails the
    // mailbox routes only, never the push path's fetches.
    let mailboxes = Arc::new(mailbox::Mailboxes::new(gate, deps.mailbox, traffic.clone()));
    let every = Duration::from_millis(config.fetch.traffic_flush_ms);
    let shutdown = host.shutdown();
    host.spawn_infallible("traffic", async move {
        traffic.flush_every(&binding, every, shutdown).await
    });
    let limits = admin_api.clone();
    let shutdown = host.shutdown();
    host.spawn_infallible("api-rates", async move {
        limits
            .limiter
            .forget_idle_every(RATE_HOUSEKEEPING, shutdown)
            .await;
    });
    host.serve_http_with(
        "http",
        listeners.http,
        public_router(
            fetch,
            mailbox::router(mailboxes, config.listeners.http.max_body_bytes),
            admin_api,
        ),
        config.listeners.http,
    );
    host.serve_admin(listeners.admin, axum::Router::new());
    Ok(host.run().await?)
}

fn public_router(
    fetch: Arc<fetch::Fetch>,
    mailboxes: axum::Router,
    admin: Arc<api::Api>,
) -> axum::Router {
    use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    fetch::router(fetch)
        .merge(mailboxes)
        .merge(api::router(admin))
        .merge(portal::router())
        .fallback(not_found)
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(
                    |response: &axum::http::Response<_>,
                     latency: std::time::Duration,
                     _: &tracing::Span| {
                        tracing::info!(
                            status = response.status().as_u16(),
                            latency_ms = latency.as_millis() as u64,
                            "answered"
                        );
                    },
                ),
        )
        // Outermost: every answer, errors included, carries the id (the
        // caller's own, or a new one), and the trace span records it.
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// The span of one HTTP request: method, path and request id. Never the
/// query string (a device may pass its token there) nor any header but
/// the id: no credential reaches a log.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "http.request",
        otel.kind = "server",
        http.method = %request.method(),
        url.path = %request.uri().path(),
        request_id = %id,
    )
}

/// Every unknown route answers with the machine-readable error body.
async fn not_found() -> axum::response::Response {
    pushmail_common::http_error::error(StatusCode::NOT_FOUND, "not_found", "no such route")
}
