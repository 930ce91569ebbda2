//! Per-account traffic counters (pushes by dispatch, fetches by the
//! gateway), summed in memory and sent to binding in batches (binding
//! keeps them per day for the portal's charts and `GetTrafficStats`). A
//! failed flush keeps the counts for the next one. SMS are counted by
//! binding itself when dispatch charges them.

use std::collections::HashMap;
use std::sync::Mutex;

use pushmail_proto::binding::v1 as binding;
use pushmail_proto::binding::v1::binding_service_client::BindingServiceClient;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    pushed: u64,
    pushed_bytes: u64,
    fetched: u64,
    fetched_bytes: u64,
}

impl Counts {
    fn merge(&mut self, other: Self) {
        self.pushed += other.pushed;
        self.pushed_bytes += other.pushed_bytes;
        self.fetched += other.fetched;
        self.fetched_bytes += other.fetched_bytes;
    }
}

/// Counters waiting for the next flush.
#[derive(Debug, Default)]
pub struct Traffic {
    pending: Mutex<HashMap<(String, String), Counts>>,
}

impl Traffic {
    fn add(&self, tenant: &str, account: &str, f: impl FnOnce(&mut Counts)) {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(pending
            .entry((tenant.to_owned(), account.to_owned()))
            .or_default());
    }

    /// A notification reached a device over its held connection.
    pub fn pushed(&self, tenant: &str, account: &str, bytes: u64) {
        self.add(tenant, account, |c| {
            c.pushed += 1;
            c.pushed_bytes += bytes;
        });
    }

    /// A device fetched `bytes` of a message (a resumed download counts
    /// the bytes it got, so the statistics match what the network carried).
    pub fn fetched(&self, tenant: &str, account: &str, bytes: u64) {
        self.add(tenant, account, |c| {
            c.fetched += 1;
            c.fetched_bytes += bytes;
        });
    }

    /// Sends the counts to binding; what fails is put back.
    pub async fn flush(&self, client: &BindingServiceClient<pushmail_common::grpc::TracedChannel>) {
        let batch = std::mem::take(
            &mut *self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for ((tenant, account), counts) in batch {
            let request = binding::RecordTrafficRequest {
                tenant_id: tenant.clone(),
                account_id: account.clone(),
                pushed_count: counts.pushed,
                pushed_bytes: counts.pushed_bytes,
                fetched_count: counts.fetched,
                fetched_bytes: counts.fetched_bytes,
                ..Default::default()
            };
            match client.clone().record_traffic(request).await {
                Ok(_) => {}
                // A deleted account's counts have nowhere to go.
                Err(status) if status.code() == tonic::Code::NotFound => {}
                Err(status) => {
                    tracing::warn!(error = %status, "traffic not recorded; kept for the next flush");
                    self.add(&tenant, &account, |c| c.merge(counts));
                }
            }
        }
    }

    /// Flushes every `every` until `shutdown`, then once more.
    pub async fn flush_every(
        &self,
        client: &BindingServiceClient<pushmail_common::grpc::TracedChannel>,
        every: std::time::Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        loop {
            let stop = tokio::select! {
                () = shutdown.cancelled() => true,
                () = tokio::time::sleep(every) => false,
            };
            self.flush(client).await;
            if stop {
                return;
            }
        }
    }
}
