//! A mailbox search on the provider's server (`UID SEARCH`, RFC 3501
//! §6.4.4): its own index finds the words in headers and text. IMAP
//! counts dates by the day in the server's zone, so the dates asked are
//! widened by a day each side and the caller checks them exactly.

use async_imap::imap_proto::{MailboxDatum, Response};

use crate::backend::BackendError;
use crate::domain::{Query, Uid};

use super::conn::{Conn, quoted};

const DAY_MS: i64 = 86_400_000;

/// An IMAP date (`7-Dec-2026`) of the day `ms` falls on, in UTC.
fn day(ms: i64) -> Option<String> {
    let at = jiff::Timestamp::from_millisecond(ms).ok()?;
    Some(at.strftime("%-d-%b-%Y").to_string())
}

/// The search criteria of `query`; `ALL` when it asks nothing.
pub(crate) fn criteria(query: &Query) -> String {
    let mut keys = Vec::new();
    if let Some(after) = query
        .received_after_ms
        .and_then(|ms| day(ms.saturating_sub(DAY_MS)))
    {
        keys.push(format!("SINCE {after}"));
    }
    if let Some(before) = query
        .received_before_ms
        .and_then(|ms| day(ms.saturating_add(DAY_MS)))
    {
        keys.push(format!("BEFORE {before}"));
    }
    let mut charset = "";
    if let Some(text) = &query.text {
        if !text.is_ascii() {
            charset = "CHARSET UTF-8 ";
        }
        keys.push(format!("TEXT {}", quoted(text)));
    }
    if keys.is_empty() {
        keys.push("ALL".to_owned());
    }
    format!("{charset}{}", keys.join(" "))
}

/// The UIDs of the selected folder's messages matching `query`.
pub(crate) async fn search(conn: &mut Conn, query: &Query) -> Result<Vec<Uid>, BackendError> {
    let mut found = Vec::new();
    conn.exchange(
        "SEARCH",
        &format!("UID SEARCH {}", criteria(query)),
        |response| {
            if let Response::MailboxData(MailboxDatum::Search(uids)) = response {
                found.extend(uids.iter().copied().map(Uid));
            }
        },
    )
    .await?;
    found.sort_unstable();
    found.dedup();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criteria_widen_dates_by_a_day_and_quote_the_words() {
        assert_eq!(criteria(&Query::default()), "ALL");
        // 2026-12-07T12:00:00Z.
        let noon = 1_796_644_800_000;
        let query = Query {
            text: Some(r#"say "hi""#.to_owned()),
            received_after_ms: Some(noon),
            received_before_ms: Some(noon),
        };
        assert_eq!(
            criteria(&query),
            r#"SINCE 6-Dec-2026 BEFORE 8-Dec-2026 TEXT "say \"hi\"""#
        );
        let chinese = Query {
            text: Some("会议".to_owned()),
            ..Query::default()
        };
        assert_eq!(criteria(&chinese), "CHARSET UTF-8 TEXT \"会议\"");
    }
}
