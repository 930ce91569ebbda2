//! Wall-clock time as the service stores it: milliseconds since the epoch.

pub use pushmail_common::clock::{now_ms, timestamp};

/// Today in UTC, the day SMS and traffic are counted on.
pub(crate) fn utc_day(ms: i64) -> jiff::civil::Date {
    let at = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    jiff::tz::TimeZone::UTC.to_datetime(at).date()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc() {
        assert_eq!(utc_day(1_764_160_496_789).to_string(), "2025-11-26");
        // 23:59:59.999 UTC on the 25th is still the 25th, whatever the local zone.
        assert_eq!(utc_day(1_764_115_199_999).to_string(), "2025-11-25");
    }
}
