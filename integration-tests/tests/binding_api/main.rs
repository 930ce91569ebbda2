//! The binding service over gRPC against real PostgreSQL, Redis and the
//! Kafka-compatible broker: one-time codes captured from the SMS topic,
//! device tokens and their revocation feed, preferences, cache invalidation
//! across replicas, tenant isolation and the status of every bad input.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

mod app_passwords;
mod cache;
mod devices;
mod directory;
mod isolation;
mod keys;
mod onboarding;
mod outbound;
mod outbox;
mod relay;
mod submission;
mod verification;
mod zones;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use pushmail_common::bus::{
    BusConfig, EventBus, InboundRecord, SubscribeOptions, Subscription, header,
};
use pushmail_common::health::Readiness;
use pushmail_common::host::GrpcListeners;
use pushmail_common::redis::{StateStoreConfig, StateStoreKind};
pub(crate) use pushmail_common::service_identity::Service;
use pushmail_integration_tests::{
    OPERATOR_TOKEN, TestDatabase, kafka_bus, kafka_config, redis_config, unique,
};
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::binding::v1::admin_service_client::AdminServiceClient;
use pushmail_proto::binding::v1::binding_service_client::BindingServiceClient;
use pushmail_proto::events::v1::{BindingChanged, SmsOutbound, sms_outbound};
use pushmail_proto::topics::{BINDING_CHANGED, SMS_OUTBOUND};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// One binding replica.
pub(crate) struct Replica {
    pub(crate) addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), pushmail_binding::Error>>,
}

impl Replica {
    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }

    pub(crate) async fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap()
    }

    pub(crate) async fn internal(&self) -> BindingServiceClient<Channel> {
        BindingServiceClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap()
    }
}

/// A PostgreSQL database, a Redis prefix and the broker, for one test.
pub(crate) struct Platform {
    pub(crate) database: TestDatabase,
    pub(crate) redis: pushmail_common::redis::RedisConfig,
    pub(crate) bus: Arc<dyn EventBus>,
}

impl Platform {
    pub(crate) async fn new() -> Self {
        Self {
            database: TestDatabase::create().await.expect("test database"),
            redis: redis_config(),
            bus: kafka_bus().await.expect("broker"),
        }
    }

    pub(crate) fn config(&self) -> pushmail_binding::Config {
        let mut config = pushmail_binding::Config {
            bus: BusConfig {
                kafka: kafka_config(),
                ..BusConfig::default()
            },
            ..Default::default()
        };
        config.database.url = pushmail_common::redact::SecretUrl::new(&self.database.url);
        config.security = pushmail_integration_tests::test_security();
        config.deliveries = pushmail_integration_tests::test_deliveries();
        config.cache.shared = StateStoreConfig {
            kind: StateStoreKind::Redis,
            redis: self.redis.clone(),
            ..Default::default()
        };
        config
    }

    /// A replica with the default config.
    pub(crate) async fn replica(&self) -> Replica {
        self.replica_with(self.config()).await
    }

    pub(crate) async fn replica_with(&self, config: pushmail_binding::Config) -> Replica {
        let deps = pushmail_binding::Deps::connect(&config, self.bus.clone())
            .await
            .expect("binding connects");
        let listeners = GrpcListeners::ephemeral().await.unwrap();
        let addr = listeners.grpc.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(pushmail_binding::run(
            deps,
            listeners,
            Readiness::new(pushmail_binding::NAME),
            shutdown.clone(),
        ));
        Replica {
            addr,
            shutdown,
            task,
        }
    }

    pub(crate) async fn finish(self, replicas: Vec<Replica>) {
        for replica in replicas {
            replica.stop().await;
        }
        self.database.drop_database().await.unwrap();
    }

    /// Reads binding's topics from the beginning (a fresh group), keeping
    /// only `tenant`'s events.
    pub(crate) async fn events(&self, tenant: &str) -> Events {
        let subscription = self
            .bus
            .subscribe(SubscribeOptions {
                group: unique("binding-api-test"),
                topics: vec![
                    SMS_OUTBOUND.name().to_owned(),
                    BINDING_CHANGED.name().to_owned(),
                ],
            })
            .await
            .unwrap();
        Events {
            subscription,
            tenant: tenant.to_owned(),
        }
    }
}

/// A tenant's events, as they arrive.
pub(crate) struct Events {
    subscription: Box<dyn Subscription>,
    tenant: String,
}

impl Events {
    async fn next_record(&mut self) -> InboundRecord {
        loop {
            let record = tokio::time::timeout(Duration::from_secs(60), self.subscription.next())
                .await
                .expect("an event within a minute")
                .unwrap();
            if record.headers.get(header::TENANT_ID) == Some(&self.tenant) {
                return record;
            }
        }
    }

    /// The next SMS request for the tenant.
    pub(crate) async fn sms(&mut self) -> SmsOutbound {
        loop {
            let record = self.next_record().await;
            if record.topic == SMS_OUTBOUND.name() {
                return SmsOutbound::decode(record.payload.as_slice()).unwrap();
            }
        }
    }

