//! Test kit for cross-service tests against real dependencies.
//!
//! Every dependency is named by an environment variable that
//! `scripts/env.sh` sets (defaults match `scripts/provision.sh`). A test
//! that cannot reach one fails with the reason; nothing is skipped.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]

pub mod activesync;
pub mod broker;
pub mod browser;
pub mod collector;
pub mod device;
pub mod documents;
pub mod dovecot;
pub mod edge;
pub mod hostile;
pub mod http;
pub mod mailbox;
pub mod measure;
pub mod nodes;
pub mod platform;
pub mod postfix;
pub mod smsc;
pub mod smtp;
pub mod topics;

use std::sync::Arc;

use pushmail_common::bus::{
    EventBus, KafkaBus, KafkaConfig, MemoryBus, MemoryBusConfig, SqliteBus, SqliteBusConfig,
};

/// A name no other test (or earlier run) uses: topics, groups, databases.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// The test broker's address (`PUSHMAIL_TEST_KAFKA`, default `127.0.0.1:9092`).
pub fn kafka_brokers() -> String {
    std::env::var("PUSHMAIL_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// Kafka settings tuned for tests: a short group session (a join waits half
/// of it) and short fetch waits, on a single-broker cluster.
pub fn kafka_config() -> KafkaConfig {
    KafkaConfig {
        brokers: kafka_brokers(),
        session_timeout_ms: 6_000,
        fetch_wait_max_ms: 10,
        auto_commit_interval_ms: 20,
        replication_factor: 1,
        ..KafkaConfig::default()
    }
}

/// A Kafka bus on the test broker; fails the test if the broker is down.
pub async fn kafka_bus() -> anyhow::Result<Arc<dyn EventBus>> {
    let bus = KafkaBus::new(&kafka_config(), &unique("test"))?;
    bus.check().await.map_err(|e| {
        anyhow::anyhow!(
            "Kafka broker at {} unreachable ({e}); run `bash scripts/provision.sh`",
            kafka_brokers()
        )
    })?;
    Ok(Arc::new(bus))
}

/// An in-process bus with the given partition capacity.
pub fn memory_bus(partition_capacity: usize) -> Arc<dyn EventBus> {
    Arc::new(MemoryBus::new(&MemoryBusConfig {
        partition_capacity,
        partitions: 3,
        publish_timeout_ms: 30_000,
    }))
}

/// A durable in-process bus in `dir/bus.db` (read back if it exists),
/// with the given partition capacity.
pub async fn sqlite_bus(
    dir: &std::path::Path,
    partition_capacity: usize,
) -> anyhow::Result<Arc<dyn EventBus>> {
    let bus = SqliteBus::open(&SqliteBusConfig {
        path: dir.join("bus.db"),
        partition_capacity,
        partitions: 3,
        publish_timeout_ms: 30_000,
        ..SqliteBusConfig::default()
    })
    .await?;
    Ok(Arc::new(bus))
}

/// A TCP listener on a free loopback port.
pub async fn listener() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0")
}

/// A free loopback port, for processes configured by address.
pub use pushmail_common::listen::free_port;

/// `GET path` over HTTP/1.0; returns the status code and the body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http_request(addr, "GET", path, &[], b"").await
}

/// One HTTP/1.0 request with `headers` and `body`; returns the status code
/// and the body.
pub async fn http_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method != "GET" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Polls `/readyz` until it answers 200; fails with the last answer.
pub async fn wait_ready(
    admin: std::net::SocketAddr,
    limit: std::time::Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let last = http_get(admin, "/readyz").await;
        if matches!(last, Ok((200, _))) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("{admin} not ready within {limit:?}; last answer: {last:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The test PostgreSQL server (`PUSHMAIL_TEST_POSTGRES`), as a URL to its
/// maintenance database.
pub fn postgres_admin_url() -> String {
    std::env::var("PUSHMAIL_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database of its own for one test, dropped by [`TestDatabase::drop_database`].
pub struct TestDatabase {
    /// URL of the new database.
    pub url: String,
    name: String,
}

impl TestDatabase {
    /// Creates a fresh, empty database.
    pub async fn create() -> anyhow::Result<Self> {
        use sqlx::Connection as _;
        let admin = postgres_admin_url();
        let mut connection = sqlx::PgConnection::connect(&admin).await.map_err(|e| {
            anyhow::anyhow!(
                "PostgreSQL at {admin} unreachable ({e}); run `bash scripts/provision.sh`"
            )
        })?;
        let name = unique("pushmail_test").replace('-', "_");
        // The name is ours (a UUID), never input: safe to splice.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut connection)
            .await?;
        let base = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(base, _)| base);
        Ok(Self {
            url: format!("{base}/{name}"),
            name,
        })
    }

    /// How many sqlx migrations the database has applied.
    pub async fn migrations_applied(&self) -> anyhow::Result<i64> {
        use sqlx::Connection as _;
        let mut connection = sqlx::PgConnection::connect(&self.url).await?;
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(&mut connection)
                .await?,
        )
    }

    /// Drops the database (forcing out any connection left over).
    pub async fn drop_database(self) -> anyhow::Result<()> {
        use sqlx::Connection as _;
        let mut connection = sqlx::PgConnection::connect(&postgres_admin_url()).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut connection)
        .await?;
        Ok(())
    }
}

/// The six-digit code in a one-time-code SMS text.
pub fn otp_code(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .map(str::to_owned)
}

/// A mainland mobile number no other test uses.
pub fn msisdn() -> String {
    let n = uuid::Uuid::now_v7().as_u128() % 1_000_000_000;
    format!("+86139{n:08}").chars().take(14).collect()
}

/// The test Redis (`PUSHMAIL_TEST_REDIS`) with a key prefix of its own.
/// It keeps nothing on disk (the machine's Redis runs without an
/// append-only file), so the durable families accept it explicitly.
pub fn redis_config() -> pushmail_common::redis::RedisConfig {
    pushmail_common::redis::RedisConfig {
        url: pushmail_common::redact::SecretUrl::new(
            std::env::var("PUSHMAIL_TEST_REDIS")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned()),
        ),
        key_prefix: format!("{}:", unique("pushmail-test")),
        allow_volatile: true,
        ..Default::default()
    }
}

