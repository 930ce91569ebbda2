//! HTTP Range for resumable downloads (RFC 9110 §14): one byte range per
//! request, which is what download managers and phones send to resume.
//! The header is read by `http-range-header`; this module decides what
//! its answer means here. Several ranges in one request are answered with
//! the whole content (allowed: a server may ignore Range), never with
//! multipart; a byte range that is nonsense (malformed, end before start,
//! an empty suffix) is 416. Every number is checked: none can overflow,
//! whatever the header says.

use http_range_header::{RangeInvalid, RangeUnsatisfiableError, SyntacticallyCorrectRange};

/// What the request asks of a representation of `total` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wanted {
    /// All of it (no Range, an ignored one, or an If-Range that no longer matches).
    Full,
    /// Bytes `start..=end`, with `start <= end < total`.
    Part { start: u64, end: u64 },
    /// A range that starts past the end, or a nonsensical one: 416.
    Unsatisfiable,
}

impl Wanted {
    /// How many bytes a part holds (`None` for the other answers).
    pub(crate) fn length(self) -> Option<u64> {
        match self {
            Self::Part { start, end } => end.checked_sub(start)?.checked_add(1),
            Self::Full | Self::Unsatisfiable => None,
        }
    }
}

/// One byte range, before the size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spec {
    /// `bytes=a-b` or `bytes=a-` (`start <= end`).
    From { start: u64, end: Option<u64> },
    /// `bytes=-n`: the last `n` bytes (`n > 0`).
    Suffix(u64),
}

/// What a `Range` header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// Nothing to act on: another unit, or several ranges (answered with
    /// the whole content, which a server may always do).
    Ignore,
    /// One byte range.
    One(Spec),
    /// A byte range that cannot be satisfied whatever the size: malformed,
    /// its end before its start, or an empty suffix. Answered 416.
    Invalid,
}

/// Reads a `Range` header. Numbers too large for 64 bits are taken as
/// the largest (the crate does so up to 30 digits; longer is refused):
/// past any real length, which is what they mean (a start there is
/// unsatisfiable, an end there is clamped to the last byte).
pub(crate) fn parse(header: &str) -> Parsed {
    let header = header.trim();
    match http_range_header::parse_range_header(header) {
        Ok(ranges) if ranges.len() == 1 => match ranges.into_ranges().first() {
            Some(SyntacticallyCorrectRange::FromStart(start)) => Parsed::One(Spec::From {
                start: *start,
                end: None,
            }),
            Some(SyntacticallyCorrectRange::Indexed(start, end)) => Parsed::One(Spec::From {
                start: *start,
                end: Some(*end),
            }),
            // An empty suffix names no byte of any representation; known
            // now, it spares opening the whole stream to say 416.
            Some(SyntacticallyCorrectRange::FromLast(0)) | None => Parsed::Invalid,
            Some(SyntacticallyCorrectRange::FromLast(n)) => Parsed::One(Spec::Suffix(*n)),
        },
        Ok(_) => Parsed::Ignore,
        // Another unit (or no `=`): RFC 9110 says ignore what we do not understand.
        Err(RangeUnsatisfiableError::Invalid(RangeInvalid::DoesNotStartWithToken)) => {
            Parsed::Ignore
        }
        // A list is answered whole whatever its members say, as the
        // crate stops at the first bad member before counting them.
        Err(_) if header.contains(',') => Parsed::Ignore,
        Err(_) => Parsed::Invalid,
    }
}

impl Spec {
    /// Where the upstream stream should start and how much it should carry
    /// (0: to the end), when that does not depend on the size.
    pub(crate) fn window(self) -> (u64, u64) {
        match self {
            Self::From { start, end } => {
                let limit = end
                    .and_then(|end| end.checked_sub(start))
                    .and_then(|span| span.checked_add(1))
                    .unwrap_or(0);
                (start, limit)
            }
            Self::Suffix(_) => (0, 0),
        }
    }

    /// The bytes of a representation of `total` bytes this range names.
    pub(crate) fn resolve(self, total: u64) -> Wanted {
        let Some(last) = total.checked_sub(1) else {
            return Wanted::Unsatisfiable;
        };
        match self {
            Self::From { start, .. } if start > last => Wanted::Unsatisfiable,
            Self::From { start, end } => Wanted::Part {
                start,
                end: end.map_or(last, |end| end.min(last)),
            },
            Self::Suffix(0) => Wanted::Unsatisfiable,
            Self::Suffix(n) => Wanted::Part {
                start: total - n.min(total),
                end: last,
            },
        }
    }
}

/// Whether an `If-Range` value still names the representation whose
/// strong validator is `etag` (quoted). Dates are not validators here:
/// previews have no modification time, so a date never matches and the
/// whole content is sent, which is always correct.
pub(crate) fn if_range_matches(if_range: Option<&str>, etag: &str) -> bool {
    match if_range.map(str::trim) {
        None => true,
        Some(value) => !value.starts_with("W/") && value == etag,
    }
}

