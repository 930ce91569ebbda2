//! With `telemetry.otlp_endpoint` set, spans reach an OTLP/gRPC collector
//! (a real tonic server speaking the OTLP trace service), named after the
//! service.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use pushmail_common::telemetry::{self, TelemetryConfig};

/// (service.name, span name) pairs received.
#[derive(Default, Clone)]
struct Collector {
    spans: Arc<Mutex<Vec<(String, String)>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref()?.value.clone())
                .map(|v| match v {
                    Value::StringValue(s) => s,
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    self.spans
                        .lock()
                        .unwrap()
                        .push((service.clone(), span.name));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_when_an_endpoint_is_configured() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(collector.clone()))
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
    tokio::spawn(server);

    let config = TelemetryConfig {
        otlp_endpoint: format!("http://{addr}"),
        ..TelemetryConfig::default()
    };
    let guard = telemetry::init("pushmail-otlp-test", &config).unwrap();
    {
        let outer = tracing::info_span!("ingest.accept");
        let _entered = outer.enter();
        tracing::info_span!("ingest.publish").in_scope(|| tracing::info!("published"));
    }
    // Dropping the guard flushes the batch; it blocks, so off the runtime's workers.
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();

    let spans = collector.spans.lock().unwrap().clone();
    for name in ["ingest.accept", "ingest.publish"] {
        assert!(
            spans.contains(&("pushmail-otlp-test".to_owned(), name.to_owned())),
            "{name} not exported: {spans:?}"
        );
    }
}
