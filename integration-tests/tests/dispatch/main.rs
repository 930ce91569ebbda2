//! Dispatch on a broker of its own (tansu), PostgreSQL (binding), Redis
//! (outbox, directory, dispatch state) and a real session service, with
//! phones as WebSocket clients: what each device sees, once.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

mod crash;
mod delivery;
mod failures;
mod policy;
mod sync;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pushmail_common::bus::{EventBus, EventContext, KafkaConfig, encode};
use pushmail_common::health::Readiness;
use pushmail_common::redis::{RedisConfig, StateStoreConfig, StateStoreKind};
use pushmail_integration_tests::broker::PrivateBroker;
use pushmail_integration_tests::nodes::BindingNode;
use pushmail_integration_tests::topics::TenantTopics;
use pushmail_integration_tests::{authed, unique};
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::common::v1::Address;
use pushmail_proto::events::v1 as events;
use pushmail_proto::topics;
use tokio_util::sync::CancellationToken;

/// An enterprise account of `tenant`, and a view of the tenant's SMS,
/// receipts and dead letters.
async fn account_and_watch(
    binding: &mut BindingNode,
    bus: &Arc<dyn EventBus>,
    tenant: &pb::CreateTenantResponse,
) -> (pb::Account, TenantTopics) {
    let account = binding
        .forwarded(tenant, &format!("{}@corp.example", unique("user")))
        .await
        .unwrap();
    let watch = TenantTopics::on(
        bus,
        &tenant.tenant_id,
        &[
            topics::SMS_OUTBOUND.name(),
            topics::DELIVERY.name(),
            topics::DISPATCH_DLQ.name(),
        ],
    )
    .await
    .unwrap();
    (account, watch)
}

/// A running service task.
struct Task {
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

impl Task {
    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.handle.await;
    }
}

/// Everything dispatch talks to, for one test.
struct Platform {
    broker: PrivateBroker,
    kafka: KafkaConfig,
    bus: Arc<dyn EventBus>,
    redis: RedisConfig,
    binding: BindingNode,
    tenant: pb::CreateTenantResponse,
    account: pb::Account,
    watch: TenantTopics,
    session_grpc: SocketAddr,
    devices: SocketAddr,
    session: Task,
    dispatch: Option<Task>,
}

impl Platform {
    async fn new() -> Self {
        Self::with(|_| {}).await
    }

    /// A platform whose dispatch config `adjust` changes.
    async fn with(adjust: impl FnOnce(&mut pushmail_dispatch::Config)) -> Self {
        Self::build(adjust, true).await
    }

    /// Like [`Platform::with`], not waiting for dispatch to report ready
    /// (for a dispatch whose upstream is down on purpose).
    async fn with_unready(adjust: impl FnOnce(&mut pushmail_dispatch::Config)) -> Self {
        Self::build(adjust, false).await
    }

    /// Everything but dispatch (the test runs its own).
    async fn without_dispatch() -> Self {
        Self::build(|_| {}, None).await
    }

