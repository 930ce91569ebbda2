//! Which heartbeat intervals hold on which networks: every heartbeat that
//! arrives in time counts as held for its interval, every drop for a missed
//! heartbeat counts as missed. Devices adapt (step up after success, back
//! off after a timeout); these counts are what the server learns.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// Heartbeats that held, by network and interval.
pub const METRIC_HELD: &str = "pushmail_session_heartbeats_held_total";
/// Heartbeats missed, by network and interval.
pub const METRIC_MISSED: &str = "pushmail_session_heartbeats_missed_total";

/// Counts for one network and interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Heartbeats that arrived in time.
    pub held: u64,
    /// Connections dropped for a missed heartbeat.
    pub missed: u64,
}

/// One row of the statistics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// Network as devices report it (`unknown` when they do not).
    pub network: String,
    /// Interval, seconds.
    pub interval_seconds: u64,
    /// The counts.
    #[serde(flatten)]
    pub counts: Counts,
}

/// Counts with their registered Prometheus counters, so a heartbeat costs
/// two increments, not a registry lookup.
#[derive(Debug)]
struct Cell {
    counts: Counts,
    held: metrics::Counter,
    missed: metrics::Counter,
}

/// Per-network heartbeat statistics of this node.
#[derive(Debug, Default)]
pub struct HeartbeatStats {
    rows: Mutex<HashMap<String, BTreeMap<u64, Cell>>>,
}

/// Longest network name kept; longer ones are cut (they come from devices).
const MAX_NETWORK: usize = 32;
/// Most distinct rows kept, so devices cannot grow the map without bound.
const MAX_ROWS: usize = 4_096;

/// A device-reported network name made safe to keep and to label metrics with.
pub fn network(net: &str) -> String {
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
    /// `net` must come from [`network`].
    fn count(&self, net: &str, hb: Duration, held: bool) {
        let secs = hb.as_secs();
        let mut rows = self
            .rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !rows.contains_key(net) {
            if rows.values().map(BTreeMap::len).sum::<usize>() >= MAX_ROWS {
                return;
            }
            rows.insert(net.to_owned(), BTreeMap::new());
        }
        let Some(intervals) = rows.get_mut(net) else {
            return;
        };
        let cell = intervals.entry(secs).or_insert_with(|| {
            let labels = [("network", net.to_owned()), ("interval", secs.to_string())];
            Cell {
                counts: Counts::default(),
                held: metrics::counter!(METRIC_HELD, &labels),
                missed: metrics::counter!(METRIC_MISSED, &labels),
            }
        });
        if held {
            cell.counts.held += 1;
            cell.held.increment(1);
        } else {
            cell.counts.missed += 1;
            cell.missed.increment(1);
        }
    }

    /// A heartbeat held (`net` from [`network`]).
    pub fn held(&self, net: &str, hb: Duration) {
        self.count(net, hb, true);
    }

    /// A heartbeat was missed (`net` from [`network`]).
    pub fn missed(&self, net: &str, hb: Duration) {
        self.count(net, hb, false);
    }

    /// Every row, by network then interval.
    pub fn rows(&self) -> Vec<Row> {
        let rows = self
            .rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: Vec<Row> = rows
            .iter()
            .flat_map(|(network, intervals)| {
                intervals.iter().map(|(interval_seconds, cell)| Row {
                    network: network.clone(),
                    interval_seconds: *interval_seconds,
                    counts: cell.counts,
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
}
