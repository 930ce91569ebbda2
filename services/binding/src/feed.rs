//! A topic binding keeps a table of (the delivery log, the SMS outbox):
//! subscribed patiently, since the table is not worth binding's life (while
//! the broker is away the admin and lookup surfaces keep serving and the
//! table waits), consumed on a few lanes, pruned on a period.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use pushmail_common::backoff::Backoff;
use pushmail_common::bus::{self, EventBus, Handler, SubscribeOptions};
use tokio_util::sync::CancellationToken;

/// Where a table's records come from and how often it is pruned.
pub(crate) struct Feed<'a> {
    /// The topic read.
    pub(crate) topic: &'a str,
    /// The consumer group (every binding replica shares it).
    pub(crate) group: &'a str,
    /// Records handled at once.
    pub(crate) lanes: usize,
    /// Time between prunes (the first at start).
    pub(crate) prune_every: Duration,
}

/// Consumes `feed` into `handler` and runs `prune` on its period, until
/// `shutdown`.
pub(crate) async fn keep<H, P, F>(
    bus: Arc<dyn EventBus>,
    feed: Feed<'_>,
    handler: Arc<H>,
    mut prune: P,
    shutdown: CancellationToken,
) -> Result<(), pushmail_common::bus::BusError>
where
    H: Handler + 'static,
    P: FnMut() -> F,
    F: Future<Output = ()>,
{
    let retry = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let mut failures = 0;
    let subscription = loop {
        let subscribed = async {
            bus.ensure_topic(feed.topic, crate::events::PARTITIONS)
                .await?;
            bus.subscribe(SubscribeOptions {
                group: feed.group.to_owned(),
                topics: vec![feed.topic.to_owned()],
            })
            .await
        };
        match subscribed.await {
            Ok(subscription) => break subscription,
            Err(e) => {
                tracing::warn!(topic = feed.topic, error = %pushmail_common::report::Report(&e), "cannot subscribe yet; retrying");
            }
        }
        failures += 1;
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(retry.delay(failures)) => {}
        }
    };
    let stop = shutdown.clone();
    let pruning = async move {
        loop {
            prune().await;
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(feed.prune_every) => {}
            }
        }
    };
    let consume = bus::consume_concurrently(
        subscription,
        handler,
        feed.lanes,
        Backoff::default(),
        shutdown,
    );
    let (consumed, ()) = tokio::join!(consume, pruning);
    consumed
}
