//! A broker of the test's own (tansu, durable `sqlite://` storage) for
//! tests that take the broker down: the shared one serves every other test.
//! The binary comes from `TANSU_BIN` (set by `scripts/env.sh`).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tokio::process::{Child, Command};

/// A private tansu broker.
pub struct PrivateBroker {
    /// `host:port` for clients.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// `sqlite://…` (survives a kill) or `memory://…` (fast, for benchmarks).
    storage: &'static str,
}

impl PrivateBroker {
    /// Starts one on a free port and waits until it accepts connections.
    pub async fn start() -> anyhow::Result<Self> {
        // tansu 0.6 reads the part after `sqlite://` as a relative path.
        Self::start_with("sqlite://tansu.db").await
    }

    /// One keeping records in memory: a benchmark's fresh broker (tansu's
    /// memory storage slows as it fills, so a shared one drifts between runs).
    pub async fn start_in_memory() -> anyhow::Result<Self> {
        Self::start_with("memory://tansu/").await
    }

    async fn start_with(storage: &'static str) -> anyhow::Result<Self> {
        let addr = SocketAddr::from(([127, 0, 0, 1], crate::free_port()));
        let mut broker = Self {
            addr,
            dir: tempfile::tempdir()?,
            child: None,
            storage,
        };
        broker.restart().await?;
        Ok(broker)
    }

    /// Its storage engine, as the broker was started with it (for
    /// benchmark reports).
    pub fn storage(&self) -> &'static str {
        self.storage
    }

    /// The brokers string for a Kafka client.
    pub fn brokers(&self) -> String {
        self.addr.to_string()
    }

    /// The test Kafka settings pointed at this broker.
    pub fn kafka(&self) -> pushmail_common::bus::KafkaConfig {
        pushmail_common::bus::KafkaConfig {
            brokers: self.brokers(),
            ..crate::kafka_config()
        }
    }

    /// A bus on this broker.
    pub async fn bus(
        &self,
        client_id: &str,
    ) -> anyhow::Result<std::sync::Arc<dyn pushmail_common::bus::EventBus>> {
        Ok(pushmail_common::bus::connect(
            &pushmail_common::bus::BusConfig {
                kafka: self.kafka(),
                ..Default::default()
            },
            client_id,
        )
        .await?)
    }

    /// What it logged (for failure reports).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tansu.log")).unwrap_or_default()
    }

    /// Kills it with SIGKILL (what it stored survives).
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// Starts it again on the same port and storage.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill().await?;
        let bin = std::env::var("TANSU_BIN").context(
            "TANSU_BIN is not set: run the tests through `make test` (scripts/env.sh sets it)",
        )?;
        let url = format!("tcp://{}", self.addr);
        let storage = self.storage;
        let log = std::fs::File::create(self.dir.path().join("tansu.log"))?;
        let child = Command::new(&bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", storage])
            .current_dir(self.dir.path())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {bin}"))?;
        self.child = Some(child);
        for _ in 0..300 {
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let log = std::fs::read_to_string(self.dir.path().join("tansu.log")).unwrap_or_default();
        anyhow::bail!("tansu did not listen on {} within 6 s: {log}", self.addr)
    }
}

/// The storage engine of the shared test broker, read from the command line
/// of the process `scripts/provision.sh` started (its pid file under
/// `PUSHMAIL_CACHE`), so a report says what the broker really used; a
/// broker started some other way is "unknown".
pub fn shared_storage() -> String {
    let Ok(cache) = std::env::var("PUSHMAIL_CACHE") else {
        return "unknown".to_owned();
    };
    let pid = std::fs::read_to_string(format!("{cache}/run/tansu.pid")).unwrap_or_default();
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", pid.trim())).unwrap_or_default();
    storage_of(&cmdline).unwrap_or_else(|| "unknown".to_owned())
}

/// The `--storage-engine` argument of a NUL-separated command line.
fn storage_of(cmdline: &[u8]) -> Option<String> {
    let mut args = cmdline.split(|b| *b == 0);
    args.find(|a| *a == b"--storage-engine")?;
    args.next()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .filter(|a| !a.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_storage_engine_is_read_from_the_command_line() {
        let cmdline = b"/x/tansu\0broker\0--storage-engine\0sqlite://tansu.db\0--x\0";
        assert_eq!(
            super::storage_of(cmdline).as_deref(),
            Some("sqlite://tansu.db")
        );
        assert_eq!(super::storage_of(b"/x/tansu\0broker\0"), None);
        assert_eq!(super::storage_of(b"tansu\0--storage-engine\0"), None);
    }
}
