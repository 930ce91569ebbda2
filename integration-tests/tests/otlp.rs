//! With `telemetry.otlp_endpoint` set, spans reach an OTLP/gRPC collector
//! (a real tonic server speaking the OTLP trace service), named after the
//! service.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use pushmail_common::telemetry::{self, TelemetryConfig};
use pushmail_integration_tests::collector::OtlpCollector;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_when_an_endpoint_is_configured() {
    let (collector, addr) = OtlpCollector::start().await.unwrap();
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

    let spans = collector.spans();
    for name in ["ingest.accept", "ingest.publish"] {
        assert!(
            spans
                .iter()
                .any(|s| s.service == "pushmail-otlp-test" && s.name == name),
            "{name} not exported: {spans:?}"
        );
    }
}
