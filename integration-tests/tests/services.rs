//! Every service starts on port-0 listeners against the real PostgreSQL,
//! Redis and Kafka, reports ready with each dependency checked, and stops
//! cleanly on shutdown; a service whose upstream is down reports why.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use pushmail_common::service_identity::Service;
use std::net::SocketAddr;
use std::time::Duration;

use pushmail_common::bus::BusConfig;
use pushmail_common::grpc::UpstreamConfig;
use pushmail_common::health::Readiness;
use pushmail_common::host::{AdminListener, GrpcListeners};
use pushmail_common::redis::{StateStoreConfig, StateStoreKind};
use pushmail_integration_tests::{
    TestDatabase, http_get, kafka_bus, kafka_config, listener, redis_config, wait_ready,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const READY: Duration = Duration::from_secs(10);
const STOP: Duration = Duration::from_secs(5);

type Running = JoinHandle<anyhow::Result<()>>;

fn spawn<E: Into<anyhow::Error>>(
    future: impl Future<Output = Result<(), E>> + Send + 'static,
) -> Running {
    tokio::spawn(async move { future.await.map_err(Into::into) })
}

/// `addr` called as `service`.
fn endpoint(addr: SocketAddr, service: Service) -> UpstreamConfig {
    UpstreamConfig {
        token: pushmail_integration_tests::credential_secret(service),
        ..UpstreamConfig::at(format!("http://{addr}"))
    }
}

fn redis_state() -> StateStoreConfig {
    StateStoreConfig {
        kind: StateStoreKind::Redis,
        redis: redis_config(),
        ..Default::default()
    }
}

/// Listeners of a gRPC service on free loopback ports, with their addresses.
async fn grpc_listeners() -> (GrpcListeners, SocketAddr, SocketAddr) {
    let listeners = GrpcListeners::ephemeral().await.unwrap();
    let (grpc, admin) = (
        listeners.grpc.local_addr().unwrap(),
        listeners.admin.local_addr().unwrap(),
    );
    (listeners, grpc, admin)
}

/// The admin listener of a service without gRPC, with its address.
async fn admin_listener() -> (AdminListener, SocketAddr) {
    let listener = AdminListener::ephemeral().await.unwrap();
    let admin = listener.admin.local_addr().unwrap();
    (listener, admin)
}

struct Started {
    grpc: Option<SocketAddr>,
    admin: SocketAddr,
    task: Running,
}

async fn start_binding(shutdown: &CancellationToken, database_url: &str) -> Started {
    let mut config = pushmail_binding::Config {
        bus: BusConfig {
            kafka: kafka_config(),
            ..BusConfig::default()
        },
        ..Default::default()
    };
    config.database.url = pushmail_common::redact::SecretUrl::new(database_url);
    config.security = pushmail_integration_tests::test_security();
    config.deliveries = pushmail_integration_tests::test_deliveries();
    config.cache.shared = redis_state();
    let deps = pushmail_binding::Deps::connect(&config, kafka_bus().await.expect("broker"))
        .await
        .expect("binding connects to PostgreSQL");
    let (listeners, grpc, admin) = grpc_listeners().await;
    let readiness = Readiness::new(pushmail_binding::NAME);
    let task = spawn(pushmail_binding::run(
        deps,
        listeners,
        readiness,
        shutdown.clone(),
    ));
    Started {
        grpc: Some(grpc),
        admin,
        task,
    }
}

async fn start_session(shutdown: &CancellationToken) -> Started {
    let config = pushmail_integration_tests::session_config();
    let deps = pushmail_session::Deps::connect(&config, kafka_bus().await.expect("broker"))
        .await
        .expect("session connects to Redis");
    let (server, grpc, admin) = grpc_listeners().await;
    let listeners = pushmail_session::Listeners {
        server,
        devices: pushmail_integration_tests::listener().await,
    };
    let readiness = Readiness::new(pushmail_session::NAME);
    Started {
        grpc: Some(grpc),
        admin,
        task: spawn(pushmail_session::run(
            config,
            deps,
            listeners,
            readiness,
            shutdown.clone(),
        )),
    }
}

async fn start_transcode(shutdown: &CancellationToken, blobs: &std::path::Path) -> Started {
    let config = pushmail_integration_tests::edge::transcode_config(blobs);
    let deps = pushmail_transcode::Deps::connect(&config);
    let (listeners, grpc, admin) = grpc_listeners().await;
    let readiness = Readiness::new(pushmail_transcode::NAME);
    Started {
        grpc: Some(grpc),
        admin,
        task: spawn(pushmail_transcode::run(
            config,
            deps,
            listeners,
            readiness,
            shutdown.clone(),
        )),
    }
}

async fn start_ingest(
    shutdown: &CancellationToken,
    binding: SocketAddr,
    blobs: &std::path::Path,
) -> Started {
    let mut config = pushmail_ingest::Config {
        binding: endpoint(binding, Service::Ingest),
        ..Default::default()
    };
    config.blob.dir = blobs.to_path_buf();
    config.marks = redis_state();
    let deps = pushmail_ingest::Deps::connect(&config, kafka_bus().await.expect("broker"))
        .await
        .unwrap();
    let listeners = pushmail_ingest::Listeners::ephemeral().await.unwrap();
    let admin = listeners.admin.local_addr().unwrap();
    let readiness = Readiness::new(pushmail_ingest::NAME);
    Started {
        grpc: None,
        admin,
        task: spawn(pushmail_ingest::run(
            config,
            deps,
            listeners,
            readiness,
            shutdown.clone(),
        )),
    }
}

async fn start_dispatch(
    shutdown: &CancellationToken,
    binding: SocketAddr,
    session: SocketAddr,
) -> Started {
    let state = redis_state();
    let config = pushmail_dispatch::Config {
        binding: endpoint(binding, Service::Dispatch),
        session: endpoint(session, Service::Dispatch),
        outbox: pushmail_outbox::OutboxSettings {
            redis: state.redis.clone(),
            ..Default::default()
        },
        state,
        ..Default::default()
    };
    let deps = pushmail_dispatch::Deps::connect(&config, kafka_bus().await.expect("broker"))
        .await
        .expect("dispatch connects to Redis");
    let (listeners, admin) = admin_listener().await;
    let readiness = Readiness::new(pushmail_dispatch::NAME);
    Started {
        grpc: None,
        admin,
        task: spawn(pushmail_dispatch::run(
            config,
            deps,
            listeners,
            readiness,
            shutdown.clone(),
        )),
    }
}

async fn start_gateway(
    shutdown: &CancellationToken,
    binding: SocketAddr,
    transcode: SocketAddr,
) -> (Started, SocketAddr) {
    let config = pushmail_integration_tests::edge::gateway_config(binding, transcode);
    let deps = pushmail_gateway::Deps::connect(&config).unwrap();
    let listeners = pushmail_gateway::Listeners {
        http: listener().await,
        admin: listener().await,
    };
    let (http, admin) = (
        listeners.http.local_addr().unwrap(),
        listeners.admin.local_addr().unwrap(),
    );
    let task = spawn(pushmail_gateway::run(
        config,
        deps,
        listeners,
        Readiness::new(pushmail_gateway::NAME),
        shutdown.clone(),
    ));
    (
        Started {
            grpc: None,
            admin,
            task,
        },
        http,
    )
}

async fn grpc_serving(addr: SocketAddr) -> bool {
    // Health needs no credential.
    let channel = UpstreamConfig::at(format!("http://{addr}"))
        .channel()
        .unwrap();
    pushmail_common::grpc::check_upstream(channel).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_starts_on_real_dependencies_and_stops_cleanly() {
    let database = TestDatabase::create().await.expect("test database");
    let blobs = tempfile::tempdir().unwrap();
    let shutdown = CancellationToken::new();

    let binding = start_binding(&shutdown, &database.url).await;
    let session = start_session(&shutdown).await;
    let transcode = start_transcode(&shutdown, blobs.path()).await;
    let ingest = start_ingest(&shutdown, binding.grpc.unwrap(), blobs.path()).await;
    let dispatch = start_dispatch(&shutdown, binding.grpc.unwrap(), session.grpc.unwrap()).await;
    let (gateway, gateway_http) =
        start_gateway(&shutdown, binding.grpc.unwrap(), transcode.grpc.unwrap()).await;
    let all = [binding, session, transcode, ingest, dispatch, gateway];

    for service in &all {
        wait_ready(service.admin, READY).await.expect("ready");
        let (status, body) = http_get(service.admin, "/readyz").await.unwrap();
        assert_eq!(status, 200);
        assert!(!body.contains("\"ok\":false"), "{body}");
        assert_eq!(http_get(service.admin, "/healthz").await.unwrap().0, 200);
        let (status, metrics) = http_get(service.admin, "/metrics").await.unwrap();
        assert_eq!(status, 200, "{metrics}");
        if let Some(grpc) = service.grpc {
            assert!(grpc_serving(grpc).await, "gRPC health of {grpc}");
        }
    }
    let (status, body) = http_get(gateway_http, "/no/such/route").await.unwrap();
    assert_eq!(status, 404);
    assert!(body.contains("\"code\":\"not_found\""), "{body}");

    shutdown.cancel();
    for service in all {
        tokio::time::timeout(STOP, service.task)
            .await
            .expect("stopped within the bound")
            .expect("task")
            .expect("clean stop");
    }
    let migrations = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../services/binding/migrations/postgres"
    ))
    .unwrap()
    .count();
    assert_eq!(
        database.migrations_applied().await.unwrap(),
        i64::try_from(migrations).unwrap(),
        "binding migrated at start"
    );
    database.drop_database().await.expect("drop test database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_is_not_ready_while_binding_is_down_and_says_why() {
    let blobs = tempfile::tempdir().unwrap();
    let shutdown = CancellationToken::new();
    // A port nothing listens on.
    let nowhere = listener().await.local_addr().unwrap();
    let ingest = start_ingest(&shutdown, nowhere, blobs.path()).await;
    let deadline = tokio::time::Instant::now() + READY;
    let body = loop {
        let (status, body) = http_get(ingest.admin, "/readyz").await.unwrap();
        assert_eq!(status, 503, "must not be ready: {body}");
        if body.contains("\"state\":\"serving\"") || tokio::time::Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(body.contains("\"name\":\"binding\",\"ok\":false"), "{body}");
    assert!(body.contains("\"name\":\"bus\",\"ok\":true"), "{body}");
    shutdown.cancel();
    tokio::time::timeout(STOP, ingest.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
