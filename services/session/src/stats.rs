//! Which heartbeat intervals hold on which networks: every heartbeat that
//! arrives in time counts as held for its interval, every drop for a missed
//! heartbeat counts as missed. Devices adapt (step up after success, back
//! off after a timeout); these counts are what the server learns.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

/// Heartbeats that held, by network and interval.
pub(crate) const METRIC_HELD: &str = "pushmail_session_heartbeats_held_total";
/// Heartbeats missed, by network and interval.
pub(crate) const METRIC_MISSED: &str = "pushmail_session_heartbeats_missed_total";

/// Counts for one network and interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Counts {
    /// Heartbeats that arrived in time.
    pub(crate) held: u64,
    /// Connections dropped for a missed heartbeat.
    pub(crate) missed: u64,
}

/// One row of the statistics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Row {
    /// Network as devices report it (`unknown` when they do not).
    pub(crate) network: String,
    /// Interval, seconds.
    pub(crate) interval_seconds: u64,
    /// The counts.
    #[serde(flatten)]
    pub(crate) counts: Counts,
}

/// One network and interval's counts with their registered Prometheus
/// counters. Connections hold it from hello on, so a heartbeat costs two
/// atomic increments, not a lock and a map lookup.
#[derive(Debug)]
pub(crate) struct Tally {
    held: AtomicU64,
    missed: AtomicU64,
    held_total: metrics::Counter,
    missed_total: metrics::Counter,
}

impl Tally {
    /// A heartbeat arrived in time.
    pub(crate) fn held(&self) {
        self.held.fetch_add(1, Ordering::Relaxed);
        self.held_total.increment(1);
    }

    /// A connection was dropped for a missed heartbeat.
    pub(crate) fn missed(&self) {
        self.missed.fetch_add(1, Ordering::Relaxed);
        self.missed_total.increment(1);
    }

    fn counts(&self) -> Counts {
        Counts {
            held: self.held.load(Ordering::Relaxed),
            missed: self.missed.load(Ordering::Relaxed),
        }
    }
}

/// Per-network heartbeat statistics of this node.
#[derive(Debug, Default)]
pub(crate) struct HeartbeatStats {
    rows: Mutex<HashMap<String, BTreeMap<u64, Arc<Tally>>>>,
}

/// Longest network name kept; longer ones are cut (they come from devices).
const MAX_NETWORK: usize = 32;
/// Most distinct rows kept, so devices cannot grow the map without bound.
const MAX_ROWS: usize = 4_096;

/// A device-reported network name made safe to keep and to label metrics with.
pub(crate) fn network(net: &str) -> String {
    let net: String = net
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(MAX_NETWORK)
        .collect();
    if net.is_empty() {
        "unknown".to_owned()
    } else {
        net
    }
}

impl HeartbeatStats {
    /// The counts of `net` (from [`network`]) and interval `hb`; `None`
    /// once [`MAX_ROWS`] distinct rows exist.
    pub(crate) fn tally(&self, net: &str, hb: Duration) -> Option<Arc<Tally>> {
        let secs = hb.as_secs();
        let mut rows = self
            .rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(tally) = rows.get(net).and_then(|intervals| intervals.get(&secs)) {
            return Some(tally.clone());
        }
        if rows.values().map(BTreeMap::len).sum::<usize>() >= MAX_ROWS {
            return None;
        }
        let labels = [("network", net.to_owned()), ("interval", secs.to_string())];
        let tally = Arc::new(Tally {
            held: AtomicU64::new(0),
            missed: AtomicU64::new(0),
            held_total: metrics::counter!(METRIC_HELD, &labels),
            missed_total: metrics::counter!(METRIC_MISSED, &labels),
        });
        rows.entry(net.to_owned())
            .or_default()
            .insert(secs, tally.clone());
        Some(tally)
    }

    /// A heartbeat held (`net` from [`network`]).
    pub(crate) fn held(&self, net: &str, hb: Duration) {
        if let Some(tally) = self.tally(net, hb) {
            tally.held();
        }
    }

    /// A heartbeat was missed (`net` from [`network`]); connections count
    /// through their [`Tally`].
    #[cfg(test)]
    pub(crate) fn missed(&self, net: &str, hb: Duration) {
        if let Some(tally) = self.tally(net, hb) {
            tally.missed();
        }
    }

    /// Every row, by network then interval.
    pub(crate) fn rows(&self) -> Vec<Row> {
        let rows = self
            .rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: Vec<Row> = rows
            .iter()
            .flat_map(|(network, intervals)| {
                intervals.iter().map(|(interval_seconds, tally)| Row {
                    network: network.clone(),
                    interval_seconds: *interval_seconds,
                    counts: tally.counts(),
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.network, a.interval_seconds).cmp(&(&b.network, b.interval_seconds)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_network_and_interval() {
        let stats = HeartbeatStats::default();
        for (net, secs, held) in [
            ("46000-lte", 600, true),
            ("46000-lte", 600, true),
            ("46000-lte", 1_200, false),
            ("", 60, true),
            ("<script>", 60, true),
        ] {
            let net = network(net);
            if held {
                stats.held(&net, Duration::from_secs(secs));
            } else {
                stats.missed(&net, Duration::from_secs(secs));
            }
        }
        let rows = stats.rows();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].network, "46000-lte");
        assert_eq!(rows[0].counts, Counts { held: 2, missed: 0 });
        assert_eq!(rows[1].counts, Counts { held: 0, missed: 1 });
        assert!(
            rows.iter().any(|r| r.network == "script"),
            "device input is cleaned"
        );
        assert!(rows.iter().any(|r| r.network == "unknown"));
    }

    #[test]
    fn connections_share_one_tally_per_row_and_rows_are_bounded() {
        let stats = HeartbeatStats::default();
        let hb = Duration::from_secs(600);
        let first = stats.tally("46000-lte", hb).unwrap();
        let second = stats.tally("46000-lte", hb).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        first.held();
        second.held();
        second.missed();
        assert_eq!(stats.rows()[0].counts, Counts { held: 2, missed: 1 });
        for i in 0..MAX_ROWS as u64 {
            assert!(stats.tally("46000-lte", Duration::from_secs(i)).is_some());
        }
        assert!(
            stats.tally("another", hb).is_none(),
            "devices cannot grow the rows without bound"
        );
        assert!(
            stats.tally("46000-lte", hb).is_some(),
            "existing rows still count"
        );
        assert_eq!(stats.rows().len(), MAX_ROWS);
    }
}
