//! HTTP Range for resumable downloads (RFC 9110 §14): one byte range per
//! request, which is what download managers and phones send to resume.
//! Several ranges in one request are answered with the whole content
//! (allowed: a server may ignore Range), never with multipart.

/// What the request asks of a representation of `total` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// All of it (no Range, an ignored one, or an If-Range that no longer matches).
    Full,
    /// Bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// A range that starts past the end: 416.
    Unsatisfiable,
}

/// A parsed `Range` header, before the size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spec {
    /// `bytes=a-b` or `bytes=a-`.
    From { start: u64, end: Option<u64> },
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

/// The one range of a `Range` header; `None` for anything else (another
/// unit, several ranges, a malformed value), which is then ignored.
pub fn parse(header: &str) -> Option<Spec> {
    let set = header.trim().strip_prefix("bytes=")?.trim();
    if set.contains(',') {
        return None;
    }
    let (first, last) = set.split_once('-')?;
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    if first.trim().is_empty() {
        return number(last).filter(|n| *n > 0).map(Spec::Suffix);
    }
    let start = number(first)?;
    let end = if last.trim().is_empty() {
        None
    } else {
        Some(number(last)?)
    };
    if end.is_some_and(|end| end < start) {
        return None;
    }
    Some(Spec::From { start, end })
}

impl Spec {
    /// The first byte wanted, when it does not depend on the size.
    pub fn offset(self) -> Option<u64> {
        match self {
            Self::From { start, .. } => Some(start),
            Self::Suffix(_) => None,
        }
    }

    /// The bytes of a representation of `total` bytes this range names.
    pub fn resolve(self, total: u64) -> Wanted {
        match self {
            Self::From { start, .. } if start >= total => Wanted::Unsatisfiable,
            Self::From { start, end } => Wanted::Part {
                start,
                end: end.map_or(total - 1, |end| end.min(total - 1)),
            },
            Self::Suffix(_) if total == 0 => Wanted::Unsatisfiable,
            Self::Suffix(n) => Wanted::Part {
                start: total.saturating_sub(n),
                end: total - 1,
            },
        }
    }
}

/// Whether an `If-Range` value still names the representation whose
/// strong validator is `etag` (quoted). Dates are not validators here:
/// previews have no modification time, so a date never matches and the
/// whole content is sent, which is always correct.
pub fn if_range_matches(if_range: Option<&str>, etag: &str) -> bool {
    match if_range.map(str::trim) {
        None => true,
        Some(value) => !value.starts_with("W/") && value == etag,
    }
}

/// Whether an `If-None-Match` value lists `etag` (weak comparison).
pub fn none_match(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_ranges_parse_and_resolve() {
        assert_eq!(
            parse("bytes=0-99"),
            Some(Spec::From {
                start: 0,
                end: Some(99)
            })
        );
        assert_eq!(
            parse("bytes=100-"),
            Some(Spec::From {
                start: 100,
                end: None
            })
        );
        assert_eq!(parse("bytes=-500"), Some(Spec::Suffix(500)));
        assert_eq!(
            parse(" bytes= 5 - 9 "),
            Some(Spec::From {
                start: 5,
                end: Some(9)
            })
        );

        let of_1000 = |h| parse(h).unwrap().resolve(1000);
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
        assert_eq!(parse("bytes=-1").unwrap().resolve(0), Wanted::Unsatisfiable);
    }

    #[test]
    fn what_is_not_one_byte_range_is_ignored() {
        for header in [
            "bytes=0-1,5-6",
            "items=0-5",
            "bytes=5-1",
            "bytes=-0",
            "bytes=a-b",
            "bytes=-",
            "bytes=+1-2",
            "bytes=99999999999999999999999-",
            "",
        ] {
            assert_eq!(parse(header), None, "{header:?}");
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
