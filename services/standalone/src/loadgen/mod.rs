//! `pushmail loadgen`: the end-to-end load generator. It starts the
//! standalone platform once per bus of `--buses` (the durable SQLite bus,
//! then the memory one as its baseline), and with `--kafka` once more with
//! the services sharing a Kafka bus, enrolls `--devices`
//! phones through binding's admin API, connects them from helper processes
//! spread over several source addresses, injects mail over SMTP at a
//! constant rate (open loop: a slow platform does not slow the sender), and
//! records in HDR histograms how long each mail took from the end of its
//! SMTP DATA to the phone. With `--eas` the first bus runs once more with
//! the phones as stock mail apps holding ActiveSync Pings (`pings`), timed
//! from the end of DATA to the Ping's answer. A Markdown report and a PNG
//! plot are written.

mod pings;
mod plot;
mod report;
mod smtp;
mod swarm;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use pushmail_common::bus::{BusKind, EventBus, KafkaBus, KafkaConfig};
use pushmail_common::config::ServiceConfig as _;
use pushmail_common::redis::StateStoreKind;
use pushmail_proto::binding::v1 as pb;
use tokio_util::sync::CancellationToken;

use crate::config::StandaloneConfig;
use crate::enroll::{Admin, CodeReader, authed, bind, enroll};

pub(crate) use swarm::{SwarmArgs, run as swarm};

/// Arguments of `pushmail loadgen`.
#[derive(Debug, clap::Args)]
pub(crate) struct LoadgenArgs {
    #[command(flatten)]
    pub(crate) service: pushmail_common::cli::ServiceArgs,
    /// Mails per second, spread over the accounts.
    #[arg(long, default_value_t = 1_000)]
    rate: u32,
    /// How long mail is injected, seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u32,
    /// Accounts, each with one phone.
    #[arg(long, default_value_t = 1_000)]
    devices: usize,
    /// Source addresses the phones connect from, one helper process each.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5"
    )]
    sources: Vec<IpAddr>,
    /// SMTP connections the mail is sent over.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// The standalone runs' buses, in order: the first is measured against
    /// the goals, the others are its baselines in the same run.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,memory")]
    pub(crate) buses: Vec<StandaloneBus>,
    /// Also run the platform over Kafka at these brokers (a fresh broker:
    /// topics and groups are made per run).
    #[arg(long)]
    kafka: Option<String>,
    /// Also run the first bus with the phones as ActiveSync Pings (app
    /// passwords, each holding a Ping on its Inbox) instead of WebSocket
    /// devices; timed against the WebSocket run of that bus.
    #[arg(long)]
    pub(crate) eas: bool,
    /// Where the Markdown report goes (the plot goes beside it, `.png`).
    #[arg(long, default_value = "bench/reports/e2e.md")]
    report: PathBuf,
}

/// The bus of a standalone run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum StandaloneBus {
    /// Durable: the bus, outboxes, dispatch state and marks in SQLite files
    /// under the run's data directory (standalone's defaults).
    Sqlite,
    /// The bus, outboxes, dispatch state and marks in memory only, as
    /// standalone was before it was made durable: the baseline of its cost.
    Memory,
}

impl StandaloneBus {
    fn kind(self) -> BusKind {
        match self {
            Self::Sqlite => BusKind::Sqlite,
            Self::Memory => BusKind::Memory,
        }
    }

    /// `config` with this bus, and with the memory bus the outboxes,
    /// dispatch state and marks in memory too.
    fn apply(self, mut config: StandaloneConfig) -> StandaloneConfig {
        config.bus.kind = self.kind();
        if self == Self::Memory {
            config.session.outbox.kind = StateStoreKind::Memory;
            config.dispatch.state.kind = StateStoreKind::Memory;
            config.ingest.marks.kind = StateStoreKind::Memory;
        }
        config
    }

    /// The run's name in the report.
    fn run_name(self) -> &'static str {
        match self {
            Self::Sqlite => "standalone (durable)",
            Self::Memory => "standalone (in memory)",
        }
    }
}

/// The head every benchmark report's first table shares.
const TABLE_HEAD: &str = "| metric | this run | baseline (same run) | baseline value | ratio | goal |\n|---|---|---|---|---|---|";