/// Seed of the test platform's service credential issuer.
pub const SERVICE_ISSUER_SEED: &str =
    "4444444444444444444444444444444444444444444444444444444444444444";
/// Bearer token of operators in tests.
pub const OPERATOR_TOKEN: &str = "5555555555555555555555555555555555555555555555555555555555555555";

/// Test-only binding secrets.
pub fn test_security() -> pushmail_binding::keys::SecurityConfig {
    use pushmail_common::redact::Secret;
    pushmail_binding::keys::SecurityConfig {
        credentials_key: Secret::new("11".repeat(32)),
        otp_key: Secret::new("22".repeat(32)),
        device_token_seed: Secret::new("33".repeat(32)),
        service_keys: service_keys(),
        operator_token: Secret::new(OPERATOR_TOKEN),
        ..Default::default()
    }
}

/// What every test server trusts: the test issuer's public key.
pub fn service_keys() -> pushmail_common::service_identity::ServiceKeys {
    let issuer =
        pushmail_common::service_identity::CredentialIssuer::from_seed_hex(SERVICE_ISSUER_SEED)
            .expect("test seed");
    pushmail_common::service_identity::ServiceKeys::new([issuer.public_key_hex()])
}

/// The test credential of `service` (what `pushmail keys` gives it).
pub fn credential(service: pushmail_common::service_identity::Service) -> String {
    pushmail_common::service_identity::CredentialIssuer::from_seed_hex(SERVICE_ISSUER_SEED)
        .expect("test seed")
        .mint(service, 0)
        .expose()
        .to_owned()
}

/// The same as a config secret.
pub fn credential_secret(
    service: pushmail_common::service_identity::Service,
) -> pushmail_common::redact::Secret {
    pushmail_common::redact::Secret::new(credential(service))
}

/// A delivery-log consumer group of this binding's own: on the shared
/// broker, binding nodes of other tests must not take its partitions (their
/// databases do not know this test's accounts and would drop its receipts).
pub fn test_deliveries() -> pushmail_binding::deliveries::DeliveriesConfig {
    pushmail_binding::deliveries::DeliveriesConfig {
        group: unique("binding-deliveries"),
        ..Default::default()
    }
}

/// The device-token public key matching [`test_security`]'s seed.
pub fn test_token_public_key() -> String {
    let seed = test_security().device_token_seed;
    pushmail_device_token::TokenSigner::from_seed_hex(seed.expose())
        .expect("test seed")
        .public_key_hex()
}

/// A session config for tests: Redis directory under a fresh prefix, the
/// test broker, the test token key.
pub fn session_config() -> pushmail_session::Config {
    let redis = redis_config();
    let mut config = pushmail_session::Config {
        directory: pushmail_common::redis::StateStoreConfig {
            kind: pushmail_common::redis::StateStoreKind::Redis,
            redis: redis.clone(),
            ..Default::default()
        },
        outbox: pushmail_outbox::OutboxSettings {
            redis,
            ..Default::default()
        },
        bus: pushmail_common::bus::BusConfig {
            kafka: kafka_config(),
            ..Default::default()
        },
        ..Default::default()
    };
    config.tokens.public_key = test_token_public_key();
    config.security.service_keys = service_keys();
    config.security.credential =
        credential_secret(pushmail_common::service_identity::Service::Session);
    config
}

/// Presents one service's credential on every call (a tonic interceptor).
#[derive(Clone)]
pub struct AsService(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl AsService {
    /// Calls as `service`.
    pub fn new(service: pushmail_common::service_identity::Service) -> Self {
        Self(
            format!("Bearer {}", credential(service))
                .parse()
                .expect("a credential is ASCII"),
        )
    }
}

impl tonic::service::Interceptor for AsService {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A session client that presents a service's credential.
pub type SessionClient = pushmail_proto::session::v1::session_service_client::SessionServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, AsService>,
>;

/// Connects a [`SessionClient`] to `address` (`http://…`) as dispatch
/// (which delivers).
pub async fn session_client(address: String) -> SessionClient {
    session_client_as(
        address,
        pushmail_common::service_identity::Service::Dispatch,
    )
    .await
}

/// Connects a [`SessionClient`] to `address` as `service`.
pub async fn session_client_as(
    address: String,
    service: pushmail_common::service_identity::Service,
) -> SessionClient {
    let channel = tonic::transport::Channel::from_shared(address)
        .expect("address")
        .connect()
        .await
        .expect("session reachable");
    pushmail_proto::session::v1::session_service_client::SessionServiceClient::with_interceptor(
        channel,
        AsService::new(service),
    )
}

/// `message` with `authorization: Bearer <token>` metadata.
pub fn authed<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("a token is ASCII"),
    );
    request
}