    /// The next change announced for the tenant.
    pub(crate) async fn change(&mut self) -> BindingChanged {
        loop {
            let record = self.next_record().await;
            if record.topic == BINDING_CHANGED.name() {
                return BindingChanged::decode(record.payload.as_slice()).unwrap();
            }
        }
    }

    /// The six digits of the next one-time code SMS to `msisdn`.
    pub(crate) async fn code_for(&mut self, msisdn: &str) -> String {
        loop {
            let sms = self.sms().await;
            if sms.msisdn != msisdn {
                continue;
            }
            let Some(sms_outbound::Body::Text(text)) = sms.body else {
                panic!("an OTP is text: {sms:?}");
            };
            let digits: String = text
                .split(|c: char| !c.is_ascii_digit())
                .find(|w| w.len() == 6)
                .expect("six digits in the text")
                .to_owned();
            return digits;
        }
    }
}

pub(crate) use pushmail_integration_tests::authed;

/// As an operator.
pub(crate) fn operator<T>(message: T) -> Request<T> {
    authed(OPERATOR_TOKEN, message)
}

/// As another pushmail service.
pub(crate) fn as_service<T>(service: Service, message: T) -> Request<T> {
    authed(&pushmail_integration_tests::credential(service), message)
}

/// Asserts a call failed with `code` and a message containing `needle`.
pub(crate) fn refused<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, Status>,
    code: Code,
    needle: &str,
) {
    let status = result.expect_err("the call must fail");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(needle),
        "{needle:?} not in {:?}",
        status.message()
    );
}

/// A tenant with its API key.
pub(crate) struct TestTenant {
    pub(crate) id: String,
    pub(crate) key: String,
}

pub(crate) async fn tenant(
    admin: &mut AdminServiceClient<Channel>,
    sms_per_day: u32,
) -> TestTenant {
    tenant_with(
        admin,
        pb::CreateTenantRequest {
            sms_per_day,
            ..Default::default()
        },
    )
    .await
}

/// A tenant made from `request` (named Acme, ten accounts, unless set).
pub(crate) async fn tenant_with(
    admin: &mut AdminServiceClient<Channel>,
    request: pb::CreateTenantRequest,
) -> TestTenant {
    let request = pb::CreateTenantRequest {
        name: if request.name.is_empty() {
            "Acme".to_owned()
        } else {
            request.name
        },
        max_accounts: request.max_accounts.max(10),
        ..request
    };
    let created = admin
        .create_tenant(operator(request))
        .await
        .unwrap()
        .into_inner();
    assert!(created.api_key.starts_with("pmk_"));
    TestTenant {
        id: created.tenant_id,
        key: created.api_key,
    }
}

/// An IMAP account of the tenant.
pub(crate) async fn account(
    admin: &mut AdminServiceClient<Channel>,
    tenant: &TestTenant,
    address: &str,
) -> pb::Account {
    admin
        .create_account(authed(
            &tenant.key,
            pb::CreateAccountRequest {
                tenant_id: tenant.id.clone(),
                address: address.to_owned(),
                kind: pb::AccountKind::ExternalImap.into(),
                server: Some(pb::ServerSettings {
                    host: "imap.example.net".to_owned(),
                    port: 993,
                    tls: pb::TlsMode::Implicit.into(),
                    username: address.to_owned(),
                }),
                credentials: Some(pb::Credentials {
                    password: "s3cret-imap".to_owned(),
                }),
                submission: None,
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

/// A mainland mobile number no other test uses.
pub(crate) fn number() -> String {
    let n = uuid::Uuid::now_v7().as_u128() % 1_000_000_000;
    format!("+86139{n:08}").chars().take(14).collect()
}

/// Binds `msisdn` to the account through the SMS round trip.
pub(crate) async fn bind(
    admin: &mut AdminServiceClient<Channel>,
    events: &mut Events,
    tenant: &TestTenant,
    account: &pb::Account,
    msisdn: &str,
) -> pb::Binding {
    let started = admin
        .start_binding(authed(
            &tenant.key,
            pb::StartBindingRequest {
                tenant_id: tenant.id.clone(),
                account_id: account.account_id.clone(),
                msisdn: msisdn.to_owned(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let code = events.code_for(msisdn).await;
    admin
        .verify_binding(authed(
            &tenant.key,
            pb::VerifyBindingRequest {
                tenant_id: tenant.id.clone(),
                binding_id: started.binding_id,
                code,
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

/// Dispatch's view of an account.
pub(crate) async fn targets(
    replica: &Replica,
    tenant: &TestTenant,
    account: &pb::Account,
) -> Vec<pb::DeliveryTarget> {
    replica
        .internal()
        .await
        .get_delivery_targets(as_service(
            Service::Dispatch,
            pb::GetDeliveryTargetsRequest {
                tenant_id: tenant.id.clone(),
                account_id: account.account_id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .targets
}