impl LoadgenArgs {
    /// Refuses arguments no run can use, before anything starts.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.rate > 0 && self.seconds > 0 && self.devices > 0 && self.connections > 0,
            "--rate, --seconds, --devices and --connections must be positive"
        );
        anyhow::ensure!(!self.sources.is_empty(), "--sources needs an address");
        anyhow::ensure!(!self.buses.is_empty(), "--buses needs a bus");
        Ok(())
    }
}

/// What one run measured.
pub(crate) struct Run {
    pub(crate) name: String,
    /// In each subject of the run's mail.
    pub(crate) tag: String,
    pub(crate) outcome: smtp::Outcome,
    pub(crate) arrivals: swarm::Arrivals,
}

/// Runs the standalone measurement on each bus asked for, then the Kafka
/// one when asked, and writes the report.
pub(crate) async fn run(
    config: StandaloneConfig,
    args: LoadgenArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Every run's data stays until the end: deleting tens of thousands of
    // blob files makes ext4 scan past the freed inodes on every create for
    // a while after, which would slow the next run's SMTP acceptance.
    let data = tempfile::tempdir().context("data directory")?;
    let mut runs = Vec::new();
    for (i, bus) in args.buses.iter().enumerate() {
        let config = bus.apply(config.clone());
        let dir = data.path().join(format!("standalone-{i}"));
        runs.push(one_run(bus.run_name(), config, None, &args, &dir, &shutdown).await?);
    }
    if let Some(brokers) = &args.kafka {
        let kafka = KafkaConfig {
            brokers: brokers.clone(),
            // What the goal names; the other settings are production's.
            fetch_wait_max_ms: 10,
            session_timeout_ms: 6_000,
            replication_factor: 1,
            ..KafkaConfig::default()
        };
        let bus = KafkaBus::new(&kafka, "pushmail-loadgen").context("Kafka bus")?;
        bus.check()
            .await
            .with_context(|| format!("Kafka at {brokers}"))?;
        let bus: Arc<dyn EventBus> = Arc::new(bus);
        runs.push(
            one_run(
                "Kafka",
                config.clone(),
                Some((bus, kafka)),
                &args,
                &data.path().join("kafka"),
                &shutdown,
            )
            .await?,
        );
    }
    // Last, so the report finds the standalone and Kafka runs where they
    // always were.
    if args.eas
        && let Some(bus) = args.buses.first()
    {
        let config = bus.apply(config);
        let dir = data.path().join("eas");
        let name = format!("{} (EAS Pings)", bus.run_name());
        runs.push(eas_run(&name, config, &args, &dir, &shutdown).await?);
    }
    report::write(&args, &runs)
}

async fn one_run(
    name: &str,
    config: StandaloneConfig,
    kafka: Option<(Arc<dyn EventBus>, KafkaConfig)>,
    args: &LoadgenArgs,
    data: &std::path::Path,
    shutdown: &CancellationToken,
) -> anyhow::Result<Run> {
    std::fs::create_dir_all(data).context("data directory")?;
    let config = prepare(config, data, kafka.as_ref().map(|(_, k)| k))?;
    let stop = shutdown.child_token();
    let platform = crate::standalone::start(config, kafka.map(|(bus, _)| bus), stop.clone())
        .await
        .with_context(|| format!("{name} platform"))?;
    let config = platform.config.clone();
    let bus = platform.bus.clone();
    let running = tokio::spawn(platform.join());
    eprintln!("loadgen [{name}]: enrolling {} phones", args.devices);
    let phones = enroll_all(&config, &bus, args.devices).await?;
    let swarm = swarm::Swarm::start(
        &format!("ws://{}", config.session.devices.addr),
        &args.sources,
        phones.iter().map(|p| p.1.as_str()),
    )
    .await?;
    eprintln!(
        "loadgen [{name}]: {} phones connected from {:?}; {} mails/s for {} s",
        args.devices, args.sources, args.rate, args.seconds
    );
    let plan = plan(
        &config,
        args,
        phones.into_iter().map(|p| p.0).collect(),
        "lg",
    )?;
    let outcome = smtp::inject(&plan).await?;
    let arrivals = swarm
        .collect(&plan.tag, outcome.accepted(), Duration::from_secs(30))
        .await?;
    stop.cancel();
    running.await.context("platform task")??;
    Ok(Run {
        name: name.to_owned(),
        tag: plan.tag,
        outcome,
        arrivals,
    })
}

