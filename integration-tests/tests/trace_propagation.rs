//! One trace across real hops: a gRPC call to a running service (its
//! request span, exported to an OTLP collector, carries the caller's trace
//! id) and a record through the real Kafka broker (the consumer's handler
//! runs in the producer's trace).

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use pushmail_common::backoff::Backoff;
use pushmail_common::bus::{
    EventContext, Handler, HandlerError, InboundRecord, SubscribeOptions, consume, encode,
};
use pushmail_common::grpc::{UpstreamConfig, check_upstream};
use pushmail_common::health::Readiness;
use pushmail_common::host::GrpcListeners;
use pushmail_common::telemetry::{self, TelemetryConfig, current_trace_id};
use pushmail_integration_tests::collector::OtlpCollector;
use pushmail_integration_tests::{kafka_bus, unique};
use pushmail_proto::events::v1::MailArrived;
use pushmail_proto::topics::MAIL_ARRIVED;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// Remembers the trace id the handler ran in.
#[derive(Default)]
struct TraceOfHandler {
    trace_id: Mutex<Option<String>>,
    done: Notify,
}

#[async_trait]
impl Handler for TraceOfHandler {
    async fn handle(&self, _record: &InboundRecord) -> Result<(), HandlerError> {
        *self.trace_id.lock().unwrap() = current_trace_id();
        self.done.notify_one();
        Ok(())
    }
}

async fn grpc_call_continues_the_trace(shutdown: &CancellationToken) -> String {
    let blobs = tempfile::tempdir().unwrap();
    let config = pushmail_integration_tests::edge::transcode_config(blobs.path());
    let listeners = GrpcListeners::ephemeral().await.unwrap();
    let grpc = listeners.grpc.local_addr().unwrap();
    let readiness = Readiness::new(pushmail_transcode::NAME);
    tokio::spawn(pushmail_transcode::run(
        config.clone(),
        pushmail_transcode::Deps::connect(&config),
        listeners,
        readiness.clone(),
        shutdown.clone(),
    ));
    readiness.wait_started().await;

    let channel = UpstreamConfig::at(format!("http://{grpc}"))
        .channel()
        .unwrap();
    let span = tracing::info_span!("dispatch.call");
    let trace_id = span.in_scope(current_trace_id).unwrap();
    check_upstream(channel)
        .instrument(span)
        .await
        .expect("service answers");
    trace_id
}

async fn bus_record_continues_the_trace() {
    let bus = kafka_bus().await.expect("test broker");
    let topic = unique("pushmail.test.trace");
    bus.ensure_topic(&topic, 1).await.unwrap();
    let span = tracing::info_span!("ingest.publish");
    let (record, producer_trace) = span.in_scope(|| {
        let record = encode(
            MAIL_ARRIVED,
            "acct",
            &EventContext::new("t1"),
            &MailArrived::default(),
        );
        (record, current_trace_id().unwrap())
    });
    bus.publish(&topic, record).await.unwrap();

    let handler = std::sync::Arc::new(TraceOfHandler::default());
    let shutdown = CancellationToken::new();
    let subscription = bus
        .subscribe(SubscribeOptions {
            group: unique("group"),
            topics: vec![topic],
        })
        .await
        .unwrap();
    let consumer = {
        let handler = handler.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            consume(subscription, handler.as_ref(), Backoff::default(), shutdown).await
        })
    };
    tokio::time::timeout(Duration::from_secs(60), handler.done.notified())
        .await
        .expect("record consumed");
    shutdown.cancel();
    consumer.await.unwrap().unwrap();
    assert_eq!(
        handler.trace_id.lock().unwrap().as_deref(),
        Some(producer_trace.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_crosses_grpc_and_the_broker() {
    let (collector, addr) = OtlpCollector::start().await.unwrap();
    let config = TelemetryConfig {
        otlp_endpoint: format!("http://{addr}"),
        ..TelemetryConfig::default()
    };
    let guard = telemetry::init("pushmail-trace-test", &config).unwrap();
    let shutdown = CancellationToken::new();

    let caller_trace = grpc_call_continues_the_trace(&shutdown).await;
    bus_record_continues_the_trace().await;

    shutdown.cancel();
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();
    let spans = collector.spans();
    assert!(
        spans
            .iter()
            .any(|s| s.name == "grpc.request" && s.trace_id == caller_trace),
        "the server's request span is in the caller's trace {caller_trace}: {spans:?}"
    );
}
