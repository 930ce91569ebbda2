//! Transcode and the gateway started in-process on free ports: the device
//! fetch path, over the real blob store and a real binding.

use std::net::SocketAddr;
use std::path::Path;

use pushmail_common::health::Readiness;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use pushmail_common::service_identity::Service;

use crate::credential_secret;

/// A running service task.
pub struct Node<E> {
    /// Its gRPC (transcode) or public HTTP (gateway) address.
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<Result<(), E>>,
}

impl<E: std::error::Error + Send + Sync + 'static> Node<E> {
    /// Stops it and reports how it ended.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        Ok(self.task.await??)
    }
}

/// The transcode test config: blobs under `blobs`, the test service keys,
/// workers run from the `transcode-node` binary built beside the tests.
pub fn transcode_config(blobs: &Path) -> pushmail_transcode::Config {
    let mut config = pushmail_transcode::Config::default();
    config.blob.dir = blobs.to_path_buf();
    config.security.service_keys = crate::service_keys();
    config.workers.program = Some(transcode_worker());
    // Test builds convert a large photo 10× slower than shipped ones.
    config.limits.job_timeout_ms = 20_000;
    config
}

/// The `transcode-node` binary, which serves as a converter worker: a test
/// runs transcode in its own process, whose executable is the test
/// harness, so the workers need a real service binary. Cargo builds a
/// package's binaries before its tests, into the directory above the
/// tests' `deps/`.
pub fn transcode_worker() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") || dir.ends_with("examples") {
        dir.pop();
    }
    dir.join("transcode-node")
}

/// Starts transcode with `config`.
pub async fn transcode(
    config: pushmail_transcode::Config,
) -> anyhow::Result<Node<pushmail_transcode::Error>> {
    let deps = pushmail_transcode::Deps::connect(&config);
    let listeners = pushmail_common::host::GrpcListeners::ephemeral().await?;
    let addr = listeners.grpc.local_addr()?;
    let stop = CancellationToken::new();
    let task = tokio::spawn(pushmail_transcode::run(
        config,
        deps,
        listeners,
        Readiness::new("transcode"),
        stop.clone(),
    ));
    Ok(Node { addr, stop, task })
}

/// The gateway test config: binding and transcode at their addresses with
/// the gateway's credential, the test device-token key, fast traffic flushes.
pub fn gateway_config(binding: SocketAddr, transcode: SocketAddr) -> pushmail_gateway::Config {
    let mut config = pushmail_gateway::Config::default();
    config.binding.endpoint = format!("http://{binding}");
    config.binding.token = credential_secret(Service::Gateway);
    config.transcode.endpoint = format!("http://{transcode}");
    config.transcode.token = credential_secret(Service::Gateway);
    config.tokens.public_key = crate::test_token_public_key();
    config.portal.secure_cookie = false;
    // No session node in these tests: presence is unknown (`null`), fast.
    config.session.endpoint = "http://127.0.0.1:1".to_owned();
    config.session.token = credential_secret(Service::Gateway);
    config.fetch.traffic_flush_ms = 200;
    config
}

/// Starts the gateway with `config`.
pub async fn gateway(
    config: pushmail_gateway::Config,
) -> anyhow::Result<Node<pushmail_gateway::Error>> {
    let deps = pushmail_gateway::Deps::connect(&config)?;
    let listeners = pushmail_gateway::Listeners {
        http: tokio::net::TcpListener::bind("127.0.0.1:0").await?,
        admin: tokio::net::TcpListener::bind("127.0.0.1:0").await?,
    };
    let addr = listeners.http.local_addr()?;
    let stop = CancellationToken::new();
    let task = tokio::spawn(pushmail_gateway::run(
        config,
        deps,
        listeners,
        Readiness::new("gateway"),
        stop.clone(),
    ));
    Ok(Node { addr, stop, task })
}

/// Waits until something accepts connections at `addr` (a node just spawned).
pub async fn serving(addr: SocketAddr) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("nothing listens at {addr}");
}
