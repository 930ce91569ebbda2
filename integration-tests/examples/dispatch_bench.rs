//! Dispatch throughput and latency, standalone-shaped: one process holds
//! the in-process bus, binding (SQLite), session (memory directory) and
//! dispatch (memory outbox and state), dispatch calling session in-process
//! as standalone does (with `kafka`: the bus is the test broker and
//! dispatch calls session over loopback gRPC, as separate services do);
//! the phones are WebSocket clients in a helper process
//! that ack every notification.
//!
//! 1. Burst: `BURST` mails published at once, spread over the accounts;
//!    notifications acked per second, and per core (this process's CPU time
//!    over the wall time; the phones run in a helper process).
//! 2. Open loop at `RATE` mails/s for `WINDOW`: latency from publishing
//!    `MailArrived` to dispatch's `ACKED` receipt (the device's ack came
//!    back through session), as a histogram.
//! 3. Baseline in the same run: `Deliver` straight to the same devices
//!    the way dispatch reaches session (in-process, or gRPC with `kafka`)
//!    at the same rate, no dispatch.
//!
//! Writes a Markdown report to the path given as the first argument. Run by
//! `make bench`.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark that fails should stop loudly

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pushmail_common::bus::{EventBus, EventContext, SubscribeOptions, encode};
use pushmail_common::health::Readiness;
use pushmail_integration_tests::device::DeviceClient;
use pushmail_integration_tests::measure::{
    TABLE_HEAD, cpu_ticks, helper, ticks_per_second, wait_line,
};
use pushmail_integration_tests::{OPERATOR_TOKEN, authed, memory_bus, test_security};
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::binding::v1::admin_service_client::AdminServiceClient;
use pushmail_proto::events::v1 as events;
use pushmail_proto::session::v1 as spb;
use pushmail_proto::topics;
use tokio_util::sync::CancellationToken;

const DEVICES: usize = 200;
const BURST: usize = 20_000;
const RATE: u64 = 2_000;
const WINDOW: Duration = Duration::from_secs(10);
const GOAL_PER_CORE: f64 = 20_000.0;
const GOAL_KAFKA: f64 = 5_000.0;

struct Platform {
    bus: Arc<dyn EventBus>,
    tenant: String,
    /// (account, device id, token)
    devices: Vec<(String, String, String)>,
    session_grpc: SocketAddr,
    devices_addr: SocketAddr,
    /// Session in this process, as standalone's dispatch calls it.
    local: Option<pushmail_session::InProcessSessions>,
    /// The Kafka run's broker, stopped with the platform.
    broker: Option<pushmail_integration_tests::broker::PrivateBroker>,
}