/// The mail of a run to `recipients` at the platform's SMTP address, its
/// subjects tagged `kind` and the time.
fn plan(
    config: &StandaloneConfig,
    args: &LoadgenArgs,
    recipients: Vec<String>,
    kind: &str,
) -> anyhow::Result<smtp::Plan> {
    Ok(smtp::Plan {
        server: config
            .ingest
            .smtp
            .listen
            .parse()
            .context("ingest SMTP address")?,
        rate: args.rate,
        seconds: args.seconds,
        connections: args.connections,
        recipients,
        tag: format!("{kind}{}", pushmail_common::clock::now_ms()),
    })
}

/// The first bus again, the phones as ActiveSync Pings: each answered
/// Ping is matched to the mail it tells (its phone's first unmatched mail
/// sent before it), so the report reads it as a phone's arrival.
async fn eas_run(
    name: &str,
    config: StandaloneConfig,
    args: &LoadgenArgs,
    data: &std::path::Path,
    shutdown: &CancellationToken,
) -> anyhow::Result<Run> {
    std::fs::create_dir_all(data).context("data directory")?;
    let config = prepare(config, data, None)?;
    let stop = shutdown.child_token();
    let platform = crate::standalone::start(config, None, stop.clone())
        .await
        .with_context(|| format!("{name} platform"))?;
    let config = platform.config.clone();
    let bus = platform.bus.clone();
    let running = tokio::spawn(platform.join());
    eprintln!(
        "loadgen [{name}]: enrolling {} phones with app passwords",
        args.devices
    );
    let (addresses, phones) = enroll_eas(&config, &bus, args.devices).await?;
    let front = config.activesync.server.http_addr;
    let pings = pings::Pings::start(front, &args.sources, phones).await?;
    eprintln!(
        "loadgen [{name}]: {} of {} phones hold a Ping; {} mails/s for {} s",
        pings.holding(),
        args.devices,
        args.rate,
        args.seconds
    );
    // The last Pings reach their session node after their request is sent.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let plan = plan(&config, args, addresses, "eas")?;
    let outcome = smtp::inject(&plan).await?;
    let answers = pings
        .collect(outcome.accepted(), Duration::from_secs(30))
        .await;
    if let Some(first) = answers.failures.first() {
        eprintln!(
            "loadgen [{name}]: {} phones gave up; the first: {first}",
            answers.failures.len()
        );
    }
    stop.cancel();
    running.await.context("platform task")??;
    let arrivals = matched(&plan, &outcome, answers);
    Ok(Run {
        name: name.to_owned(),
        tag: plan.tag,
        outcome,
        arrivals,
    })
}

/// Each phone's answers matched to its mail: mail `i` went to phone
/// `i % phones`, and is told by that phone's first answer after its end of
/// DATA that no earlier mail took.
fn matched(plan: &smtp::Plan, outcome: &smtp::Outcome, answers: pings::Answers) -> swarm::Arrivals {
    let phones = plan.recipients.len();
    let mut arrivals = swarm::Arrivals {
        connects: answers.holding,
        failures: answers.failures,
        ..swarm::Arrivals::default()
    };
    let mut woken = answers.woken;
    for times in woken.values_mut() {
        times.sort_unstable();
    }
    let mut used: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    // By end of DATA: a phone's mails left on several SMTP connections.
    let mut sent: Vec<(usize, &smtp::Accepted)> = outcome
        .mails
        .iter()
        .enumerate()
        .filter_map(|(i, mail)| mail.as_ref().map(|mail| (i, mail)))
        .collect();
    sent.sort_by_key(|(_, mail)| mail.data_end_ns);
    for (i, mail) in sent {
        let phone = i % phones;
        let Some(times) = woken.get(&phone) else {
            continue;
        };
        let next = used.entry(phone).or_default();
        while *next < times.len() && times[*next] < mail.data_end_ns {
            *next += 1;
        }
        if let Some(&at) = times.get(*next) {
            *next += 1;
            arrivals
                .by_subject
                .insert(format!("{} {i}", plan.tag), vec![at]);
        }
    }
    arrivals
}

