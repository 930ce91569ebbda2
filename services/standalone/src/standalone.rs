//! Every service in one process: one in-process bus shared by all, SQLite
//! files for the binding database, outbox, dispatch state and ingest marks,
//! an in-memory directory, a local blob directory, all under `data_dir`. Services still
//! call each other through their gRPC clients over loopback, so standalone
//! exercises the same code paths as a cluster.

use std::sync::Arc;

use pushmail_device_token::TokenSigner;
use std::time::Duration;

use anyhow::Context as _;
use pushmail_common::bus::{self, EventBus};
use pushmail_common::health::Readiness;
use pushmail_proto::topics;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::StandaloneConfig;

/// How long the services get to report ready before start-up is called failed.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the platform until `shutdown`.
pub(crate) async fn run(
    config: StandaloneConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let platform = start(config, None, shutdown.clone()).await?;
    print_endpoints(&platform.config);
    if platform.config.binding.sms_outbox.enabled {
        let (bus, stop) = (platform.bus.clone(), shutdown.clone());
        tokio::spawn(async move {
            // A guest like the demo: the platform runs on without it.
            if let Err(e) = crate::sms::print(bus, stop).await {
                eprintln!("sms printer: {e:#}");
            }
        });
    }
    if !platform.config.demo {
        crate::guide::print(&platform.config, None);
    } else {
        let (config, bus, stop) = (
            platform.config.clone(),
            platform.bus.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            // The demo is a guest: its failure is reported, the platform runs on.
            if let Err(e) = crate::demo::run(&config, bus, stop).await {
                eprintln!("demo device: {e:#}");
            }
        });
    }
    platform.join().await
}

/// The platform, started and ready.
pub(crate) struct Platform {
    /// The config it runs with (secrets filled in).
    pub(crate) config: StandaloneConfig,
    /// The bus every service shares.
    pub(crate) bus: Arc<dyn EventBus>,
    services: Services,
}

impl Platform {
    /// Waits for every service; the first to stop stops the others.
    pub(crate) async fn join(self) -> anyhow::Result<()> {
        self.services.join().await
    }
}

/// Every service gets its own credential, signed by standalone's issuer
/// key, and every server trusts that key: the same identities and
/// permissions as a cluster (docs/security.md).
fn credentials(config: &mut StandaloneConfig) -> anyhow::Result<()> {
    use pushmail_common::service_identity::{Service, ServiceKeys};
    for (key, configured) in [
        (
            "binding.security.service_keys",
            !config.binding.security.service_keys.is_empty(),
        ),
        (
            "session.security.service_keys",
            !config.session.security.service_keys.is_empty(),
        ),
        (
            "transcode.security.service_keys",
            !config.transcode.security.service_keys.is_empty(),
        ),
        (
            "session.security.credential",
            !config.session.security.credential.is_empty(),
        ),
        (
            "mailbox.security.service_keys",
            !config.mailbox.security.service_keys.is_empty(),
        ),
    ] {
        anyhow::ensure!(
            !configured,
            "{key}: standalone makes its own service credentials; leave it unset"
        );
    }
    let issuer = crate::secrets::issuer(&config.data_dir)?;
    let keys = ServiceKeys::new([issuer.public_key_hex()]);
    config.binding.security.service_keys = keys.clone();
    config.session.security.service_keys = keys.clone();
    config.transcode.security.service_keys = keys.clone();
    config.mailbox.security.service_keys = keys;
    let now = pushmail_common::clock::now_ms();
    let ingest = issuer.mint(Service::Ingest, now);
    let dispatch = issuer.mint(Service::Dispatch, now);
    let gateway = issuer.mint(Service::Gateway, now);
    config.session.security.credential = issuer.mint(Service::Session, now);
    config.ingest.binding.token = ingest;
    config.dispatch.binding.token = dispatch.clone();
    config.dispatch.session.token = dispatch;
    config.mailbox.binding.token = issuer.mint(Service::Mailbox, now);
    let activesync = issuer.mint(Service::ActiveSync, now);
    config.activesync.binding.token = activesync.clone();
    config.activesync.mailbox.token = activesync.clone();
    config.activesync.session.token = activesync;
    for upstream in [
        &mut config.gateway.binding,
        &mut config.gateway.transcode,
        &mut config.gateway.session,
        &mut config.gateway.mailbox,
    ] {
        upstream.token = gateway.clone();
    }
    Ok(())
}