async fn start(kafka: bool) -> Platform {
    // A fresh broker per run: tansu's memory storage slows as it fills, so
    // the shared test broker would drift from run to run.
    let broker = if kafka {
        Some(
            pushmail_integration_tests::broker::PrivateBroker::start_in_memory()
                .await
                .expect("a broker of the benchmark's own"),
        )
    } else {
        None
    };
    let bus = if let Some(broker) = &broker {
        let linger: u32 = std::env::var("BENCH_LINGER_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5);
        pushmail_common::bus::connect(
            &pushmail_common::bus::BusConfig {
                kafka: pushmail_common::bus::KafkaConfig {
                    linger_ms: linger,
                    ..broker.kafka()
                },
                ..Default::default()
            },
            "dispatch-bench",
        )
        .await
        .expect("the benchmark's broker")
    } else {
        memory_bus(1_000_000)
    };
    let run = pushmail_integration_tests::unique("bench");
    let data = tempfile::tempdir().unwrap().keep();
    let mut binding = pushmail_binding::Config::default();
    binding.database.url = pushmail_common::redact::SecretUrl::new(format!(
        "sqlite://{}/binding.db?mode=rwc",
        data.display()
    ));
    binding.security = test_security();
    binding.cache.shared = pushmail_common::redis::StateStoreConfig::memory();
    let deps = pushmail_binding::Deps::connect(&binding, bus.clone())
        .await
        .unwrap();
    let listeners = pushmail_common::host::GrpcListeners::ephemeral()
        .await
        .unwrap();
    let binding_addr = listeners.grpc.local_addr().unwrap();
    tokio::spawn(pushmail_binding::run(
        deps,
        listeners,
        Readiness::new("binding"),
        CancellationToken::new(),
    ));

    let outbox = pushmail_outbox::OutboxSettings {
        coalesce_ms: 0,
        ..pushmail_outbox::OutboxSettings::memory()
    };
    let shared_outbox = outbox.connect().await.unwrap();
    let mut session = pushmail_integration_tests::session_config();
    session.directory = pushmail_common::redis::StateStoreConfig::memory();
    session.outbox = outbox.clone();
    session.bus.kind = pushmail_common::bus::BusKind::Memory;
    session.telemetry.log_level = "warn".into();
    let listeners = pushmail_session::Listeners::ephemeral().await.unwrap();
    let session_grpc = listeners.server.grpc.local_addr().unwrap();
    let session_admin = listeners.server.admin.local_addr().unwrap();
    let devices_addr = listeners.devices.local_addr().unwrap();
    session.devices.advertise = format!("http://{session_grpc}");
    let mut deps = pushmail_session::Deps::connect(&session, bus.clone())
        .await
        .unwrap();
    deps.outbox = shared_outbox.clone();
    let local = (!kafka).then(pushmail_session::InProcessSessions::new);
    deps.in_process.clone_from(&local);
    tokio::spawn(pushmail_session::run(
        session,
        deps,
        listeners,
        Readiness::new("session"),
        CancellationToken::new(),
    ));
    pushmail_integration_tests::wait_ready(session_admin, Duration::from_secs(30))
        .await
        .unwrap();

    let upstream = |addr: SocketAddr| {
        let mut u = pushmail_common::grpc::UpstreamConfig::at(format!("http://{addr}"));
        u.token = pushmail_integration_tests::credential_secret(
            pushmail_common::service_identity::Service::Dispatch,
        );
        u
    };
    let mut dispatch = pushmail_dispatch::Config {
        binding: upstream(binding_addr),
        session: upstream(session_grpc),
        state: pushmail_common::redis::StateStoreConfig::memory(),
        outbox,
        ..Default::default()
    };
    dispatch.bus.kind = pushmail_common::bus::BusKind::Memory;
    dispatch.delivery.group = format!("{run}-dispatch");
    let mut deps = pushmail_dispatch::Deps::connect(&dispatch, bus.clone())
        .await
        .unwrap();
    deps.outbox = shared_outbox;
    deps.local_session.clone_from(&local);
    let listeners = pushmail_common::host::AdminListener::ephemeral()
        .await
        .unwrap();
    let dispatch_admin = listeners.admin.local_addr().unwrap();
    tokio::spawn(pushmail_dispatch::run(
        dispatch,
        deps,
        listeners,
        Readiness::new("dispatch"),
        CancellationToken::new(),
    ));
    pushmail_integration_tests::wait_ready(dispatch_admin, Duration::from_secs(30))
        .await
        .unwrap();

    // One tenant, an account and a bound device with a push client each.
    let mut admin = AdminServiceClient::connect(format!("http://{binding_addr}"))
        .await
        .unwrap();
    let tenant = admin
        .create_tenant(authed(
            OPERATOR_TOKEN,
            pb::CreateTenantRequest {
                name: "bench".into(),
                max_accounts: DEVICES as u32,
                sms_per_day: 100_000,
                push_per_minute: 0,
                codes_per_day: DEVICES as u32,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut otp = bus
        .subscribe(SubscribeOptions {
            group: format!("{run}-otp"),
            topics: vec![topics::SMS_OUTBOUND.name().into()],
        })
        .await
        .unwrap();
    let mut devices = Vec::with_capacity(DEVICES);
    for i in 0..DEVICES {
        let account = admin
            .create_account(authed(
                &tenant.api_key,
                pb::CreateAccountRequest {
                    tenant_id: tenant.tenant_id.clone(),
                    address: format!("user{i}@bench.example"),
                    kind: pb::AccountKind::EnterpriseForwarded.into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let msisdn = format!("+86139{i:08}");
        let started = admin
            .start_binding(authed(
                &tenant.api_key,
                pb::StartBindingRequest {
                    tenant_id: tenant.tenant_id.clone(),
                    account_id: account.account_id.clone(),
                    msisdn: msisdn.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let code = loop {
            let record = otp.next().await.unwrap();
            otp.commit(&record).await.unwrap();
            // The broker may hold other runs' codes for the same numbers.
            if record.headers.get(pushmail_common::bus::header::TENANT_ID)
                != Some(&tenant.tenant_id)
            {
                continue;
            }
            let sms = pushmail_common::bus::decode(topics::SMS_OUTBOUND, &record).unwrap();
            if let (true, Some(events::sms_outbound::Body::Text(text))) =
                (sms.msisdn == msisdn, sms.body)
            {
                break pushmail_integration_tests::otp_code(&text).unwrap();
            }
        };
        admin
            .verify_binding(authed(
                &tenant.api_key,
                pb::VerifyBindingRequest {
                    tenant_id: tenant.tenant_id.clone(),
                    binding_id: started.binding_id,
                    code,
                },
            ))
            .await
            .unwrap();
        let registered = admin
            .register_device(authed(
                &tenant.api_key,
                pb::RegisterDeviceRequest {
                    tenant_id: tenant.tenant_id.clone(),
                    msisdn,
                    label: "bench".into(),
                    has_push_client: true,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        devices.push((
            account.account_id,
            registered.device.unwrap().device_id,
            registered.device_token,
        ));
    }
    Platform {
        bus,
        tenant: tenant.tenant_id,
        devices,
        session_grpc,
        devices_addr,
        local,
        broker,
    }
}

/// Phones mode: `phones <device port> <file of tokens>`; connects every
/// phone, prints `ready`, and acks what each gets until killed.
async fn phones(args: &[String]) {
    let addr: SocketAddr = args[0].parse().unwrap();
    let tokens = std::fs::read_to_string(&args[1]).unwrap();
    for token in tokens.lines() {
        let (mut phone, _) = DeviceClient::connect(addr, token, 0).await.unwrap();
        tokio::spawn(async move {
            while let Some(frame) = phone.next_within(Duration::from_secs(3_600)).await {
                if let Some(seq) = frame["seq"].as_u64()
                    && phone.ack(seq).await.is_err()
                {
                    return;
                }
            }
        });
    }
    println!("ready");
    std::future::pending::<()>().await;
}

/// The phones in a process of their own, so this process's CPU is the
/// platform's alone.
async fn connect_phones(platform: &Platform) -> tokio::process::Child {
    let file = std::env::temp_dir().join(format!("dispatch-bench-{}.tokens", std::process::id()));
    let tokens: Vec<&str> = platform
        .devices
        .iter()
        .map(|(_, _, t)| t.as_str())
        .collect();
    std::fs::write(&file, tokens.join("\n")).unwrap();
    let mut child = helper(&[
        "phones",
        &platform.devices_addr.to_string(),
        &file.display().to_string(),
    ]);
    wait_line(&mut child, "ready").await;
    child
}

fn mail(platform: &Platform, n: usize, key: &str) -> pushmail_common::bus::OutboundRecord {
    let (account, _, _) = &platform.devices[n % DEVICES];
    let context = EventContext::new(platform.tenant.clone());
    let event = events::MailArrived {
        meta: Some(context.meta(pushmail_common::clock::now_ms())),
        account_id: account.clone(),
        mailbox: "INBOX".into(),
        idempotency_key: key.to_owned(),
        summary: Some(events::MailSummary {
            from: Some(pushmail_proto::common::v1::Address {
                name: "Boss".into(),
                address: "boss@corp.example".into(),
            }),
            subject: format!("Quarterly report {n}"),
            snippet: "Please find the figures attached.".into(),
            ..Default::default()
        }),
        blob_ref: "sha256-bench".into(),
        ..Default::default()
    };
    encode(topics::MAIL_ARRIVED, account, &context, &event)
}

/// Publish instants by mail key, and acked latencies (ms).
#[derive(Default)]
struct Clock {
    sent: Mutex<HashMap<String, Instant>>,
    acked: Mutex<Vec<(Instant, f64)>>,
}

async fn watch_receipts(bus: &Arc<dyn EventBus>, clock: Arc<Clock>) {
    let mut receipts = bus
        .subscribe(SubscribeOptions {
            group: pushmail_integration_tests::unique("bench-receipts"),
            topics: vec![topics::DELIVERY.name().into()],
        })
        .await
        .unwrap();
    tokio::spawn(async move {
        loop {
            let record = receipts.next().await.unwrap();
            let _ = receipts.commit(&record).await;
            let receipt = pushmail_common::bus::decode(topics::DELIVERY, &record).unwrap();
            if receipt.status() != events::DeliveryStatus::Acked {
                continue;
            }
            let now = Instant::now();
            if let Some(at) = clock.sent.lock().unwrap().remove(&receipt.idempotency_key) {
                clock
                    .acked
                    .lock()
                    .unwrap()
                    .push((now, (now - at).as_secs_f64() * 1_000.0));
            }
        }
    });
}

fn cpu_seconds() -> f64 {
    cpu_ticks(std::process::id()) as f64 / ticks_per_second()
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

struct Phase {
    rate: f64,
    cores: f64,
    latencies: Vec<f64>,
}

async fn wait_for(clock: &Clock, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while clock.acked.lock().unwrap().len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} acked",
            clock.acked.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn burst(platform: &Platform, clock: &Arc<Clock>) -> Phase {
    clock.acked.lock().unwrap().clear();
    let cpu = cpu_seconds();
    let started = Instant::now();
    // Published in concurrent chunks: a Kafka publish waits for the broker.
    for chunk in (0..BURST).collect::<Vec<_>>().chunks(500) {
        let publishes = chunk.iter().map(|&n| {
            let key = format!("burst-{n}");
            clock
                .sent
                .lock()
                .unwrap()
                .insert(key.clone(), Instant::now());
            platform
                .bus
                .publish(topics::MAIL_ARRIVED.name(), mail(platform, n, &key))
        });
        for published in futures::future::join_all(publishes).await {
            published.unwrap();
        }
    }
    wait_for(clock, BURST).await;
    let wall = started.elapsed().as_secs_f64();
    let cores = (cpu_seconds() - cpu) / wall;
    let mut latencies: Vec<f64> = clock
        .acked
        .lock()
        .unwrap()
        .iter()
        .map(|(_, l)| *l)
        .collect();
    latencies.sort_by(f64::total_cmp);
    Phase {
        rate: BURST as f64 / wall,
        cores,
        latencies,
    }
}

async fn open_loop<F, Fut>(send: F) -> (f64, f64)
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let cpu = cpu_seconds();
    let started = Instant::now();
    let total = RATE * WINDOW.as_secs();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut issued = 0;
    while issued < total {
        tick.tick().await;
        let due = (started.elapsed().as_secs_f64() * RATE as f64) as u64;
        while issued < due.min(total) {
            send(issued).await;
            issued += 1;
        }
    }
    (started.elapsed().as_secs_f64(), cpu)
}

/// Worker threads of the platform's runtime (`BENCH_WORKERS`, default 1):
/// the goal is per core, and one worker measures one core's work without
/// the cross-thread wake-ups a second worker adds on this 2-core machine
/// (also shared with the phones' process).
fn workers() -> usize {
    std::env::var("BENCH_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers())
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run());
}

async fn run() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("phones") {
        return phones(&args[1..]).await;
    }
    let out = args.first().expect("report path").clone();
    let kafka = args.get(1).map(String::as_str) == Some("kafka");
    let platform = start(kafka).await;
    let mut phones = connect_phones(&platform).await;
    let clock = Arc::new(Clock::default());
    watch_receipts(&platform.bus, clock.clone()).await;
    // Warm-up: caches, connections, allocations.
    for n in 0..DEVICES {
        let key = format!("warm-{n}");
        clock
            .sent
            .lock()
            .unwrap()
            .insert(key.clone(), Instant::now());
        platform
            .bus
            .publish(topics::MAIL_ARRIVED.name(), mail(&platform, n, &key))
            .await
            .unwrap();
    }
    wait_for(&clock, DEVICES).await;

    let burst = burst(&platform, &clock).await;
    eprintln!("burst: {:.0}/s on {:.2} cores", burst.rate, burst.cores);

    clock.acked.lock().unwrap().clear();
    let (wall, cpu) = open_loop(|n| {
        let key = format!("open-{n}");
        clock
            .sent
            .lock()
            .unwrap()
            .insert(key.clone(), Instant::now());
        let record = mail(&platform, n as usize, &key);
        let bus = platform.bus.clone();
        async move {
            tokio::spawn(async move {
                bus.publish(topics::MAIL_ARRIVED.name(), record)
                    .await
                    .unwrap();
            });
        }
    })
    .await;
    wait_for(&clock, (RATE * WINDOW.as_secs()) as usize).await;
    let open_cores = (cpu_seconds() - cpu) / wall;
    let mut open: Vec<f64> = clock
        .acked
        .lock()
        .unwrap()
        .iter()
        .map(|(_, l)| *l)
        .collect();
    open.sort_by(f64::total_cmp);
    eprintln!("open loop p99 {:.2} ms", quantile(&open, 0.99));

    // Baseline: Deliver straight to the devices, same rate, no dispatch.
    let client =
        pushmail_integration_tests::session_client(format!("http://{}", platform.session_grpc))
            .await;
    let direct = Arc::new(Mutex::new(Vec::new()));
    let seq = Arc::new(std::sync::atomic::AtomicU64::new(10_000_000));
    let bearer: tonic::metadata::MetadataValue<_> = format!(
        "Bearer {}",
        pushmail_integration_tests::credential(
            pushmail_common::service_identity::Service::Dispatch
        )
    )
    .parse()
    .unwrap();
    let (base_wall, base_cpu) = open_loop(|n| {
        let (_, device, _) = platform.devices[n as usize % DEVICES].clone();
        let mut client = client.clone();
        let local = platform.local.as_ref().and_then(|l| l.get()).cloned();
        let bearer = bearer.clone();
        let direct = direct.clone();
        let tenant = platform.tenant.clone();
        let sequence = seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async move {
            tokio::spawn(async move {
                let at = Instant::now();
                let request = spb::DeliverRequest {
                    notification: Some(spb::Notification {
                        tenant_id: tenant,
                        device_id: device,
                        sequence,
                        subject: "Quarterly report".into(),
                        ..Default::default()
                    }),
                    ack_timeout_ms: 5_000,
                };
                let answer = match local {
                    Some(service) => {
                        let mut request = tonic::Request::new(request);
                        request.metadata_mut().insert("authorization", bearer);
                        service.deliver(request).await
                    }
                    None => client.deliver(request).await,
                };
                let status = answer.map(|r| r.into_inner().status());
                if matches!(status, Ok(spb::DeliverStatus::Acked)) {
                    direct
                        .lock()
                        .unwrap()
                        .push(at.elapsed().as_secs_f64() * 1_000.0);
                }
            });
        }
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while direct.lock().unwrap().len() < (RATE * WINDOW.as_secs()) as usize
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let base_cores = (cpu_seconds() - base_cpu) / base_wall;
    let mut direct = direct.lock().unwrap().clone();
    direct.sort_by(f64::total_cmp);

    let mut report = String::new();
    let deliver = if kafka {
        "dispatch → session `Deliver` over loopback gRPC"
    } else {
        "dispatch → session `Deliver` in-process, as standalone does"
    };
    let storage = platform.broker.as_ref().map_or("none", |b| b.storage());
    let kafka_shape = format!(
        "One process, the services on a fresh broker of the benchmark's own (tansu, storage `{storage}`, `fetch.wait.max.ms` 10, producer `linger.ms` from `BENCH_LINGER_MS`, default 5 as in production) instead of the in-process bus"
    );
    let (title, shape, goal) = if kafka {
        ("over Kafka (tansu)", kafka_shape.as_str(), GOAL_KAFKA)
    } else {
        (
            "standalone",
            "One process, standalone-shaped: in-process bus",
            GOAL_PER_CORE,
        )
    };
    writeln!(
        report,
        "# Dispatch {title}: MailArrived to acked notification\n"
    )
    .unwrap();
    writeln!(
        report,
        "{shape}, binding on SQLite, session and dispatch with the memory outbox, directory and state; {deliver}; {DEVICES} accounts with one WebSocket phone each (in a helper process, acking every notification); coalescing off so every mail is a notification. Burst: {BURST} mails published at once. Open loop: {RATE} mails/s for {} s; latency from publishing `MailArrived` to dispatch's `ACKED` receipt. Baseline: session `Deliver` ({deliver}) to the same phones at the same rate, no dispatch. CPU is the platform process's over wall time (the phones' process is not counted); the platform runs on {} async worker thread(s) (`BENCH_WORKERS`). This 2-core machine is shared.\n",
        WINDOW.as_secs(),
        workers()
    )
    .unwrap();
    report.push_str(TABLE_HEAD);
    let per_core = burst.rate / burst.cores.max(0.01);
    let measured = if kafka { burst.rate } else { per_core };
    writeln!(
        report,
        "| notifications acked per second{} (burst of {BURST}) | {measured:.0} | — | — | — | ≥ {goal:.0}: {} |",
        if kafka { "" } else { " per core" },
        if measured >= goal { "met" } else { "NOT met" }
    )
    .unwrap();
    writeln!(
        report,
        "| CPU cores busy at {RATE}/s | {open_cores:.2} | `Deliver` only at {RATE}/s | {base_cores:.2} | {:.2} | |",
        open_cores / base_cores.max(0.01)
    )
    .unwrap();
    writeln!(
        report,
        "| p99 ms at {RATE}/s, MailArrived → acked | {:.2} | `Deliver` → acked | {:.2} | {:.2} | |",
        quantile(&open, 0.99),
        quantile(&direct, 0.99),
        quantile(&open, 0.99) / quantile(&direct, 0.99)
    )
    .unwrap();
    writeln!(report, "\nBurst: {:.0} notifications/s on {:.2} cores busy; p50 {:.1} ms, p99 {:.1} ms (queueing behind the burst included).\n", burst.rate, burst.cores, quantile(&burst.latencies, 0.5), quantile(&burst.latencies, 0.99)).unwrap();
    writeln!(
        report,
        "Latency histogram at {RATE}/s (MailArrived → acked, {} notifications):\n",
        open.len()
    )
    .unwrap();
    writeln!(report, "| up to ms | share | cumulative |\n|---|---|---|").unwrap();
    let mut below = 0;
    for bound in [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, f64::INFINITY] {
        let count = open.iter().filter(|l| **l <= bound).count();
        writeln!(
            report,
            "| {} | {:.1}% | {:.1}% |",
            if bound.is_finite() {
                format!("{bound}")
            } else {
                "more".to_owned()
            },
            (count - below) as f64 * 100.0 / open.len() as f64,
            count as f64 * 100.0 / open.len() as f64
        )
        .unwrap();
        below = count;
    }
    writeln!(
        report,
        "\n| quantile | MailArrived → acked ms | Deliver → acked ms |\n|---|---|---|"
    )
    .unwrap();
    for q in [0.5, 0.9, 0.99, 0.999] {
        writeln!(
            report,
            "| p{} | {:.2} | {:.2} |",
            q * 100.0,
            quantile(&open, q),
            quantile(&direct, q)
        )
        .unwrap();
    }
    std::fs::write(&out, &report).unwrap();
    print!("{report}");
    let _ = phones.start_kill();
    // The services' tasks never end on their own; the report is written.
    std::process::exit(0);
}