/// `count` accounts of a fresh tenant, each with a bound number and an
/// app password for one phone.
async fn enroll_eas(
    config: &StandaloneConfig,
    bus: &Arc<dyn EventBus>,
    count: usize,
) -> anyhow::Result<(Vec<String>, Vec<pings::EasPhone>)> {
    let mut admin = Admin::connect(format!("http://{}", config.binding.server.grpc_addr))
        .await
        .context("binding")?;
    let run = pushmail_common::clock::now_ms();
    let tenant = loadgen_tenant(&mut admin, config, run, count).await?;
    let mut codes = CodeReader::new(bus, format!("loadgen-{run}-eas-codes")).await?;
    let mut addresses = Vec::with_capacity(count);
    let mut phones = Vec::with_capacity(count);
    for i in 0..count {
        let address = format!("eas{i}@loadgen.example");
        let msisdn = format!("+86138{i:08}");
        let account = bind(&mut admin, &mut codes, &tenant, &address, &msisdn).await?;
        let made = admin
            .create_app_password(authed(
                &tenant.api_key,
                pb::CreateAppPasswordRequest {
                    tenant_id: tenant.tenant_id.clone(),
                    account_id: account.account_id,
                    msisdn,
                    label: "loadgen".to_owned(),
                },
            )?)
            .await
            .with_context(|| format!("app password of {address}"))?
            .into_inner();
        phones.push(pings::EasPhone {
            address: address.clone(),
            password: made.password,
            device: format!("loadgen{i:06}"),
        });
        addresses.push(address);
    }
    Ok((addresses, phones))
}

/// A tenant for `count` phones, with a code for each.
async fn loadgen_tenant(
    admin: &mut Admin,
    config: &StandaloneConfig,
    run: i64,
    count: usize,
) -> anyhow::Result<pb::CreateTenantResponse> {
    Ok(admin
        .create_tenant(authed(
            config.binding.security.operator_token.expose(),
            pb::CreateTenantRequest {
                name: format!("loadgen-{run}"),
                max_accounts: u32::try_from(count)?,
                sms_per_day: u32::try_from(count)?.saturating_mul(2),
                push_per_minute: 0,
                // One code per phone enrolled.
                codes_per_day: u32::try_from(count)?,
                ..Default::default()
            },
        )?)
        .await
        .context("loadgen tenant")?
        .into_inner())
}

