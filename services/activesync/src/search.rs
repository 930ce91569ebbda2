//! Search (MS-ASCMD §2.2.1.16) of the global address list, where the
//! phone completes an address from the tenant's directory (its accounts
//! in the domains it owns), and of the mailbox (`search_mailbox`). The
//! request's status says whether it was understood; the store's, whether
//! the search worked.

use pushmail_wbxml::{Element, Tag, tag};

use crate::login::{Login, Logins};
use crate::mail::Mail;

const SEARCH: Tag = tag("Search", "Search");
pub(crate) const STORE: Tag = tag("Search", "Store");
const NAME: Tag = tag("Search", "Name");
const QUERY: Tag = tag("Search", "Query");
const OPTIONS: Tag = tag("Search", "Options");
const RANGE: Tag = tag("Search", "Range");
const STATUS: Tag = tag("Search", "Status");
const RESPONSE: Tag = tag("Search", "Response");
const RESULT: Tag = tag("Search", "Result");
const PROPERTIES: Tag = tag("Search", "Properties");
const TOTAL: Tag = tag("Search", "Total");
const DISPLAY_NAME: Tag = tag("GAL", "DisplayName");
const ALIAS: Tag = tag("GAL", "Alias");
const EMAIL_ADDRESS: Tag = tag("GAL", "EmailAddress");

/// Search's statuses (MS-ASCMD §2.2.3.177.13).
pub(crate) mod status {
    pub(crate) const SUCCESS: &str = "1";
    pub(crate) const PROTOCOL_ERROR: &str = "2";
    pub(crate) const SERVER_ERROR: &str = "3";
    pub(crate) const FOLDER_SYNC_REQUIRED: &str = "11";
    pub(crate) const ACCESS_BLOCKED: &str = "13";
}

/// Most results one answer carries: a phone pages through more with
/// later ranges, and the directory answers no more than this anyway.
pub const MAX_RESULTS: u32 = 100;

/// The results a phone asks for: `first-last`, both counted from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The first result wanted.
    pub first: u32,
    /// The last result wanted, within [`MAX_RESULTS`] of the first.
    pub last: u32,
}

impl Range {
    /// `first-last` as the phone wrote it, or the first 100 when it wrote
    /// none; `None` when it is not a range or spans more than
    /// [`MAX_RESULTS`].
    pub fn parse(text: Option<&str>) -> Option<Self> {
        let Some(text) = text else {
            return Some(Self {
                first: 0,
                last: MAX_RESULTS - 1,
            });
        };
        let (first, last) = text.trim().split_once('-')?;
        let (first, last): (u32, u32) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
        (first <= last && last - first < MAX_RESULTS).then_some(Self { first, last })
    }

    /// How many results the range asks for (at most [`MAX_RESULTS`]).
    pub(crate) fn window(self) -> usize {
        (self.last - self.first + 1) as usize
    }

    /// The range the phone is told it got for `got` results from `first`.
    pub(crate) fn answered(self, got: usize) -> Option<String> {
        let got = u32::try_from(got).ok().filter(|&g| g > 0)?;
        Some(format!("{}-{}", self.first, self.first + got - 1))
    }
}

pub(crate) fn with_status(of: Tag, code: &str) -> Element {
    Element::of(of).with(Element::text_of(STATUS, code))
}

/// The answer to a Search `body` from the phone of `login`.
pub async fn answer(logins: &dyn Logins, mail: &Mail, login: &Login, body: &Element) -> Element {
    let Some(store) = body.get(STORE).filter(|_| body.tag() == SEARCH) else {
        return with_status(SEARCH, status::PROTOCOL_ERROR);
    };
    let name = store.get(NAME).map(Element::text).unwrap_or_default();
    let range = Range::parse(
        store
            .get(OPTIONS)
            .and_then(|o| o.get(RANGE))
            .map(Element::text)
            .as_deref(),
    );
    let answered = match (name.trim(), range) {
        (_, None) => with_status(STORE, status::PROTOCOL_ERROR),
        (gal, Some(range)) if gal.eq_ignore_ascii_case("GAL") => {
            directory(logins, login, store, range).await
        }
        (mailbox, Some(range)) if mailbox.eq_ignore_ascii_case("Mailbox") => {
            crate::search_mailbox::answer(mail, login, store, range).await
        }
        // Document libraries (SharePoint, UNC shares) are not the
        // platform's to reach.
        (library, Some(_)) if library.eq_ignore_ascii_case("DocumentLibrary") => {
            with_status(STORE, status::ACCESS_BLOCKED)
        }
        _ => with_status(STORE, status::PROTOCOL_ERROR),
    };
    with_status(SEARCH, status::SUCCESS).with(Element::of(RESPONSE).with(answered))
}

/// The directory's addresses containing the query, in `range`.
async fn directory(logins: &dyn Logins, login: &Login, store: &Element, range: Range) -> Element {
    let query = store.get(QUERY).map(Element::text).unwrap_or_default();
    let query = query.trim();
    if query.is_empty() {
        return with_status(STORE, status::PROTOCOL_ERROR);
    }
    let found = match logins.directory(login, query, MAX_RESULTS).await {
        Ok(found) => found,
        Err(status) if status.code() == tonic::Code::InvalidArgument => {
            return with_status(STORE, status::PROTOCOL_ERROR);
        }
        Err(error) => {
            tracing::warn!(%error, "directory search failed");
            return with_status(STORE, status::SERVER_ERROR);
        }
    };
    let total = found.len();
    let wanted: Vec<String> = found
        .into_iter()
        .skip(range.first as usize)
        .take(range.window())
        .collect();
    let results = wanted
        .into_iter()
        .map(|address| Element::of(RESULT).with(gal_properties(PROPERTIES, address)))
        .collect();
    page(results, range, total)
}

/// A store's successful answer: `results` (the range's page), the range
/// they fill and `total`; nothing found is one empty `Result` and no
/// range (§2.2.3.142).
pub(crate) fn page(results: Vec<Element>, range: Range, total: usize) -> Element {
    let answer = with_status(STORE, status::SUCCESS);
    let Some(answered) = range.answered(results.len()) else {
        return answer
            .with(Element::of(RESULT))
            .with(Element::text_of(TOTAL, total.to_string()));
    };
    results
        .into_iter()
        .fold(answer, Element::with)
        .with(Element::text_of(RANGE, answered))
        .with(Element::text_of(TOTAL, total.to_string()))
}

/// A directory entry's properties under `of` (Search's or Find's
/// `Properties`): the address is the name shown, for want of another.
pub(crate) fn gal_properties(of: Tag, address: String) -> Element {
    let alias = address
        .split_once('@')
        .map_or(address.as_str(), |(local, _)| local)
        .to_owned();
    Element::of(of)
        .with(Element::text_of(DISPLAY_NAME, address.clone()))
        .with(Element::text_of(ALIAS, alias))
        .with(Element::text_of(EMAIL_ADDRESS, address))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_counted_from_zero_and_bounded() {
        assert_eq!(Range::parse(None), Some(Range { first: 0, last: 99 }));
        assert_eq!(
            Range::parse(Some(" 10-19 ")),
            Some(Range {
                first: 10,
                last: 19
            })
        );
        // A window of a million, backwards, or not numbers: refused.
        for bad in ["0-999999", "9-3", "a-b", "7", "-1-3", ""] {
            assert_eq!(Range::parse(Some(bad)), None, "{bad}");
        }
        let range = Range::parse(Some("5-9")).unwrap();
        assert_eq!(range.answered(3).as_deref(), Some("5-7"));
        assert_eq!(range.answered(0), None);
    }
}
