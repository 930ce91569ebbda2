//! Redis is a cache or a durable store on purpose ([2/10]): a key family
//! that must not be lost (the outbox, dispatch's held mail and SMS claims,
//! ingest's marks, the SMPP connector's state) refuses a Redis that would
//! lose it at a restart, naming what and why, unless the operator accepts
//! that explicitly; caches and leases take any Redis. Each Redis here is a
//! private `redis-server` started with the persistence under test.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::time::Duration;

use pushmail_common::redact::SecretUrl;
use pushmail_common::redis::{Durability, RedisConfig, RedisError, connect_for};
use pushmail_integration_tests::free_port;

/// A private Redis, killed when dropped.
struct PrivateRedis {
    port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl PrivateRedis {
    fn start(persistence: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(dir.path())
            .args(persistence)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed by scripts/provision.sh");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            port,
            child,
            _dir: dir,
        }
    }

    fn config(&self) -> RedisConfig {
        RedisConfig {
            url: SecretUrl::new(format!("redis://127.0.0.1:{}/0", self.port)),
            ..RedisConfig::default()
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const OUTBOX: Durability = Durability::Durable("the per-device outbox");

#[tokio::test]
async fn a_durable_family_refuses_a_redis_that_would_lose_it() {
    let volatile = PrivateRedis::start(&["--appendonly", "no"]);
    let err = connect_for(&volatile.config(), OUTBOX).await.unwrap_err();
    assert!(matches!(err, RedisError::Volatile { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("the per-device outbox"), "{text}");
    assert!(text.contains("appendonly is off"), "{text}");
    assert!(
        text.contains("allow_volatile"),
        "the way out is named: {text}"
    );

    // A cache takes it; so does a durable family the operator lets go.
    connect_for(&volatile.config(), Durability::Cache)
        .await
        .unwrap();
    let accepted = RedisConfig {
        allow_volatile: true,
        ..volatile.config()
    };
    connect_for(&accepted, OUTBOX).await.unwrap();

    // An append-only file that is never fsynced loses what the OS holds.
    let unsynced = PrivateRedis::start(&["--appendonly", "yes", "--appendfsync", "no"]);
    let err = connect_for(&unsynced.config(), OUTBOX).await.unwrap_err();
    assert!(err.to_string().contains("appendfsync is no"), "{err}");

    let durable = PrivateRedis::start(&["--appendonly", "yes", "--appendfsync", "everysec"]);
    connect_for(&durable.config(), OUTBOX).await.unwrap();
}

/// The check is where the services connect: dispatch will not start on a
/// Redis that would lose its outbox and held mail.
#[tokio::test]
async fn dispatch_refuses_to_start_on_a_volatile_redis() {
    let volatile = PrivateRedis::start(&["--appendonly", "no"]);
    let config = pushmail_dispatch::Config {
        state: pushmail_common::redis::StateStoreConfig {
            kind: pushmail_common::redis::StateStoreKind::Redis,
            redis: volatile.config(),
            ..Default::default()
        },
        outbox: pushmail_outbox::OutboxSettings {
            redis: volatile.config(),
            ..Default::default()
        },
        ..Default::default()
    };
    let bus = pushmail_integration_tests::memory_bus(1_000);
    let err = pushmail_dispatch::Deps::connect(&config, bus)
        .await
        .err()
        .expect("dispatch connected to a Redis that would lose its state");
    let text = format!("{err:#}");
    assert!(text.contains("dispatch state"), "{text}");
}