/// Whether an `If-None-Match` value lists `etag` (weak comparison).
pub(crate) fn none_match(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(header: &str) -> Spec {
        match parse(header) {
            Parsed::One(spec) => spec,
            other => panic!("{header:?}: {other:?}"),
        }
    }

    #[test]
    fn single_ranges_parse_and_resolve() {
        assert_eq!(
            one("bytes=0-99"),
            Spec::From {
                start: 0,
                end: Some(99)
            }
        );
        assert_eq!(
            one("bytes=100-"),
            Spec::From {
                start: 100,
                end: None
            }
        );
        assert_eq!(one("bytes=-500"), Spec::Suffix(500));
        // An empty list element is allowed (RFC 9110 §5.6.1): still one range.
        assert_eq!(
            one("bytes=0-99,"),
            Spec::From {
                start: 0,
                end: Some(99)
            }
        );
        assert_eq!(
            one(" Bytes= 5-9 "),
            Spec::From {
                start: 5,
                end: Some(9)
            }
        );

        let of_1000 = |h| one(h).resolve(1000);
        assert_eq!(of_1000("bytes=0-99"), Wanted::Part { start: 0, end: 99 });
        assert_eq!(
            of_1000("bytes=900-5000"),
            Wanted::Part {
                start: 900,
                end: 999
            }
        );
        assert_eq!(
            of_1000("bytes=100-"),
            Wanted::Part {
                start: 100,
                end: 999
            }
        );
        assert_eq!(
            of_1000("bytes=-10"),
            Wanted::Part {
                start: 990,
                end: 999
            }
        );
        assert_eq!(of_1000("bytes=-5000"), Wanted::Part { start: 0, end: 999 });
        assert_eq!(of_1000("bytes=1000-"), Wanted::Unsatisfiable);
        assert_eq!(of_1000("bytes=999-999").length(), Some(1));
        assert_eq!(one("bytes=-1").resolve(0), Wanted::Unsatisfiable);
        assert_eq!(one("bytes=0-").resolve(0), Wanted::Unsatisfiable);
    }

    #[test]
    fn the_largest_numbers_clamp_or_are_unsatisfiable_never_overflow() {
        let max = u64::MAX;
        let whole = one("bytes=0-18446744073709551615");
        assert_eq!(whole.resolve(1000), Wanted::Part { start: 0, end: 999 });
        assert_eq!(whole.window(), (0, 0), "the span does not fit: to the end");
        assert_eq!(
            whole.resolve(max),
            Wanted::Part {
                start: 0,
                end: max - 1
            }
        );
        assert_eq!(
            Wanted::Part {
                start: 0,
                end: max - 1
            }
            .length(),
            Some(max),
            "a length of u64::MAX still fits"
        );
        assert_eq!(Wanted::Part { start: 0, end: max }.length(), None);
        // Past u64 entirely: the same as u64::MAX.
        assert_eq!(
            one("bytes=0-99999999999999999999999999").resolve(10),
            Wanted::Part { start: 0, end: 9 }
        );
        assert_eq!(
            one("bytes=99999999999999999999999-").resolve(10),
            Wanted::Unsatisfiable
        );
        assert_eq!(
            one("bytes=18446744073709551615-").resolve(max),
            Wanted::Unsatisfiable
        );
        assert_eq!(
            one("bytes=-18446744073709551615").resolve(10),
            Wanted::Part { start: 0, end: 9 }
        );
        assert_eq!(
            one("bytes=-99999999999999999999").resolve(max),
            Wanted::Part {
                start: 0,
                end: max - 1
            }
        );
        assert_eq!(
            one("bytes=18446744073709551614-18446744073709551615").window(),
            (max - 1, 2)
        );
        assert_eq!(one("bytes=5-5").window(), (5, 1));
        assert_eq!(one("bytes=5-").window(), (5, 0));
        assert_eq!(one("bytes=-5").window(), (0, 0));
    }

    #[test]
    fn start_past_the_length_is_unsatisfiable() {
        assert_eq!(one("bytes=10-").resolve(10), Wanted::Unsatisfiable);
        assert_eq!(one("bytes=10-20").resolve(10), Wanted::Unsatisfiable);
        assert_eq!(
            one("bytes=9-20").resolve(10),
            Wanted::Part { start: 9, end: 9 }
        );
    }

    #[test]
    fn nonsense_is_invalid_and_other_units_or_several_ranges_are_ignored() {
        for header in [
            "bytes=5-1",
            "bytes=18446744073709551615-0",
            "bytes=-0",
            "bytes=a-b",
            "bytes=-",
            "bytes=+1-2",
            "bytes=1-+2",
            "bytes=1--2",
            "bytes=0x10-",
            "bytes=1 2-3",
            "bytes=",
            "bytes=5",
            // RFC 9110's int-range has no whitespace around the dash.
            "bytes=5 - 9",
            // Over 30 digits: refused before any parsing, not read as u64::MAX.
            "bytes=0-0000000000000000000000000000001",
        ] {
            assert_eq!(parse(header), Parsed::Invalid, "{header:?}");
        }
        for header in [
            "bytes=0-1,5-6",
            "bytes=0-0,-1",
            "bytes=5-1,2-3",
            "items=0-5",
            "",
            "bytes",
        ] {
            assert_eq!(parse(header), Parsed::Ignore, "{header:?}");
        }
    }

    #[test]
    fn validators() {
        assert!(if_range_matches(None, "\"abc\""));
        assert!(if_range_matches(Some("\"abc\""), "\"abc\""));
        assert!(!if_range_matches(Some("\"old\""), "\"abc\""));
        assert!(!if_range_matches(Some("W/\"abc\""), "\"abc\""));
        assert!(!if_range_matches(
            Some("Wed, 21 Oct 2015 07:28:00 GMT"),
            "\"abc\""
        ));
        assert!(none_match("\"x\", W/\"abc\"", "\"abc\""));
        assert!(none_match("*", "\"abc\""));
        assert!(!none_match("\"x\"", "\"abc\""));
    }
}