    async fn build(
        adjust: impl FnOnce(&mut pushmail_dispatch::Config),
        ready: impl Into<Option<bool>>,
    ) -> Self {
        let broker = PrivateBroker::start().await.expect("private broker");
        let kafka = broker.kafka();
        let bus = broker.bus("dispatch-test").await.unwrap();
        let redis = pushmail_integration_tests::redis_config();
        let mut binding = BindingNode::start_on(kafka.clone()).await.unwrap();
        let tenant = binding.tenant().await.unwrap();
        let (account, watch) = account_and_watch(&mut binding, &bus, &tenant).await;

        let mut session = pushmail_integration_tests::session_config();
        session.directory.redis = redis.clone();
        session.outbox.redis = redis.clone();
        session.bus.kafka = kafka.clone();
        let listeners = pushmail_session::Listeners::ephemeral().await.unwrap();
        let session_grpc = listeners.server.grpc.local_addr().unwrap();
        let session_admin = listeners.server.admin.local_addr().unwrap();
        let devices = listeners.devices.local_addr().unwrap();
        session.devices.advertise = format!("http://{session_grpc}");
        let deps = pushmail_session::Deps::connect(&session, bus.clone())
            .await
            .unwrap();
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                pushmail_session::run(
                    session,
                    deps,
                    listeners,
                    Readiness::new("session"),
                    shutdown,
                )
                .await
                .unwrap();
            }
        });
        pushmail_integration_tests::wait_ready(session_admin, Duration::from_secs(20))
            .await
            .unwrap();
        let mut platform = Self {
            broker,
            kafka,
            bus,
            redis,
            binding,
            tenant,
            account,
            watch,
            session_grpc,
            devices,
            session: Task { shutdown, handle },
            dispatch: None,
        };
        if let Some(ready) = ready.into() {
            let config = platform.dispatch_config(adjust);
            platform.dispatch = Some(start_dispatch(config, platform.bus.clone(), ready).await);
        }
        platform
    }

    fn dispatch_config(
        &self,
        adjust: impl FnOnce(&mut pushmail_dispatch::Config),
    ) -> pushmail_dispatch::Config {
        let upstream = |addr: SocketAddr| {
            let mut upstream = pushmail_common::grpc::UpstreamConfig::at(format!("http://{addr}"));
            upstream.token = pushmail_integration_tests::credential_secret(
                pushmail_common::service_identity::Service::Dispatch,
            );
            upstream
        };
        let mut config = pushmail_dispatch::Config {
            binding: upstream(self.binding.addr),
            session: upstream(self.session_grpc),
            state: StateStoreConfig {
                kind: StateStoreKind::Redis,
                redis: self.redis.clone(),
                ..Default::default()
            },
            outbox: pushmail_outbox::OutboxSettings {
                redis: self.redis.clone(),
                ..Default::default()
            },
            bus: pushmail_common::bus::BusConfig {
                kafka: self.kafka.clone(),
                ..Default::default()
            },
            ..Default::default()
        };
        config.delivery.digest_interval_ms = 200;
        config.delivery.traffic_flush_ms = 200;
        config.delivery.ack_timeout_ms = 2_000;
        adjust(&mut config);
        config
    }

    /// Waits until the outbox holds `device`'s `seq` as acked (the phone's
    /// ack goes to session, which records it on its own time).
    async fn acked(&self, device: &str, seq: u64) {
        let outbox = pushmail_outbox::OutboxSettings {
            redis: self.redis.clone(),
            ..Default::default()
        }
        .connect()
        .await
        .unwrap();
        let cursor = pushmail_outbox::Cursor {
            generation: 0,
            seq: 0,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let kept = outbox
                .after(&self.tenant.tenant_id, device, cursor, 1_000)
                .await
                .unwrap();
            if kept.notifications.iter().all(|n| n.sequence > seq) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{seq} never acked in the outbox"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A device bound to the account, with or without a push client.
    async fn device(&mut self, push_client: bool) -> (String, pb::RegisterDeviceResponse) {
        self.binding
            .device(&self.tenant, &self.account, push_client, &mut self.watch)
            .await
            .unwrap()
    }

    /// Moves the platform to a new tenant (and account) with a push rate.
    async fn use_tenant_with_rate(&mut self, push_per_minute: u32) {
        let tenant = self
            .binding
            .tenant_with(|r| r.push_per_minute = push_per_minute)
            .await
            .unwrap();
        (self.account, self.watch) = account_and_watch(&mut self.binding, &self.bus, &tenant).await;
        self.tenant = tenant;
    }

    /// Publishes a mail for the account, as ingest does; returns its key.
    async fn mail(&self, from: &str, subject: &str) -> String {
        let key = unique("mail");
        self.publish(&self.event(&key, from, subject)).await;
        key
    }

    fn event(&self, key: &str, from: &str, subject: &str) -> events::MailArrived {
        let context = EventContext::new(self.tenant.tenant_id.clone());
        events::MailArrived {
            meta: Some(context.meta(pushmail_common::clock::now_ms())),
            account_id: self.account.account_id.clone(),
            mailbox: "INBOX".to_owned(),
            idempotency_key: key.to_owned(),
            summary: Some(events::MailSummary {
                from: Some(Address {
                    name: "Sender".to_owned(),
                    address: from.to_owned(),
                }),
                subject: subject.to_owned(),
                snippet: "Please find the figures attached.".to_owned(),
                ..Default::default()
            }),
            blob_ref: "sha256-0123".to_owned(),
            received_at: Some(pushmail_common::clock::timestamp(
                pushmail_common::clock::now_ms(),
            )),
            ..Default::default()
        }
    }

    async fn publish(&self, event: &events::MailArrived) {
        let context = EventContext::new(self.tenant.tenant_id.clone());
        let record = encode(topics::MAIL_ARRIVED, &event.account_id, &context, event);
        self.bus
            .publish(topics::MAIL_ARRIVED.name(), record)
            .await
            .unwrap();
    }

    async fn preferences(&mut self, binding_id: &str, change: impl FnOnce(&mut pb::Preferences)) {
        let mut preferences = self
            .binding
            .admin
            .get_preferences(authed(
                &self.tenant.api_key,
                pb::GetPreferencesRequest {
                    tenant_id: self.tenant.tenant_id.clone(),
                    binding_id: binding_id.to_owned(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        change(&mut preferences);
        self.binding
            .admin
            .update_preferences(authed(
                &self.tenant.api_key,
                pb::UpdatePreferencesRequest {
                    preferences: Some(preferences),
                },
            ))
            .await
            .unwrap();
    }

    /// The binding id of `msisdn`.
    async fn binding_of(&mut self, msisdn: &str) -> String {
        self.binding
            .admin
            .list_bindings(authed(
                &self.tenant.api_key,
                pb::ListBindingsRequest {
                    tenant_id: self.tenant.tenant_id.clone(),
                    account_id: self.account.account_id.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .bindings
            .into_iter()
            .find(|b| b.msisdn == msisdn)
            .expect("the number is bound")
            .binding_id
    }

    /// Today's traffic of the account, as the portal sees it.
    async fn traffic_today(&mut self) -> pb::TrafficDay {
        let day = jiff::Timestamp::now()
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .date()
            .to_string();
        self.binding
            .admin
            .get_traffic_stats(authed(
                &self.tenant.api_key,
                pb::GetTrafficStatsRequest {
                    tenant_id: self.tenant.tenant_id.clone(),
                    account_id: self.account.account_id.clone(),
                    from_day: day.clone(),
                    to_day: day,
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .days
            .pop()
            .unwrap_or_default()
    }

    /// Whether no SMS is published within `wait`.
    async fn no_sms(&mut self, wait: Duration) -> bool {
        self.watch
            .next_within(topics::SMS_OUTBOUND, wait)
            .await
            .unwrap()
            .is_none()
    }

    /// The next receipt for `device` (skipping other devices').
    async fn receipt(&mut self, device: &str) -> events::DeliveryReceipt {
        loop {
            let receipt: events::DeliveryReceipt = self.watch.next(topics::DELIVERY).await.unwrap();
            if receipt.device_id == device {
                return receipt;
            }
        }
    }

    /// Stops everything, the broker last: librdkafka's consumer close can
    /// wait forever for a broker that is gone (seen: a watcher dropped after
    /// the broker hung the test).
    async fn stop(self) {
        let Self {
            broker,
            bus,
            binding,
            watch,
            session,
            dispatch,
            ..
        } = self;
        drop(watch);
        if let Some(dispatch) = dispatch {
            dispatch.stop().await;
        }
        session.stop().await;
        binding.stop().await.unwrap();
        drop(bus);
        drop(broker);
    }
}

async fn start_dispatch(
    config: pushmail_dispatch::Config,
    bus: Arc<dyn EventBus>,
    ready: bool,
) -> Task {
    let deps = pushmail_dispatch::Deps::connect(&config, bus)
        .await
        .unwrap();
    let listeners = pushmail_common::host::AdminListener::ephemeral()
        .await
        .unwrap();
    let admin = listeners.admin.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            pushmail_dispatch::run(
                config,
                deps,
                listeners,
                Readiness::new("dispatch"),
                shutdown,
            )
            .await
            .unwrap();
        }
    });
    if ready {
        pushmail_integration_tests::wait_ready(admin, Duration::from_secs(30))
            .await
            .unwrap();
    }
    Task { shutdown, handle }
}
