//! The load generator's report: HDR histograms of each run, a Markdown
//! table against the goals with same-run baselines, and a PNG of the
//! latency distributions.

use std::fmt::Write as _;

use anyhow::Context as _;
use hdrhistogram::Histogram;

use super::{LoadgenArgs, Run};

/// Goals for the standalone run (ms) and the Kafka run's p99.
const GOAL_P50: f64 = 10.0;
const GOAL_P99: f64 = 50.0;
const GOAL_P999: f64 = 100.0;
const GOAL_KAFKA_P99: f64 = 100.0;

/// A run's numbers.
struct Figures {
    name: String,
    /// End of DATA → phone, µs.
    e2e: Histogram<u64>,
    /// End of DATA → 250, µs.
    accept: Histogram<u64>,
    /// Due time → transaction start, µs.
    late: Histogram<u64>,
    offered: usize,
    accepted: usize,
    refused: usize,
    refusals: String,
    lost: usize,
    shown_twice: usize,
    dropped_duplicates: usize,
    reconnects: usize,
    resyncs: usize,
    mailbox_syncs: usize,
    rate: f64,
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    // 1 µs to 10 min at 3 significant digits.
    Ok(Histogram::new_with_bounds(1, 600_000_000, 3)?)
}

fn figures(run: &Run, devices: usize) -> anyhow::Result<Figures> {
    let (mut e2e, mut accept, mut late) = (histogram()?, histogram()?, histogram()?);
    let mut lost = 0;
    let mut shown_twice = 0;
    let tag = &run.tag;
    for (i, mail) in run.outcome.mails.iter().enumerate() {
        let Some(mail) = mail else { continue };
        accept
            .saturating_record((mail.accepted_ns.saturating_sub(mail.data_end_ns) / 1_000).max(1));
        late.saturating_record(mail.late_us.max(1));
        match run.arrivals.by_subject.get(&format!("{tag} {i}")) {
            Some(times) => {
                // A phone may see its mail before the sender reads the 250
                // (ingest answers once the event is out); never below 1 µs.
                let first = times.iter().min().copied().unwrap_or_default();
                e2e.saturating_record((first.saturating_sub(mail.data_end_ns) / 1_000).max(1));
                shown_twice += times.len() - 1;
            }
            None => lost += 1,
        }
    }
    let accepted = run.outcome.accepted();
    Ok(Figures {
        name: run.name.clone(),
        e2e,
        accept,
        late,
        offered: run.outcome.mails.len(),
        accepted,
        refused: run.outcome.mails.len() - accepted,
        refusals: run
            .outcome
            .refusals
            .iter()
            .map(|(why, n)| format!("{n}× {why}"))
            .collect::<Vec<_>>()
            .join("; "),
        lost,
        shown_twice,
        dropped_duplicates: run.arrivals.dropped_duplicates,
        reconnects: run.arrivals.connects.saturating_sub(devices),
        resyncs: run.arrivals.resyncs,
        mailbox_syncs: run.arrivals.mailbox_syncs,
        rate: accepted as f64 / run.outcome.wall.as_secs_f64().max(f64::EPSILON),
    })
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1_000.0
}

fn verdict(value: f64, goal: f64) -> String {
    format!(
        "≤ {goal}: {}",
        if value <= goal { "met" } else { "NOT met" }
    )
}

/// Writes the Markdown report and the plot beside it.
pub(crate) fn write(args: &LoadgenArgs, runs: &[Run]) -> anyhow::Result<()> {
    let all: Vec<Figures> = runs
        .iter()
        .map(|r| figures(r, args.devices))
        .collect::<anyhow::Result<_>>()?;
    // The standalone runs come first, one per bus; then Kafka's and the
    // EAS Pings', when asked for.
    let standalone = args.buses.len().min(all.len());
    let eas = if args.eas { all.last() } else { None };
    let plot = args.report.with_extension("png");
    super::plot::draw(
        &plot,
        &all.iter()
            .map(|f| (&f.name, &f.e2e, &f.accept))
            .collect::<Vec<_>>(),
    )?;
    let mut md = String::new();
    intro(&mut md, args)?;
    goals(&mut md, args, &all, standalone)?;
    if let (Some(eas), Some(websocket)) = (eas, all.first()) {
        pings(&mut md, args, eas, websocket)?;
    }
    shares(&mut md, &all, standalone, args.kafka.is_some())?;
    counts(&mut md, &all)?;
    quantiles(&mut md, &all)?;
    writeln!(md)?;
    writeln!(
        md,
        "![latency distribution]({})",
        plot.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    )?;
    if let Some(dir) = args.report.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.report, &md).with_context(|| format!("{}", args.report.display()))?;
    print!("{md}");
    Ok(())
}

