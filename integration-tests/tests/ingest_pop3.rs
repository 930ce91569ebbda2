//! The ingest service end to end for POP3: an account created through
//! binding's API, mail delivered to Dovecot, exactly one `MailArrived` per
//! mail on the real broker, across a restart of ingest.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::time::Duration;

use pushmail_common::bus::{BusConfig, SubscribeOptions, header};
use pushmail_common::health::Readiness;
use pushmail_common::redact::{Secret, SecretUrl};
use pushmail_common::redis::{StateStoreConfig, StateStoreKind};
use pushmail_integration_tests::dovecot::Dovecot;
use pushmail_integration_tests::{
    INTERNAL_TOKEN, OPERATOR_TOKEN, TestDatabase, authed, kafka_bus, kafka_config, redis_config,
    unique,
};
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::binding::v1::admin_service_client::AdminServiceClient;
use pushmail_proto::events::v1::MailArrived;
use pushmail_proto::topics::MAIL_ARRIVED;
use tokio_util::sync::CancellationToken;

async fn start_ingest(
    binding: std::net::SocketAddr,
    redis: &pushmail_common::redis::RedisConfig,
    blobs: &std::path::Path,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<Result<(), pushmail_ingest::Error>>,
) {
    let mut config = pushmail_ingest::Config {
        bus: BusConfig {
            kafka: kafka_config(),
            ..BusConfig::default()
        },
        ..Default::default()
    };
    config.binding.endpoint = format!("http://{binding}");
    config.binding.token = Secret::new(INTERNAL_TOKEN);
    config.blob.dir = blobs.to_path_buf();
    config.marks = StateStoreConfig {
        kind: StateStoreKind::Redis,
        redis: redis.clone(),
    };
    config.pop3.interval_seconds = 1;
    let deps = pushmail_ingest::Deps::connect(&config, kafka_bus().await.unwrap())
        .await
        .unwrap();
    let listeners = pushmail_ingest::Listeners::ephemeral().await.unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(pushmail_ingest::run(
        config,
        deps,
        listeners,
        Readiness::new("ingest"),
        shutdown.clone(),
    ));
    (shutdown, task)
}

#[tokio::test]
async fn pop3_mail_is_announced_once_across_an_ingest_restart() {
    let dovecot = Dovecot::start(&["pop-e2e@example.net"])
        .await
        .expect("dovecot");
    let user = dovecot.users[0].clone();
    let database = TestDatabase::create().await.unwrap();
    let redis = redis_config();

    // Binding, with the account.
    let mut binding_config = pushmail_binding::Config {
        bus: BusConfig {
            kafka: kafka_config(),
            ..BusConfig::default()
        },
        ..Default::default()
    };
    binding_config.database.url = SecretUrl::new(&database.url);
    binding_config.security = pushmail_integration_tests::test_security();
    binding_config.cache.shared = StateStoreConfig {
        kind: StateStoreKind::Redis,
        redis: redis.clone(),
    };
    let binding_deps = pushmail_binding::Deps::connect(&binding_config, kafka_bus().await.unwrap())
        .await
        .unwrap();
    let binding_listeners = pushmail_common::host::GrpcListeners::ephemeral()
        .await
        .unwrap();
    let binding_addr = binding_listeners.grpc.local_addr().unwrap();
    let binding_stop = CancellationToken::new();
    let binding_task = tokio::spawn(pushmail_binding::run(
        binding_deps,
        binding_listeners,
        Readiness::new("binding"),
        binding_stop.clone(),
    ));
    let mut admin = AdminServiceClient::connect(format!("http://{binding_addr}"))
        .await
        .unwrap();
    let tenant = admin
        .create_tenant(authed(
            OPERATOR_TOKEN,
            pb::CreateTenantRequest {
                name: "t".into(),
                max_accounts: 5,
                sms_per_day: 5,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let account = admin
        .create_account(authed(
            &tenant.api_key,
            pb::CreateAccountRequest {
                tenant_id: tenant.tenant_id.clone(),
                address: user.address.clone(),
                kind: pb::AccountKind::ExternalPop3.into(),
                server: Some(pb::ServerSettings {
                    host: "127.0.0.1".into(),
                    port: u32::from(dovecot.pop3.port()),
                    tls: pb::TlsMode::None.into(),
                    username: user.address.clone(),
                }),
                credentials: Some(pb::Credentials {
                    password: user.password.clone(),
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();

    // Our view of the broker: this tenant's MailArrived events.
    let bus = kafka_bus().await.unwrap();
    // On a fresh broker the topic appears only when ingest starts.
    bus.ensure_topic(MAIL_ARRIVED.name(), 12).await.unwrap();
    let mut events = bus
        .subscribe(SubscribeOptions {
            group: unique("ingest-pop3"),
            topics: vec![MAIL_ARRIVED.name().into()],
        })
        .await
        .unwrap();
    let mut next_event = async || loop {
        let record = tokio::time::timeout(Duration::from_secs(60), events.next())
            .await
            .expect("an event")
            .unwrap();
        if record.headers.get(header::TENANT_ID) == Some(&tenant.tenant_id) {
            return pushmail_common::bus::decode(MAIL_ARRIVED, &record).unwrap();
        }
    };

    let blobs = tempfile::tempdir().unwrap();
    let (stop, task) = start_ingest(binding_addr, &redis, blobs.path()).await;
    let mail = |n: u32| {
        format!(
            "From: x@example.net\r\nSubject: e2e {n}\r\nMessage-ID: <e2e-{n}-{}@x>\r\n\r\nhello {n}\r\n",
            tenant.tenant_id
        )
    };
    dovecot
        .deliver(&user.address, mail(1).as_bytes())
        .await
        .unwrap();
    let first: MailArrived = next_event().await;
    assert_eq!(first.account_id, account.account_id);
    assert_eq!(first.summary.as_ref().unwrap().subject, "e2e 1");

    // Restart ingest between deliveries.
    stop.cancel();
    task.await.unwrap().unwrap();
    dovecot
        .deliver(&user.address, mail(2).as_bytes())
        .await
        .unwrap();
    let (stop, task) = start_ingest(binding_addr, &redis, blobs.path()).await;
    let second: MailArrived = next_event().await;
    assert_eq!(
        second.summary.as_ref().unwrap().subject,
        "e2e 2",
        "the first mail is not announced again"
    );
    // A few more polls: nothing else arrives.
    let quiet = tokio::time::timeout(Duration::from_secs(3), next_event()).await;
    assert!(quiet.is_err(), "exactly one event per mail: {quiet:?}");

    stop.cancel();
    task.await.unwrap().unwrap();
    binding_stop.cancel();
    binding_task.await.unwrap().unwrap();
    database.drop_database().await.unwrap();
}
