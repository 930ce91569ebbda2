//! Wall-clock time as pushmail stores and sends it: milliseconds since the epoch.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, ms since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A protobuf timestamp of `ms` since the epoch.
pub fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1_000),
        // In 0..1_000_000_000 by construction.
        nanos: i32::try_from(ms.rem_euclid(1_000) * 1_000_000).unwrap_or(0),
    }
}

/// Ms since the epoch of a protobuf timestamp.
pub fn from_timestamp(at: &prost_types::Timestamp) -> i64 {
    at.seconds
        .saturating_mul(1_000)
        .saturating_add(i64::from(at.nanos) / 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let t = timestamp(1_764_160_496_789);
        assert_eq!((t.seconds, t.nanos), (1_764_160_496, 789_000_000));
        let before_epoch = timestamp(-1);
        assert_eq!(
            (before_epoch.seconds, before_epoch.nanos),
            (-1, 999_000_000)
        );
        assert_eq!(from_timestamp(&t), 1_764_160_496_789);
        assert_eq!(from_timestamp(&before_epoch), -1);
    }
}
