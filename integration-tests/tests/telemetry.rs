//! W3C trace context travels in Kafka headers and gRPC metadata: a span
//! started on the far side of either belongs to the same trace.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use pushmail_common::bus::{EventContext, InboundRecord, encode, header};
use pushmail_common::grpc::{TraceInterceptor, request_span};
use pushmail_common::telemetry::{self, TelemetryConfig, current_trace_id, set_parent_from};
use pushmail_proto::events::v1::MailArrived;
use pushmail_proto::topics::MAIL_ARRIVED;
use tonic::service::Interceptor as _;

fn trace_id_of(traceparent: &str) -> &str {
    traceparent
        .split('-')
        .nth(1)
        .expect("traceparent has a trace id")
}

#[test]
fn trace_context_crosses_the_bus_and_grpc() {
    let _guard = telemetry::init("telemetry-test", &TelemetryConfig::default()).unwrap();

    let producer = tracing::info_span!("ingest.publish");
    let (record, producer_trace) = producer.in_scope(|| {
        let record = encode(
            MAIL_ARRIVED,
            "acct",
            &EventContext::new("t1"),
            &MailArrived::default(),
        );
        (
            record,
            current_trace_id().expect("a trace exists without an exporter"),
        )
    });
    let traceparent = &record.headers[header::TRACEPARENT];
    assert_eq!(trace_id_of(traceparent), producer_trace);

    // Consumer side: the handler span is a child of the producer's trace.
    let inbound = InboundRecord {
        topic: MAIL_ARRIVED.name().to_owned(),
        partition: 0,
        offset: 0,
        key: record.key.clone(),
        payload: record.payload.clone(),
        headers: record.headers.clone(),
        timestamp_ms: None,
    };
    let consumer = tracing::info_span!("dispatch.consume");
    set_parent_from(&consumer, &inbound.headers);
    assert_eq!(consumer.in_scope(current_trace_id).unwrap(), producer_trace);

    // gRPC client: the interceptor writes the caller's context into metadata.
    let request = consumer.in_scope(|| {
        TraceInterceptor::default()
            .call(tonic::Request::new(()))
            .unwrap()
    });
    let sent = request
        .metadata()
        .get("traceparent")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(trace_id_of(&sent), producer_trace);

    // gRPC server: the request span continues the caller's trace.
    let http_request = http::Request::builder()
        .uri("/pushmail.session.v1.SessionService/Deliver")
        .header("traceparent", sent)
        .body(())
        .unwrap();
    let server = request_span(&http_request);
    assert_eq!(server.in_scope(current_trace_id).unwrap(), producer_trace);

    // A garbage traceparent starts a fresh trace instead of failing.
    let bad = http::Request::builder()
        .header("traceparent", "00-zz-yy-01")
        .body(())
        .unwrap();
    let fresh = request_span(&bad);
    assert_ne!(fresh.in_scope(current_trace_id).unwrap(), producer_trace);
}
