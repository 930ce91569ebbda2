//! A device's preferences applied to one mail: who may push (black and
//! white lists), when (quiet hours in the user's time zone) and how much
//! (content level, attachments, size). No I/O; time is passed in.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use prost::Message as _;
use pushmail_proto::binding::v1 as binding;
use pushmail_proto::common::v1::ContentLevel;
use pushmail_proto::session::v1::Notification;

/// Largest notification pushed (its protobuf size), whatever the
/// preferences say: session refuses frames over 4 KiB, and the JSON frame
/// a device gets is somewhat larger than the protobuf.
pub(crate) const MAX_PUSH_BYTES: usize = 3_000;

/// The preferences of one delivery target, ready to apply.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    level: ContentLevel,
    max_bytes: usize,
    attachments: bool,
    quiet: Option<Quiet>,
    black: Vec<String>,
    white: Vec<String>,
}

#[derive(Debug, Clone)]
struct Quiet {
    start: i32,
    end: i32,
    zone: TimeZone,
}

/// What happens to a mail for a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Push it now.
    Push,
    /// The sender is black-listed (and not white-listed).
    Blocked,
    /// Quiet hours: hold it for the digest at `until`.
    Defer {
        /// When the window ends.
        until: Timestamp,
    },
}

fn entries(list: Option<&binding::AddressList>) -> Vec<String> {
    list.map(|l| {
        l.entries
            .iter()
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

fn listed(list: &[String], sender: &str) -> bool {
    let sender = sender.trim().to_ascii_lowercase();
    let domain = sender.rsplit_once('@').map(|(_, d)| d);
    list.iter().any(|entry| match entry.strip_prefix('@') {
        Some(wanted) => domain == Some(wanted),
        None => *entry == sender,
    })
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub(crate) fn truncate(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
}

impl Policy {
    /// The policy of `preferences` (none: the defaults). An unknown time
    /// zone keeps quiet hours in UTC rather than ignoring them.
    pub(crate) fn new(preferences: Option<&binding::Preferences>) -> Self {
        let default = binding::Preferences::default();
        let p = preferences.unwrap_or(&default);
        let quiet = p.quiet_hours.as_ref().and_then(|q| {
            if q.start_minute == q.end_minute || q.start_minute >= 1_440 || q.end_minute >= 1_440 {
                return None;
            }
            let zone = if q.time_zone.is_empty() {
                TimeZone::UTC
            } else {
                jiff::tz::db().get(&q.time_zone).unwrap_or_else(|_| {
                    tracing::warn!(zone = %q.time_zone, "unknown time zone; quiet hours in UTC");
                    TimeZone::UTC
                })
            };
            Some(Quiet {
                start: i32::try_from(q.start_minute).unwrap_or(0),
                end: i32::try_from(q.end_minute).unwrap_or(0),
                zone,
            })
        });
        let max = usize::try_from(p.max_push_bytes).unwrap_or(usize::MAX);
        Self {
            level: p.content_level(),
            max_bytes: if max == 0 {
                MAX_PUSH_BYTES
            } else {
                max.min(MAX_PUSH_BYTES)
            },
            attachments: p.attachments,
            quiet,
            black: entries(p.black_list.as_ref()),
            white: entries(p.white_list.as_ref()),
        }
    }

    /// What to do with a mail from `sender` at `now`. The white list wins
    /// over the black list; quiet hours hold every mail.
    pub(crate) fn verdict(&self, sender: &str, now: Timestamp) -> Verdict {
        if listed(&self.black, sender) && !listed(&self.white, sender) {
            return Verdict::Blocked;
        }
        match self.quiet_until(now) {
            Some(until) => Verdict::Defer { until },
            None => Verdict::Push,
        }
    }

    /// The end of the quiet window `now` is in, if it is in one.
    pub(crate) fn quiet_until(&self, now: Timestamp) -> Option<Timestamp> {
        let quiet = self.quiet.as_ref()?;
        let local = quiet.zone.to_datetime(now);
        let minute = i32::from(local.hour()) * 60 + i32::from(local.minute());
        let inside = if quiet.start < quiet.end {
            (quiet.start..quiet.end).contains(&minute)
        } else {
            minute >= quiet.start || minute < quiet.end
        };
        if !inside {
            return None;
        }
        let end = local.date().to_datetime(
            jiff::civil::Time::new(
                i8::try_from(quiet.end / 60).unwrap_or(0),
                i8::try_from(quiet.end % 60).unwrap_or(0),
                0,
                0,
            )
            .unwrap_or(jiff::civil::Time::midnight()),
        );
        let end: DateTime = if end <= local {
            end.checked_add(jiff::Span::new().days(1)).unwrap_or(end)
        } else {
            end
        };
        // A window ending in a DST gap ends at the gap's far side.
        Some(
            quiet
                .zone
                .to_ambiguous_timestamp(end)
                .compatible()
                .unwrap_or(now),
        )
    }

    /// Withholds what the content level and attachment setting withhold,
    /// then trims to the size limit: the snippet first (never inside a
    /// character), then attachment entries, then the subject.
    pub(crate) fn shape(&self, n: &mut Notification) {
        match self.level {
            ContentLevel::Notice => {
                n.from = None;
                n.subject.clear();
                n.snippet.clear();
            }
            ContentLevel::SubjectSender | ContentLevel::Unspecified => n.snippet.clear(),
            ContentLevel::SubjectSenderSnippet => {}
        }
        if !self.attachments {
            n.attachments.clear();
        }
        let over = |n: &Notification| n.encoded_len().saturating_sub(self.max_bytes);
        let excess = over(n);
        if excess > 0 {
            let keep = n.snippet.len().saturating_sub(excess);
            truncate(&mut n.snippet, keep);
        }
        while over(n) > 0 && n.attachments.pop().is_some() {}
        let excess = over(n);
        if excess > 0 {
            let keep = n.subject.len().saturating_sub(excess);
            truncate(&mut n.subject, keep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefs() -> binding::Preferences {
        binding::Preferences {
            content_level: ContentLevel::SubjectSenderSnippet.into(),
            attachments: true,
            ..Default::default()
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn white_list_wins_over_black_list() {
        let mut p = prefs();
        p.black_list = Some(binding::AddressList {
            entries: vec!["@spam.example".into(), "Boss@Corp.example".into()],
        });
        p.white_list = Some(binding::AddressList {
            entries: vec!["friend@spam.example".into()],
        });
        let policy = Policy::new(Some(&p));
        let now = at("2026-11-26T12:00:00Z");
        assert_eq!(policy.verdict("x@spam.example", now), Verdict::Blocked);
        assert_eq!(policy.verdict("boss@corp.example", now), Verdict::Blocked);
        assert_eq!(policy.verdict("FRIEND@spam.example", now), Verdict::Push);
        assert_eq!(
            policy.verdict("x@sub.spam.example", now),
            Verdict::Push,
            "exact domains only"
        );
        assert_eq!(policy.verdict("", now), Verdict::Push);
    }

    #[test]
    fn quiet_hours_cross_midnight_in_the_users_zone() {
        let mut p = prefs();
        p.quiet_hours = Some(binding::QuietHours {
            start_minute: 22 * 60,
            end_minute: 7 * 60,
            time_zone: "Asia/Shanghai".into(),
        });
        let policy = Policy::new(Some(&p));
        // 15:00Z is 23:00 in Shanghai: quiet until 07:00 local = 23:00Z.
        assert_eq!(
            policy.verdict("a@b.c", at("2026-11-26T15:00:00Z")),
            Verdict::Defer {
                until: at("2026-11-26T23:00:00Z")
            }
        );
        // 20:00Z is 04:00 local, the same night's window.
        assert_eq!(
            policy.quiet_until(at("2026-11-26T20:00:00Z")),
            Some(at("2026-11-26T23:00:00Z"))
        );
        // 23:00Z is 07:00 local: the window is over.
        assert_eq!(policy.quiet_until(at("2026-11-26T23:00:00Z")), None);
        assert_eq!(policy.quiet_until(at("2026-11-26T04:00:00Z")), None);
    }

    #[test]
    fn same_day_windows_and_bad_zones() {
        let mut p = prefs();
        p.quiet_hours = Some(binding::QuietHours {
            start_minute: 12 * 60,
            end_minute: 13 * 60 + 30,
            time_zone: "Mars/Olympus".into(),
        });
        let policy = Policy::new(Some(&p));
        assert_eq!(
            policy.quiet_until(at("2026-11-26T12:10:00Z")),
            Some(at("2026-11-26T13:30:00Z")),
            "unknown zone: UTC"
        );
        assert_eq!(policy.quiet_until(at("2026-11-26T13:30:00Z")), None);
        p.quiet_hours = Some(binding::QuietHours {
            start_minute: 600,
            end_minute: 600,
            time_zone: String::new(),
        });
        assert_eq!(
            Policy::new(Some(&p)).quiet_until(at("2026-11-26T10:00:00Z")),
            None
        );
    }

    fn mail() -> Notification {
        Notification {
            from: Some(pushmail_proto::common::v1::Address {
                name: "Boss".into(),
                address: "boss@corp.example".into(),
            }),
            subject: "季度报告".into(),
            snippet: "请查收附件中的报告".into(),
            attachments: vec![Default::default()],
            ..Default::default()
        }
    }

    #[test]
    fn content_levels_withhold_fields() {
        let mut p = prefs();
        let mut n = mail();
        Policy::new(Some(&p)).shape(&mut n);
        assert_eq!(
            (
                n.subject.as_str(),
                n.snippet.is_empty(),
                n.attachments.len()
            ),
            ("季度报告", false, 1)
        );
        p.content_level = ContentLevel::SubjectSender.into();
        p.attachments = false;
        let mut n = mail();
        Policy::new(Some(&p)).shape(&mut n);
        assert!(n.snippet.is_empty() && n.attachments.is_empty() && n.from.is_some());
        p.content_level = ContentLevel::Notice.into();
        let mut n = mail();
        Policy::new(Some(&p)).shape(&mut n);
        assert!(n.subject.is_empty() && n.from.is_none());
    }

    #[test]
    fn the_size_limit_trims_the_snippet_on_a_character_boundary() {
        let mut p = prefs();
        let mut n = mail();
        n.snippet = "邮".repeat(200);
        let base = Notification {
            snippet: String::new(),
            ..n.clone()
        }
        .encoded_len();
        p.max_push_bytes = u32::try_from(base + 100).unwrap();
        Policy::new(Some(&p)).shape(&mut n);
        assert!(n.encoded_len() <= base + 100, "{}", n.encoded_len());
        assert!(
            n.snippet.len() >= 90,
            "only what must go goes: {}",
            n.snippet.len()
        );
        assert!(n.snippet.chars().all(|c| c == '邮'), "no broken character");
        assert_eq!(n.subject, "季度报告");
        // A huge limit is capped so session accepts the frame.
        p.max_push_bytes = 1_000_000;
        let mut n = mail();
        n.snippet = "x".repeat(10_000);
        Policy::new(Some(&p)).shape(&mut n);
        assert!(n.encoded_len() <= MAX_PUSH_BYTES);
    }

    #[test]
    fn truncate_never_splits_a_character() {
        let mut s = "a邮b".to_owned();
        truncate(&mut s, 3);
        assert_eq!(s, "a");
        truncate(&mut s, 10);
        assert_eq!(s, "a");
    }
}