/// What was run, and how it was measured.
fn intro(md: &mut String, args: &LoadgenArgs) -> std::fmt::Result {
    writeln!(md, "# End to end: SMTP to the phone")?;
    writeln!(md)?;
    writeln!(
        md,
        "`pushmail loadgen`: the standalone platform (one process: binding in SQLite, memory directory) {}{}; \
         {} accounts with one phone each, the phones in {} helper processes connecting from {}; \
         {} mails/s offered for {} s over {} SMTP connections, open loop (mail *i* is due at *i*/rate whatever came before). \
         Latency is from the end of the mail's SMTP DATA to the phone reading the notification (helper processes stamp \
         arrival with the same clock), HDR histograms at 3 significant digits. Baseline in the same run: the SMTP \
         acceptance alone (end of DATA → 250: parse, blob fsync, publish). Notification coalescing off so every mail is \
         timed. Everything shares this 2-core machine. Each run's data (a blob file and a grant per mail) is removed \
         only after the last run: for minutes after tens of thousands of files are deleted, ext4 scans past the freed \
         inodes on every create (seen here: SMTP acceptance p50 from ~1.5 ms to 20–60 ms), so a run right after \
         another benchmark's clean-up measures the file system, not pushmail.",
        args.buses
            .iter()
            .map(|b| match b {
                super::StandaloneBus::Sqlite => "durable: its bus, outboxes, dispatch state and marks in SQLite files (250 means on disk)",
                super::StandaloneBus::Memory => "with the bus, outboxes, dispatch state and marks in memory only (standalone before it was durable)",
            })
            .collect::<Vec<_>>()
            .join(", then "),
        if args.kafka.is_some() {
            ", then the same with the services on Kafka (tansu, `fetch.wait.max.ms` 10, producer `linger.ms` 5)"
        } else {
            ""
        },
        args.devices,
        args.sources.len(),
        args.sources
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        args.rate,
        args.seconds,
        args.connections
    )?;
    Ok(())
}

/// The goal rows: latency against the same run's baselines, and loss.
fn goals(
    md: &mut String,
    args: &LoadgenArgs,
    all: &[Figures],
    standalone: usize,
) -> std::fmt::Result {
    writeln!(md)?;
    writeln!(md, "{}", super::TABLE_HEAD)?;
    if let Some(s) = all.first() {
        for (label, q, goal) in [
            ("p50", 0.5, GOAL_P50),
            ("p99", 0.99, GOAL_P99),
            ("p99.9", 0.999, GOAL_P999),
        ] {
            let value = ms(&s.e2e, q);
            let base = ms(&s.accept, q);
            writeln!(
                md,
                "| {} {label} ms, end of DATA → phone, at {} mails/s | {value:.2} | SMTP end of DATA → 250 ({label}) | {base:.2} | {:.2} | {} |",
                s.name,
                args.rate,
                value / base.max(0.001),
                verdict(value, goal)
            )?;
        }
        for b in all.iter().take(standalone).skip(1) {
            for label in ["p50", "p99"] {
                let q = if label == "p50" { 0.5 } else { 0.99 };
                let (value, base) = (ms(&s.e2e, q), ms(&b.e2e, q));
                writeln!(
                    md,
                    "| {} {label} ms, end of DATA → phone | {value:.2} | {} {label}, same run | {base:.2} | {:.2} |  |",
                    s.name,
                    b.name,
                    value / base.max(0.001),
                )?;
            }
        }
        if let Some(k) = all.get(standalone).filter(|_| args.kafka.is_some()) {
            for (label, q, goal) in [("p50", 0.5, None), ("p99", 0.99, Some(GOAL_KAFKA_P99))] {
                let value = ms(&k.e2e, q);
                let base = ms(&s.e2e, q);
                writeln!(
                    md,
                    "| {} {label} ms, end of DATA → phone | {value:.2} | {} {label}, same run | {base:.2} | {:.2} | {} |",
                    k.name,
                    s.name,
                    value / base.max(0.001),
                    goal.map(|g| verdict(value, g)).unwrap_or_default()
                )?;
            }
        }
        for f in all {
            writeln!(
                md,
                "| {}: mails accepted with 250 but never at the phone | {} | | | | 0: {} |",
                f.name,
                f.lost,
                if f.lost == 0 { "met" } else { "NOT met" }
            )?;
        }
    }
    Ok(())
}

