//! Which heartbeat intervals hold on which networks: every heartbeat that
//! arrives in time counts as held for its interval, every drop for a missed
//! heartbeat counts as missed. Devices adapt (step up after success, back
//! off after a timeout); these counts are what the server learns.

use std::collections::BTreeMap;
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

/// Per-network heartbeat statistics of this node.
#[derive(Debug, Default)]
pub struct HeartbeatStats {
    rows: Mutex<BTreeMap<(String, u64), Counts>>,
}

/// Longest network name kept; longer ones are cut (they come from devices).
const MAX_NETWORK: usize = 32;
/// Most distinct rows kept, so devices cannot grow the map without bound.
const MAX_ROWS: usize = 4_096;

fn network(net: &str) -> String {
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
    fn count(&self, net: &str, hb: Duration, held: bool) {
        let key = (network(net), hb.as_secs());
        let labels = [("network", key.0.clone()), ("interval", key.1.to_string())];
        if held {
            metrics::counter!(METRIC_HELD, &labels).increment(1);
        } else {
            metrics::counter!(METRIC_MISSED, &labels).increment(1);
        }
        let mut rows = self
            .rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if rows.len() >= MAX_ROWS && !rows.contains_key(&key) {
            return;
        }
        let counts = rows.entry(key).or_default();
        if held {
            counts.held += 1;
        } else {
            counts.missed += 1;
        }
    }

    /// A heartbeat held.
    pub fn held(&self, net: &str, hb: Duration) {
        self.count(net, hb, true);
    }

    /// A heartbeat was missed.
    pub fn missed(&self, net: &str, hb: Duration) {
        self.count(net, hb, false);
    }

    /// Every row, by network then interval.
    pub fn rows(&self) -> Vec<Row> {
        let rows = self
            .rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        rows.iter()
            .map(|((network, interval_seconds), counts)| Row {
                network: network.clone(),
                interval_seconds: *interval_seconds,
                counts: *counts,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_network_and_interval() {
        let stats = HeartbeatStats::default();
        stats.held("46000-lte", Duration::from_secs(600));
        stats.held("46000-lte", Duration::from_secs(600));
        stats.missed("46000-lte", Duration::from_secs(1_200));
        stats.held("", Duration::from_secs(60));
        stats.held("<script>", Duration::from_secs(60));
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