/// The data directory, secrets and credentials in place, and the bus with
/// its topics.
async fn prepare(
    config: &mut StandaloneConfig,
    bus: Option<Arc<dyn EventBus>>,
) -> anyhow::Result<Arc<dyn EventBus>> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("data_dir {}", config.data_dir.display()))?;
    crate::secrets::ensure(&mut config.binding.security, &config.data_dir)?;
    credentials(config)?;
    // Session and the gateway verify the tokens binding signs: the public
    // half of its seed.
    config.session.tokens.public_key =
        TokenSigner::from_seed_hex(config.binding.security.device_token_seed.expose())
            .context("binding.security.device_token_seed")?
            .public_key_hex();
    config.gateway.tokens.public_key = config.session.tokens.public_key.clone();
    let bus: Arc<dyn EventBus> = match bus {
        Some(bus) => bus,
        None => bus::connect(&config.bus, "pushmail-standalone").await?,
    };
    for topic in topics::ALL {
        bus.ensure_topic(topic, config.bus.partitions()).await?;
    }
    Ok(bus)
}

/// Starts every service and waits until all are ready. `bus` replaces the
/// configured one (the load generator's Kafka run); its topics are made here.
pub(crate) async fn start(
    mut config: StandaloneConfig,
    bus: Option<Arc<dyn EventBus>>,
    shutdown: CancellationToken,
) -> anyhow::Result<Platform> {
    let bus = prepare(&mut config, bus).await?;
    let mut services = Services::new(shutdown.clone());

    // Servers first, so their clients find them serving.
    let c = &config.binding;
    let deps = pushmail_binding::Deps::connect(c, bus.clone())
        .await
        .context("binding")?;
    let listeners = pushmail_binding::Listeners::bind(&c.server)
        .await
        .context("binding")?;
    let last = services.last.clone();
    services.spawn_with(pushmail_binding::NAME, last, |r, s| {
        pushmail_binding::run(deps, listeners, r, s)
    });

    // One outbox in this process: dispatch writes what session replays.
    let outbox = config.session.outbox.connect().await.context("outbox")?;
    let c = config.session.clone();
    let mut deps = pushmail_session::Deps::connect(&c, bus.clone())
        .await
        .context("session")?;
    deps.outbox = outbox.clone();
    // Dispatch calls this session node directly, not over loopback gRPC.
    let local_session = pushmail_session::InProcessSessions::new();
    deps.in_process = Some(local_session.clone());
    let listeners = pushmail_session::Listeners::bind(&c)
        .await
        .context("session")?;
    services.spawn(pushmail_session::NAME, |r, s| {
        pushmail_session::run(c, deps, listeners, r, s)
    });

    let c = config.transcode.clone();
    let deps = pushmail_transcode::Deps::connect(&c);
    let listeners = pushmail_transcode::Listeners::bind(&c.server)
        .await
        .context("transcode")?;
    services.spawn(pushmail_transcode::NAME, |r, s| {
        pushmail_transcode::run(c, deps, listeners, r, s)
    });

    let c = &config.ingest;
    let deps = pushmail_ingest::Deps::connect(c, bus.clone())
        .await
        .context("ingest")?;
    let listeners = pushmail_ingest::Listeners::bind(c)
        .await
        .context("ingest")?;
    let ingest = c.clone();
    services.spawn(pushmail_ingest::NAME, |r, s| {
        pushmail_ingest::run(ingest, deps, listeners, r, s)
    });

    let c = config.dispatch.clone();
    let mut deps = pushmail_dispatch::Deps::connect(&c, bus.clone())
        .await
        .context("dispatch")?;
    deps.outbox = outbox;
    deps.local_session = Some(local_session);
    let listeners = pushmail_dispatch::Listeners::bind(&c.server)
        .await
        .context("dispatch")?;
    services.spawn(pushmail_dispatch::NAME, |r, s| {
        pushmail_dispatch::run(c, deps, listeners, r, s)
    });

    start_edge(&config, &bus, &mut services).await?;

    services.wait_ready().await?;
    Ok(Platform {
        config,
        bus,
        services,
    })
}