/// The Ping wake goal: a held Ping answered within a second of
/// the mail, next to the WebSocket phones of the same bus in the same run.
fn pings(
    md: &mut String,
    args: &LoadgenArgs,
    eas: &Figures,
    websocket: &Figures,
) -> std::fmt::Result {
    writeln!(md)?;
    writeln!(
        md,
        "ActiveSync Ping wake-up: {} phones as stock mail apps (app passwords; each provisioned, found its \
         Inbox with FolderSync and holds a Ping on it with a 1,800 s heartbeat, over one kept-alive HTTP/1.1 \
         connection, pinging again as soon as one is answered), the same mail at the same rate. A Ping's \
         answer (status 2) is matched to its phone's first mail sent before it that no earlier answer took; \
         mail that comes while the phone re-pings is told by the next Ping at once, from the outbox, and \
         counts with that wait. The phones run on a thread of their own in the load generator's process.",
        args.devices
    )?;
    writeln!(md)?;
    writeln!(md, "{}", super::TABLE_HEAD)?;
    for (label, q) in [("p50", 0.5), ("p99", 0.99)] {
        let (value, base) = (ms(&eas.e2e, q), ms(&websocket.e2e, q));
        writeln!(
            md,
            "| {} {label} ms, end of DATA → Ping answered, at {} mails/s | {value:.2} | {} {label}, same run | {base:.2} | {:.2} | {} |",
            eas.name,
            args.rate,
            websocket.name,
            value / base.max(0.001),
            verdict(value, 1_000.0)
        )?;
    }
    Ok(())
}

/// What the durable bus and the broker each add.
fn shares(md: &mut String, all: &[Figures], standalone: usize, kafka: bool) -> std::fmt::Result {
    if let (Some(s), Some(b)) = (all.first(), all.get(1).filter(|_| standalone > 1)) {
        writeln!(md)?;
        writeln!(
            md,
            "The bus's share: {} adds {:.2} ms at p50 and {:.2} ms at p99 over {}; its SMTP acceptance \
             (which waits for the publish) is {:.2} ms at p50 and {:.2} ms at p99 against {:.2} and {:.2}.",
            s.name,
            ms(&s.e2e, 0.5) - ms(&b.e2e, 0.5),
            ms(&s.e2e, 0.99) - ms(&b.e2e, 0.99),
            b.name,
            ms(&s.accept, 0.5),
            ms(&s.accept, 0.99),
            ms(&b.accept, 0.5),
            ms(&b.accept, 0.99),
        )?;
    }
    if let (Some(s), Some(k)) = (all.first(), all.get(standalone).filter(|_| kafka)) {
        writeln!(md)?;
        // Where the Kafka run's time went: ingest answers 250 only once the
        // broker acknowledged the event, then dispatch fetches it.
        let hop = |f: &Figures, q| ms(&f.e2e, q) - ms(&f.accept, q);
        writeln!(
            md,
            "The broker's share: Kafka adds {:.2} ms at p50 and {:.2} ms at p99 over the standalone run. Of the Kafka \
             run's p50, {:.2} ms is the SMTP acceptance, which waits for the broker's acknowledgement of `MailArrived` \
             (standalone: {:.2} ms), and about {:.2} ms the hop from there to the phone (standalone: {:.2} ms), in which \
             dispatch's fetch waits: tansu holds each fetch for the whole `fetch.wait.max.ms` (10 ms), so a record waits \
             up to 10 ms (5 on average) for the fetch that returns it, after up to 5 ms of producer linger. The sender's \
             lateness column shows whether the offered rate was kept.",
            ms(&k.e2e, 0.5) - ms(&s.e2e, 0.5),
            ms(&k.e2e, 0.99) - ms(&s.e2e, 0.99),
            ms(&k.accept, 0.5),
            ms(&s.accept, 0.5),
            hop(k, 0.5),
            hop(s, 0.5)
        )?;
    }
    Ok(())
}

/// Per run: what was offered, accepted, shown and lost.
fn counts(md: &mut String, all: &[Figures]) -> std::fmt::Result {
    writeln!(md)?;
    writeln!(
        md,
        "| run | offered | accepted (250) | refused | rate accepted/s | at the phone | lost | shown twice | duplicates dropped by the phone | reconnects | resyncs | mailbox syncs |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|")?;
    for f in all {
        writeln!(
            md,
            "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} |",
            f.name,
            f.offered,
            f.accepted,
            f.refused,
            f.rate,
            f.accepted - f.lost,
            f.lost,
            f.shown_twice,
            f.dropped_duplicates,
            f.reconnects,
            f.resyncs,
            f.mailbox_syncs
        )?;
    }
    for f in all.iter().filter(|f| !f.refusals.is_empty()) {
        writeln!(md)?;
        writeln!(md, "{} refusals: {}", f.name, f.refusals)?;
    }
    Ok(())
}

/// Per run: the latency quantiles.
fn quantiles(md: &mut String, all: &[Figures]) -> std::fmt::Result {
    writeln!(md)?;
    writeln!(
        md,
        "| run | quantile | end of DATA → phone ms | end of DATA → 250 ms | sender late against the schedule ms |"
    )?;
    writeln!(md, "|---|---|---|---|---|")?;
    for f in all {
        for (label, q) in [
            ("p50", 0.5),
            ("p90", 0.9),
            ("p99", 0.99),
            ("p99.9", 0.999),
            ("max", 1.0),
        ] {
            writeln!(
                md,
                "| {} | {label} | {:.2} | {:.2} | {:.2} |",
                f.name,
                ms(&f.e2e, q),
                ms(&f.accept, q),
                ms(&f.late, q)
            )?;
        }
    }
    Ok(())
}
