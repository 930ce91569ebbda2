//! Quiet hours: a daily window, in the user's IANA time zone, during which
//! pushes wait and one digest goes out when it ends. A window whose start
//! is after its end crosses midnight (22:00–07:00).

use jiff::Timestamp;
use jiff::tz::TimeZone;

const MINUTES_PER_DAY: u32 = 24 * 60;

/// A validated quiet-hours window.
#[derive(Debug, Clone, PartialEq)]
pub struct QuietHours {
    start_minute: u32,
    end_minute: u32,
    zone: TimeZone,
    zone_name: String,
}

/// Why a window was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuietHoursError {
    /// A minute of the day outside 0..1440.
    #[error("{0} must be a minute of the day, 0 to 1439")]
    Minute(&'static str),
    /// Start equal to end is no window (and not "all day").
    #[error("quiet hours must start and end at different times")]
    Empty,
    /// Not a zone of the IANA database.
    #[error("unknown time zone {0:?}; use an IANA name such as Asia/Shanghai")]
    Zone(String),
}

impl QuietHours {
    /// A window from `start_minute` to `end_minute` (minutes after local midnight) in `zone`.
    pub fn new(start_minute: u32, end_minute: u32, zone: &str) -> Result<Self, QuietHoursError> {
        if start_minute >= MINUTES_PER_DAY {
            return Err(QuietHoursError::Minute("start_minute"));
        }
        if end_minute >= MINUTES_PER_DAY {
            return Err(QuietHoursError::Minute("end_minute"));
        }
        if start_minute == end_minute {
            return Err(QuietHoursError::Empty);
        }
        let tz = TimeZone::get(zone)
            .map_err(|_| QuietHoursError::Zone(zone.chars().take(64).collect()))?;
        Ok(Self {
            start_minute,
            end_minute,
            zone: tz,
            zone_name: zone.to_owned(),
        })
    }

    /// Start, minutes after local midnight.
    pub fn start_minute(&self) -> u32 {
        self.start_minute
    }

    /// End, minutes after local midnight.
    pub fn end_minute(&self) -> u32 {
        self.end_minute
    }

    /// The IANA zone name.
    pub(crate) fn zone_name(&self) -> &str {
        &self.zone_name
    }

    /// Whether `at` falls inside the window.
    pub fn contains(&self, at: Timestamp) -> bool {
        let minute = self.local_minute(at);
        if self.start_minute < self.end_minute {
            (self.start_minute..self.end_minute).contains(&minute)
        } else {
            minute >= self.start_minute || minute < self.end_minute
        }
    }

    /// When the window containing `at` ends, or `None` outside the window.
    #[cfg(test)]
    pub(crate) fn ends_after(&self, at: Timestamp) -> Option<Timestamp> {
        if !self.contains(at) {
            return None;
        }
        let local = self.zone.to_datetime(at);
        let crosses_today =
            self.start_minute > self.end_minute && self.local_minute(at) >= self.start_minute;
        let date = if crosses_today {
            local.date().tomorrow().ok()?
        } else {
            local.date()
        };
        let end = jiff::civil::Time::new(
            (self.end_minute / 60) as i8,
            (self.end_minute % 60) as i8,
            0,
            0,
        )
        .ok()?;
        // A wall time skipped by a DST change resolves to the instant after the gap.
        self.zone.to_timestamp(date.to_datetime(end)).ok()
    }

    fn local_minute(&self, at: Timestamp) -> u32 {
        let local = self.zone.to_datetime(at);
        u32::from(local.hour().unsigned_abs()) * 60 + u32::from(local.minute().unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn window_crossing_midnight_in_shanghai() {
        // 22:00–07:00 Asia/Shanghai (UTC+8).
        let quiet = QuietHours::new(22 * 60, 7 * 60, "Asia/Shanghai").unwrap();
        // 23:30 local: inside, ends 07:00 local next day = 23:00 UTC.
        assert!(quiet.contains(at("2026-11-26T15:30:00Z")));
        assert_eq!(
            quiet.ends_after(at("2026-11-26T15:30:00Z")),
            Some(at("2026-11-26T23:00:00Z"))
        );
        // 06:59 local: inside, ends the same morning.
        assert!(quiet.contains(at("2026-11-26T22:59:00Z")));
        assert_eq!(
            quiet.ends_after(at("2026-11-26T22:59:00Z")),
            Some(at("2026-11-26T23:00:00Z"))
        );
        // 07:00 and noon local: outside.
        assert!(!quiet.contains(at("2026-11-26T23:00:00Z")));
        assert!(!quiet.contains(at("2026-11-27T04:00:00Z")));
        assert_eq!(quiet.ends_after(at("2026-11-27T04:00:00Z")), None);
    }

    #[test]
    fn window_within_a_day() {
        let quiet = QuietHours::new(12 * 60, 14 * 60, "Europe/London").unwrap();
        assert!(quiet.contains(at("2026-11-26T12:00:00Z")));
        assert!(!quiet.contains(at("2026-11-26T14:00:00Z")));
        assert!(!quiet.contains(at("2026-11-26T11:59:00Z")));
    }

    #[test]
    fn end_in_a_dst_gap_resolves_after_the_gap() {
        // New York skips 02:00–03:00 on 2026-03-08; a window ending 02:30 ends at 03:30 EDT.
        let quiet = QuietHours::new(60, 150, "America/New_York").unwrap();
        let inside = at("2026-03-08T06:30:00Z"); // 01:30 EST
        assert!(quiet.contains(inside));
        assert_eq!(quiet.ends_after(inside), Some(at("2026-03-08T07:30:00Z")));
    }

    #[test]
    fn bad_windows_are_refused() {
        assert_eq!(
            QuietHours::new(1440, 0, "UTC"),
            Err(QuietHoursError::Minute("start_minute"))
        );
        assert_eq!(
            QuietHours::new(0, 2000, "UTC"),
            Err(QuietHoursError::Minute("end_minute"))
        );
        assert_eq!(QuietHours::new(60, 60, "UTC"), Err(QuietHoursError::Empty));
        assert!(matches!(
            QuietHours::new(0, 60, "Mars/Olympus"),
            Err(QuietHoursError::Zone(_))
        ));
    }
}
