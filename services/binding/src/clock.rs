//! Wall-clock time as the service stores it: milliseconds since the epoch.

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

/// Today in UTC, the day SMS and traffic are counted on.
pub fn utc_day(ms: i64) -> jiff::civil::Date {
    let at = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    jiff::tz::TimeZone::UTC.to_datetime(at).date()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_days() {
        let t = timestamp(1_764_160_496_789);
        assert_eq!((t.seconds, t.nanos), (1_764_160_496, 789_000_000));
        let before_epoch = timestamp(-1);
        assert_eq!(
            (before_epoch.seconds, before_epoch.nanos),
            (-1, 999_000_000)
        );
        assert_eq!(utc_day(1_764_160_496_789).to_string(), "2025-11-26");
    }
}