/// The phone-facing services: the mailbox service, then the gateway in
/// front of it and the fetch path, and the ActiveSync front door.
async fn start_edge(
    config: &StandaloneConfig,
    bus: &Arc<dyn EventBus>,
    services: &mut Services,
) -> anyhow::Result<()> {
    let c = config.mailbox.clone();
    let deps = pushmail_mailbox::Deps::connect(&c, bus.clone())
        .await
        .context("mailbox")?;
    let listeners = pushmail_mailbox::Listeners::bind(&c.server)
        .await
        .context("mailbox")?;
    services.spawn(pushmail_mailbox::NAME, |r, s| {
        pushmail_mailbox::run(c, deps, listeners, r, s)
    });

    let c = config.gateway.clone();
    let deps = pushmail_gateway::Deps::connect(&c).context("gateway")?;
    let listeners = pushmail_gateway::Listeners::bind(&c)
        .await
        .context("gateway")?;
    services.spawn(pushmail_gateway::NAME, |r, s| {
        pushmail_gateway::run(c, deps, listeners, r, s)
    });

    let c = config.activesync.clone();
    let deps = pushmail_activesync::Deps::connect(&c).context("activesync")?;
    let listeners = pushmail_activesync::Listeners::bind(&c)
        .await
        .context("activesync")?;
    services.spawn(pushmail_activesync::NAME, |r, s| {
        pushmail_activesync::run(c, deps, listeners, r, s)
    });
    Ok(())
}

struct Services {
    shutdown: CancellationToken,
    /// Binding's stop: the others' last calls on their way out (dispatch's
    /// traffic flush, the delivery log) go to it, so it stops last.
    last: CancellationToken,
    tasks: JoinSet<(String, anyhow::Result<()>)>,
    readiness: Vec<Readiness>,
}

impl Services {
    fn new(shutdown: CancellationToken) -> Self {
        Self {
            shutdown,
            last: CancellationToken::new(),
            tasks: JoinSet::new(),
            readiness: Vec::new(),
        }
    }

    fn spawn<F, Fut, E>(&mut self, name: &'static str, run: F)
    where
        F: FnOnce(Readiness, CancellationToken) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<anyhow::Error>,
    {
        let stop = self.shutdown.clone();
        self.spawn_with(name, stop, run);
    }

    /// Like [`Services::spawn`], stopped by `stop` (binding: `last`).
    fn spawn_with<F, Fut, E>(&mut self, name: &'static str, stop: CancellationToken, run: F)
    where
        F: FnOnce(Readiness, CancellationToken) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<anyhow::Error>,
    {
        let readiness = Readiness::new(name);
        self.readiness.push(readiness.clone());
        let future = run(readiness, stop);
        self.tasks
            .spawn(async move { (name.to_owned(), future.await.map_err(Into::into)) });
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let all = futures_wait(&self.readiness);
        tokio::time::timeout(READY_TIMEOUT, all)
            .await
            .map_err(|_| anyhow::anyhow!("services not ready within {READY_TIMEOUT:?}"))
    }

    /// Waits for every service; the first to stop stops the others.
    async fn join(mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        while let Some(joined) = self.tasks.join_next().await {
            self.shutdown.cancel();
            if self.tasks.len() <= 1 {
                self.last.cancel();
            }
            let (name, result) = joined.context("service task panicked")?;
            if let Err(err) = result {
                tracing::error!(service = %name, error = format!("{err:#}"), "service failed");
                first_error.get_or_insert(err.context(name));
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

async fn futures_wait(readiness: &[Readiness]) {
    for r in readiness {
        r.wait_started().await;
    }
}

fn print_endpoints(config: &StandaloneConfig) {
    println!("pushmail standalone is ready:");
    println!(
        "  binding    gRPC {}  admin http://{}",
        config.binding.server.grpc_addr, config.binding.server.admin_addr
    );
    println!(
        "  session    gRPC {}  admin http://{}  devices ws://{}/v1/connect",
        config.session.server.grpc_addr,
        config.session.server.admin_addr,
        config.session.devices.addr
    );
    println!(
        "  transcode  gRPC {}  admin http://{}",
        config.transcode.server.grpc_addr, config.transcode.server.admin_addr
    );
    println!(
        "  ingest     smtp {}  lmtp {}  webhook http://{}/v1/webhook/dovecot  admin http://{}",
        config.ingest.smtp.listen,
        config.ingest.smtp.lmtp_listen,
        config.ingest.webhook.listen,
        config.ingest.server.admin_addr
    );
    println!(
        "  dispatch   admin http://{}",
        config.dispatch.server.admin_addr
    );
    println!(
        "  gateway    http://{}  portal http://{}/portal  admin http://{}",
        config.gateway.server.http_addr,
        config.gateway.server.http_addr,
        config.gateway.server.admin_addr
    );
    println!(
        "  activesync http://{}/Microsoft-Server-ActiveSync  admin http://{}",
        config.activesync.server.http_addr, config.activesync.server.admin_addr
    );
    println!("Press Ctrl-C to stop.");
}
