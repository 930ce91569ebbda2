//! The consume loop: receive, handle (retrying), then commit.

use crate::backoff::Backoff;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{BusError, InboundRecord, Subscription};
use crate::telemetry;

/// Records handled and committed, by topic.
pub const METRIC_CONSUMED: &str = "pushmail_bus_consumed_total";
/// Handler failures (each retried), by topic.
pub const METRIC_HANDLER_ERRORS: &str = "pushmail_bus_handler_errors_total";

/// Work a handled record leaves running (publishes waiting for the
/// broker's acks); it does its own retries and cannot fail.
pub type Tail = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Handles one record; the record is committed only when this returns `Ok`.
#[async_trait]
pub trait Handler: Send + Sync {
    /// Processes `record`. An error is retried with backoff: a handler that
    /// wants to give up on a record (a poison message) must record that
    /// itself, e.g. on a dead-letter topic, and return `Ok`.
    async fn handle(&self, record: &InboundRecord) -> Result<(), HandlerError>;

    /// Like [`Handler::handle`], but may return a [`Tail`]: the record is
    /// committed once the tail is done, while the next record of its key
    /// is already being handled (so a key's records do not each wait for a
    /// broker round trip).
    async fn handle_pipelined(&self, record: &InboundRecord) -> Result<Option<Tail>, HandlerError> {
        self.handle(record).await.map(|()| None)
    }
}

/// A handler could not process a record yet: the error that stopped it,
/// kept whole so the log shows its causes.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct HandlerError(pub Box<dyn std::error::Error + Send + Sync>);

impl HandlerError {
    /// Wraps any error.
    pub fn new(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(err.into())
    }
}

/// Runs `handler` over `subscription` until `shutdown`, then leaves the group.
///
/// A record in the handler when shutdown comes is finished, not abandoned;
/// a record waiting for a retry is left uncommitted for the next owner.
pub async fn consume(
    mut subscription: Box<dyn Subscription>,
    handler: &dyn Handler,
    retry: Backoff,
    shutdown: CancellationToken,
) -> Result<(), BusError> {
    loop {
        let record = tokio::select! {
            () = shutdown.cancelled() => break,
            next = subscription.next() => match next {
                Ok(record) => record,
                Err(BusError::Closed) => return Ok(()),
                Err(err) => {
                    tracing::warn!(error = %crate::report::Report(&err), "bus receive failed; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(retry.initial) => continue,
                    }
                }
            },
        };
        match handle_with_retry(&record, handler, retry, &shutdown).await {
            Some(Some(tail)) => tail.await,
            Some(None) => {}
            None => break,
        }
        metrics::counter!(METRIC_CONSUMED, "topic" => record.topic.clone()).increment(1);
        if let Err(err) = subscription.commit(&record).await {
            // The partition moved to another member: it will redeliver.
            tracing::warn!(error = %crate::report::Report(&err), "commit failed; record will be redelivered");
        }
    }
    subscription.close().await
}

/// The handled record's tail, if any; `None` when shutdown interrupted
/// the retries.
pub(super) async fn handle_with_retry(
    record: &InboundRecord,
    handler: &dyn Handler,
    retry: Backoff,
    shutdown: &CancellationToken,
) -> Option<Option<Tail>> {
    let mut attempt = 1u32;
    loop {
        let span = tracing::info_span!(
            "bus.consume",
            topic = %record.topic,
            partition = record.partition,
            offset = record.offset,
            attempt,
        );
        telemetry::set_parent_from(&span, &record.headers);
        match handler.handle_pipelined(record).instrument(span).await {
            Ok(tail) => return Some(tail),
            Err(err) => {
                metrics::counter!(METRIC_HANDLER_ERRORS, "topic" => record.topic.clone())
                    .increment(1);
                tracing::warn!(
                    record = %record.coordinates(), attempt, error = %crate::report::Report(&err),
                    "handler failed; retrying",
                );
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(retry.delay(attempt)) => {}
        }
        attempt = attempt.saturating_add(1);
    }
}