/// The user's config on free loopback ports and a fresh data directory;
/// every mail its own notification so each can be timed.
fn prepare(
    mut config: StandaloneConfig,
    data: &std::path::Path,
    kafka: Option<&KafkaConfig>,
) -> anyhow::Result<StandaloneConfig> {
    let port = || -> anyhow::Result<std::net::SocketAddr> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        Ok(listener.local_addr()?)
    };
    config.demo = false;
    config.relocate(data);
    let binding = port()?;
    let session = port()?;
    let transcode = port()?;
    config.binding.server.grpc_addr = binding;
    config.binding.server.admin_addr = port()?;
    config.session.server.grpc_addr = session;
    config.session.server.admin_addr = port()?;
    config.session.devices.addr = port()?;
    config.session.devices.advertise = format!("http://{session}");
    config.transcode.server.grpc_addr = transcode;
    config.transcode.server.admin_addr = port()?;
    config.ingest.server.admin_addr = port()?;
    config.ingest.smtp.listen = port()?.to_string();
    config.ingest.smtp.lmtp_listen = port()?.to_string();
    config.ingest.webhook.listen = port()?.to_string();
    config.dispatch.server.admin_addr = port()?;
    config.gateway.server.http_addr = port()?;
    config.gateway.server.admin_addr = port()?;
    let mailbox = port()?;
    config.mailbox.server.grpc_addr = mailbox;
    config.mailbox.server.admin_addr = port()?;
    config.mailbox.binding.endpoint = format!("http://{binding}");
    config.gateway.mailbox.endpoint = format!("http://{mailbox}");
    for upstream in [&mut config.ingest.binding, &mut config.dispatch.binding] {
        upstream.endpoint = format!("http://{binding}");
    }
    config.gateway.binding.endpoint = format!("http://{binding}");
    config.gateway.session.endpoint = format!("http://{session}");
    config.dispatch.session.endpoint = format!("http://{session}");
    config.gateway.transcode.endpoint = format!("http://{transcode}");
    config.activesync.server.http_addr = port()?;
    config.activesync.server.admin_addr = port()?;
    config.activesync.binding.endpoint = format!("http://{binding}");
    config.activesync.mailbox.endpoint = format!("http://{mailbox}");
    config.activesync.session.endpoint = format!("http://{session}");
    config.dispatch.delivery.public_url = format!("http://{}", config.gateway.server.http_addr);
    config.session.outbox.coalesce_ms = 0;
    config.dispatch.outbox.coalesce_ms = 0;
    // The run's own consumer groups: a Kafka broker remembers earlier runs'.
    let run = pushmail_common::clock::now_ms();
    config.dispatch.delivery.group = format!("loadgen-{run}-dispatch");
    if let Some(kafka) = kafka {
        config.binding.bus.kafka = kafka.clone();
        config.session.bus.kafka = kafka.clone();
        config.ingest.bus.kafka = kafka.clone();
        config.dispatch.bus.kafka = kafka.clone();
        config.binding.deliveries.group = format!("loadgen-{run}-deliveries");
    }
    config.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(config)
}

/// `count` accounts of a fresh tenant, a phone each: (address, token).
async fn enroll_all(
    config: &StandaloneConfig,
    bus: &Arc<dyn EventBus>,
    count: usize,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut admin = Admin::connect(format!("http://{}", config.binding.server.grpc_addr))
        .await
        .context("binding")?;
    let run = pushmail_common::clock::now_ms();
    let tenant = loadgen_tenant(&mut admin, config, run, count).await?;
    let mut codes = CodeReader::new(bus, format!("loadgen-{run}-codes")).await?;
    let mut phones = Vec::with_capacity(count);
    for i in 0..count {
        let address = format!("user{i}@loadgen.example");
        let msisdn = format!("+86139{i:08}");
        let phone = enroll(
            &mut admin, &mut codes, &tenant, &address, &msisdn, "loadgen",
        )
        .await?;
        phones.push((address, phone.device_token));
    }
    Ok(phones)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(data_end_ns: u64) -> Option<smtp::Accepted> {
        Some(smtp::Accepted {
            data_end_ns,
            accepted_ns: data_end_ns + 1,
            late_us: 0,
        })
    }

    #[test]
    fn each_answer_tells_one_mail_of_its_phone_sent_before_it() {
        // Two phones; mails 0 and 2 go to phone 0, 1 and 3 to phone 1.
        let plan = smtp::Plan {
            server: "127.0.0.1:25".parse().unwrap(),
            rate: 1,
            seconds: 4,
            connections: 1,
            recipients: vec!["a@x".to_owned(), "b@x".to_owned()],
            tag: "t".to_owned(),
        };
        let outcome = smtp::Outcome {
            mails: vec![accepted(100), accepted(110), accepted(300), None],
            refusals: std::collections::BTreeMap::new(),
            wall: Duration::from_secs(4),
        };
        let answers = pings::Answers {
            // Phone 0: a spare answer before any mail, then one for each.
            // Phone 1: one answer, for mail 1 (mail 3 was refused).
            woken: std::collections::HashMap::from([(0, vec![350, 50, 150]), (1, vec![120])]),
            holding: 2,
            failures: Vec::new(),
        };
        let arrivals = matched(&plan, &outcome, answers);
        let at = |i: usize| arrivals.by_subject.get(&format!("t {i}")).cloned();
        assert_eq!(
            (at(0), at(1), at(2), at(3)),
            (Some(vec![150]), Some(vec![120]), Some(vec![350]), None)
        );
    }
}
