//! One tenant's records on several topics, read by a group of the test's
//! own; records of a topic not asked for yet wait in a buffer, so nothing
//! is skipped.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use pushmail_common::bus::{EventBus, InboundRecord, SubscribeOptions, Subscription, header};
use pushmail_proto::topics::Topic;

/// A tenant's view of some topics.
pub struct TenantTopics {
    subscription: Box<dyn Subscription>,
    tenant: String,
    buffer: HashMap<String, VecDeque<InboundRecord>>,
}

impl TenantTopics {
    /// The SMS centre's view of `tenant`: the codes and wake-ups it is
    /// asked to send.
    pub async fn sms(bus: &Arc<dyn EventBus>, tenant: &str) -> anyhow::Result<Self> {
        Self::on(bus, tenant, &[pushmail_proto::topics::SMS_OUTBOUND.name()]).await
    }

    /// Subscribes to `topics` on `bus` (creating them if the broker is fresh).
    pub async fn on(
        bus: &Arc<dyn EventBus>,
        tenant: &str,
        topics: &[&str],
    ) -> anyhow::Result<Self> {
        for topic in topics {
            bus.ensure_topic(topic, 12).await?;
        }
        let subscription = bus
            .subscribe(SubscribeOptions {
                group: crate::unique("tenant-topics"),
                topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            })
            .await?;
        Ok(Self {
            subscription,
            tenant: tenant.to_owned(),
            buffer: HashMap::new(),
        })
    }

    /// The tenant's next record of `topic`, or `None` after `wait`.
    pub async fn record_within(
        &mut self,
        topic: &str,
        wait: Duration,
    ) -> anyhow::Result<Option<InboundRecord>> {
        if let Some(record) = self.buffer.get_mut(topic).and_then(VecDeque::pop_front) {
            return Ok(Some(record));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let record = match tokio::time::timeout_at(deadline, self.subscription.next()).await {
                Ok(record) => record?,
                Err(_) => return Ok(None),
            };
            if record.headers.get(header::TENANT_ID) != Some(&self.tenant) {
                continue;
            }
            if record.topic == topic {
                return Ok(Some(record));
            }
            self.buffer
                .entry(record.topic.clone())
                .or_default()
                .push_back(record);
        }
    }

    /// The tenant's next message of `topic`, or `None` after `wait`.
    pub async fn next_within<M: prost::Message + Default>(
        &mut self,
        topic: Topic<M>,
        wait: Duration,
    ) -> anyhow::Result<Option<M>> {
        match self.record_within(topic.name(), wait).await? {
            Some(record) => Ok(Some(pushmail_common::bus::decode(topic, &record)?)),
            None => Ok(None),
        }
    }

    /// The tenant's next message of `topic` within a minute, or an error.
    pub async fn next<M: prost::Message + Default>(
        &mut self,
        topic: Topic<M>,
    ) -> anyhow::Result<M> {
        let name = topic.name();
        self.next_within(topic, Duration::from_secs(60))
            .await?
            .ok_or_else(|| anyhow::anyhow!("nothing on {name} within a minute"))
    }
}
