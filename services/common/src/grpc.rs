//! gRPC plumbing shared by servers and clients: trace context in metadata,
//! lazily connected channels, upstream health checks.

use std::time::Duration;

use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::telemetry::{self, TraceHeaders};

/// A gRPC client channel that carries the caller's trace context.
pub type TracedChannel = InterceptedService<Channel, TraceInterceptor>;

/// Puts the current span's W3C trace context into request metadata, and
/// the upstream's bearer token when one is configured.
#[derive(Clone, Default)]
pub struct TraceInterceptor {
    authorization: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl std::fmt::Debug for TraceInterceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceInterceptor")
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl TraceInterceptor {
    /// Also sends `authorization: Bearer <token>` (none when `token` is empty).
    pub fn with_token(token: &str) -> Result<Self, tonic::metadata::errors::InvalidMetadataValue> {
        let authorization = if token.is_empty() {
            None
        } else {
            let mut value = MetadataValue::try_from(format!("Bearer {token}"))?;
            value.set_sensitive(true);
            Some(value)
        };
        Ok(Self { authorization })
    }
}

impl Interceptor for TraceInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        // A call made for a tenant carries the tenant's own key; the
        // service token must not replace it.
        if let Some(value) = &self.authorization
            && !request.metadata().contains_key("authorization")
        {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        for (key, value) in telemetry::current_trace_headers() {
            if let (Ok(key), Ok(value)) = (
                MetadataKey::from_bytes(key.as_bytes()),
                MetadataValue::try_from(value.as_str()),
            ) {
                request.metadata_mut().insert(key, value);
            }
        }
        Ok(request)
    }
}

/// A bad upstream address in config.
#[derive(Debug, thiserror::Error)]
#[error("invalid grpc endpoint {uri}: {reason}")]
pub struct EndpointError {
    uri: String,
    reason: String,
}

/// A channel to `uri` that connects on first use and reconnects by itself,
/// so a service starts even while an upstream is still coming up.
pub fn lazy_channel(
    uri: &str,
    request_timeout: Duration,
    interceptor: TraceInterceptor,
) -> Result<TracedChannel, EndpointError> {
    let endpoint = Endpoint::from_shared(uri.to_owned())
        .map_err(|e| EndpointError {
            uri: uri.to_owned(),
            reason: e.to_string(),
        })?
        .connect_timeout(Duration::from_secs(2))
        .timeout(request_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    Ok(InterceptedService::new(
        endpoint.connect_lazy(),
        interceptor,
    ))
}

/// Asks the upstream's standard health service whether it serves.
pub async fn check_upstream(channel: TracedChannel) -> Result<(), UpstreamError> {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|status| UpstreamError::Unanswered(Box::new(status)))?;
    match response.into_inner().status() {
        ServingStatus::Serving => Ok(()),
        other => Err(UpstreamError::NotServing(other.as_str_name())),
    }
}

/// An upstream gRPC service is not ready for us.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Its health service did not answer.
    #[error("health check unanswered")]
    Unanswered(#[source] Box<tonic::Status>),
    /// It answered that it does not serve.
    #[error("upstream reports {0}")]
    NotServing(&'static str),
}

/// The whole seconds a throttled upstream asks to wait (its
/// `retry-after` metadata), when it says.
pub fn retry_after(status: &tonic::Status) -> Option<u64> {
    status
        .metadata()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// A span for an incoming gRPC request, child of the caller's trace.
pub fn request_span(request: &http::Request<()>) -> tracing::Span {
    let span = tracing::info_span!(
        "grpc.request",
        otel.kind = "server",
        rpc.method = %request.uri().path(),
    );
    let mut headers = TraceHeaders::new();
    for name in ["traceparent", "tracestate"] {
        if let Some(value) = request.headers().get(name).and_then(|v| v.to_str().ok()) {
            headers.insert(name.to_owned(), value.to_owned());
        }
    }
    telemetry::set_parent_from(&span, &headers);
    span
}

/// Where an upstream gRPC service is.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    /// `http://host:port` (or `https://`).
    pub endpoint: String,
    /// Deadline of one call.
    pub timeout_ms: u64,
    /// This service's own credential (`pushmail keys`:
    /// `PUSHMAIL_<SERVICE>_CREDENTIAL`), sent on every call; empty sends
    /// none. The upstream allows each service only the methods it needs.
    pub token: crate::redact::Secret,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            endpoint: "http://127.0.0.1:7101".to_owned(),
            timeout_ms: 5_000,
            token: crate::redact::Secret::default(),
        }
    }
}

impl UpstreamConfig {
    /// An upstream at `endpoint` with the default deadline.
    pub fn at(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            ..Self::default()
        }
    }

    /// Checks the endpoint is a URL tonic accepts.
    pub fn validate(&self, prefix: &str) -> Result<(), crate::config::ConfigError> {
        Endpoint::from_shared(self.endpoint.clone())
            .map(|_| ())
            .map_err(|e| {
                crate::config::ConfigError::invalid(format!("{prefix}endpoint"), e.to_string())
            })?;
        if self.timeout_ms == 0 {
            return Err(crate::config::ConfigError::invalid(
                format!("{prefix}timeout_ms"),
                "must be positive",
            ));
        }
        Ok(())
    }

    /// A lazily connected channel to the upstream.
    pub fn channel(&self) -> Result<TracedChannel, EndpointError> {
        let interceptor =
            TraceInterceptor::with_token(self.token.expose()).map_err(|_| EndpointError {
                uri: self.endpoint.clone(),
                reason: "the token is not valid metadata".to_owned(),
            })?;
        lazy_channel(
            &self.endpoint,
            Duration::from_millis(self.timeout_ms),
            interceptor,
        )
    }
}

/// A gRPC service of this process that another service of the same
/// process (standalone mode) calls directly, without HTTP/2 over loopback:
/// the serving side fills the slot once it is built, the calling side
/// uses it when it is there and the network otherwise.
pub struct InProcess<S: ?Sized>(std::sync::Arc<std::sync::OnceLock<std::sync::Arc<S>>>);

impl<S: ?Sized> InProcess<S> {
    /// An empty slot.
    pub fn new() -> Self {
        Self(std::sync::Arc::default())
    }

    /// Fills the slot (later calls keep the first service).
    pub fn set(&self, service: std::sync::Arc<S>) {
        let _ = self.0.set(service);
    }

    /// The service, once the serving side has set it.
    pub fn get(&self) -> Option<&std::sync::Arc<S>> {
        self.0.get()
    }
}

impl<S: ?Sized> Clone for InProcess<S> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<S: ?Sized> Default for InProcess<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: ?Sized> std::fmt::Debug for InProcess<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcess")
            .field("set", &self.0.get().is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_token_fills_in_but_never_replaces_a_callers_key() {
        let mut interceptor = TraceInterceptor::with_token("service").unwrap();
        let plain = interceptor.call(tonic::Request::new(())).unwrap();
        assert_eq!(
            plain.metadata().get("authorization").unwrap(),
            "Bearer service"
        );
        let mut tenant = tonic::Request::new(());
        tenant
            .metadata_mut()
            .insert("authorization", "Bearer tenant-key".parse().unwrap());
        let tenant = interceptor.call(tenant).unwrap();
        assert_eq!(
            tenant.metadata().get("authorization").unwrap(),
            "Bearer tenant-key"
        );
    }
}
