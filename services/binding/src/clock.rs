//! Wall-clock time as the service stores it: milliseconds since the epoch.

pub use pushmail_common::clock::{now_ms, timestamp};

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
