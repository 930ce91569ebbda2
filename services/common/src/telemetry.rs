//! Logs, traces and metrics.
//!
//! A tracer provider is always installed, exporting over OTLP only when an
//! endpoint is configured: trace ids must exist (and travel in gRPC metadata
//! and Kafka headers) even where nobody collects the spans, so a mail can be
//! followed from ingest to the phone in logs alone.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use serde::{Deserialize, Serialize};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::ConfigError;

/// Log line format.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines, for terminals.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Telemetry settings shared by every service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// An `EnvFilter` directive, e.g. `info,pushmail_session=debug`. `RUST_LOG` wins when set.
    pub log_level: String,
    /// OTLP/gRPC collector endpoint, e.g. `http://otel-collector:4317`; empty: no export.
    pub otlp_endpoint: String,
    /// Fraction of new traces sampled (0.0–1.0); a sampled parent is always followed.
    pub sample_ratio: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Text,
            log_level: "info".to_owned(),
            otlp_endpoint: String::new(),
            sample_ratio: 1.0,
        }
    }
}

impl TelemetryConfig {
    /// Checks the filter syntax and the ratio.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        EnvFilter::try_new(&self.log_level)
            .map_err(|e| ConfigError::invalid(format!("{prefix}log_level"), e.to_string()))?;
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(ConfigError::invalid(
                format!("{prefix}sample_ratio"),
                "must be between 0.0 and 1.0",
            ));
        }
        let endpoint = &self.otlp_endpoint;
        let is_url = endpoint.starts_with("http://") || endpoint.starts_with("https://");
        if !endpoint.is_empty() && !is_url {
            return Err(ConfigError::invalid(
                format!("{prefix}otlp_endpoint"),
                "must be an http:// or https:// URL",
            ));
        }
        Ok(())
    }
}

/// Telemetry failed to start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built.
    #[error("cannot build the otlp exporter")]
    Exporter(#[source] opentelemetry_otlp::ExporterBuildError),
    /// The log filter (`RUST_LOG`, else `log_level`) does not parse.
    #[error("invalid log filter")]
    Filter(#[source] tracing_subscriber::filter::ParseError),
    /// A global subscriber was already installed.
    #[error("cannot install the tracing subscriber")]
    Subscriber(#[source] tracing_subscriber::util::TryInitError),
}

/// Flushes spans on drop; keep it alive for the life of the process.
#[must_use = "dropping the guard stops span export"]
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        // A collector that is down must not block exit: errors are ignored.
        let _ = self.provider.shutdown();
    }
}

/// Installs logging, tracing and the metrics recorder for this process.
pub fn init(service: &str, config: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = tracer_provider(service, config)?;
    let tracer = provider.tracer(service.to_owned());
    opentelemetry::global::set_tracer_provider(provider.clone());

    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log_level))
        .map_err(TelemetryError::Filter)?;
    let fmt_layer = match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer().with_target(true).boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .try_init()
        .map_err(TelemetryError::Subscriber)?;
    let _ = metrics_handle();
    Ok(TelemetryGuard { provider })
}

fn tracer_provider(
    service: &str,
    config: &TelemetryConfig,
) -> Result<SdkTracerProvider, TelemetryError> {
    let mut builder = SdkTracerProvider::builder()
        .with_resource(
            Resource::builder()
                .with_service_name(service.to_owned())
                .build(),
        )
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            config.sample_ratio,
        ))));
    if !config.otlp_endpoint.is_empty() {
        use opentelemetry_otlp::WithExportConfig;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(config.otlp_endpoint.clone())
            .build()
            .map_err(TelemetryError::Exporter)?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
}

/// The process-wide Prometheus recorder. The first call installs it; in a
/// process that already has another recorder (tests), a detached one is used.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        match builder.install_recorder() {
            Ok(handle) => handle,
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        }
    })
}

/// String headers that carry W3C trace context (`traceparent`, `tracestate`).
pub type TraceHeaders = BTreeMap<String, String>;

/// The current span's context as W3C headers.
pub fn current_trace_headers() -> TraceHeaders {
    let mut headers = TraceHeaders::new();
    let cx = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&cx, &mut MapInjector(&mut headers));
    headers
}

/// Makes `span` a child of the trace described by `headers`; a missing or
/// malformed traceparent leaves the span a root, never an error.
pub fn set_parent_from(span: &tracing::Span, headers: &TraceHeaders) {
    let cx = TraceContextPropagator::new().extract(&MapExtractor(headers));
    // Fails only when the span is disabled, in which case there is nothing to link.
    let _ = span.set_parent(cx);
}

/// The trace id of the current span, hex, or `None` when there is no trace.
pub fn current_trace_id() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    let cx = tracing::Span::current().context();
    let span_context = cx.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

struct MapInjector<'a>(&'a mut TraceHeaders);

impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct MapExtractor<'a>(&'a TraceHeaders);

impl Extractor for MapExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_ratio_is_validated() {
        let config = TelemetryConfig {
            sample_ratio: 1.5,
            ..TelemetryConfig::default()
        };
        let err = config.validate("telemetry.").unwrap_err();
        assert!(err.to_string().contains("telemetry.sample_ratio"), "{err}");
    }

    #[test]
    fn bad_filter_is_rejected() {
        let config = TelemetryConfig {
            log_level: "info,=[".to_owned(),
            ..TelemetryConfig::default()
        };
        assert!(config.validate("telemetry.").is_err());
    }
}
