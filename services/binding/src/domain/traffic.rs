//! Traffic statistics: what was pushed, fetched and sent by SMS, per
//! account per UTC day.

use jiff::civil::Date;

/// Counts to add to a day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Pushes delivered.
    pub pushed_count: u64,
    /// Bytes pushed.
    pub pushed_bytes: u64,
    /// Fetches served.
    pub fetched_count: u64,
    /// Bytes fetched.
    pub fetched_bytes: u64,
    /// SMS sent.
    pub sms_count: u64,
}

/// One account's traffic on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrafficDay {
    /// The UTC day.
    pub day: Date,
    /// Its totals.
    pub traffic: Traffic,
}
