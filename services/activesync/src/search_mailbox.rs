//! Search of the `Mailbox` store (MS-ASCMD §2.2.1.16): the phone's words
//! (`FreeText`) and received dates (`GreaterThan`/`LessThan` on
//! `DateReceived`) in the folders it names, or in all of them, answered by
//! the mailbox service newest first, each result as a Sync lists it.

use pushmail_wbxml::{Element, Tag, tag};

use crate::email;
use crate::login::Login;
use crate::mail::{Mail, MailError, MailSearch, Summary};
use crate::search::{Range, STORE, page, status, with_status};
use crate::sync::{Wanted, wanted};

const QUERY: Tag = tag("Search", "Query");
const AND: Tag = tag("Search", "And");
const FREE_TEXT: Tag = tag("Search", "FreeText");
const GREATER_THAN: Tag = tag("Search", "GreaterThan");
const LESS_THAN: Tag = tag("Search", "LessThan");
const VALUE: Tag = tag("Search", "Value");
const OPTIONS: Tag = tag("Search", "Options");
const RESULT: Tag = tag("Search", "Result");
const LONG_ID: Tag = tag("Search", "LongId");
const PROPERTIES: Tag = tag("Search", "Properties");
const BODY_PREFERENCE: Tag = tag("AirSyncBase", "BodyPreference");
const CLASS: Tag = tag("AirSync", "Class");
const COLLECTION_ID: Tag = tag("AirSync", "CollectionId");
const DATE_RECEIVED: Tag = tag("Email", "DateReceived");

/// Most folders one search names (as the mailbox service allows).
const MAX_FOLDERS: usize = 50;

/// Bodies asked of the mailbox service at once.
const BODIES_PER_CALL: usize = 64;

/// What the phone's query asks.
#[derive(Debug, Default, PartialEq, Eq)]
struct Asked {
    /// The folders named; none: all of them.
    folders: Vec<String>,
    /// Whether it asks for mail at all (another class finds nothing).
    email: bool,
    search: MailSearch,
}

/// A `DateReceived` bound's time, ms since the epoch.
fn bound(condition: &Element) -> Option<i64> {
    condition.get(DATE_RECEIVED)?;
    let value = condition.get(VALUE)?.text();
    let at: jiff::Timestamp = value.trim().parse().ok()?;
    Some(at.as_millisecond())
}

/// The query of a Mailbox search; `None` when it is not one.
fn asked(query: &Element) -> Option<Asked> {
    let and = query.get(AND)?;
    let mut asked = Asked {
        email: true,
        ..Asked::default()
    };
    for condition in and.elements() {
        match condition.tag() {
            CLASS => asked.email = condition.text().trim() == "Email",
            COLLECTION_ID => asked.folders.push(condition.text().trim().to_owned()),
            FREE_TEXT => asked.search.text = condition.text().trim().to_owned(),
            GREATER_THAN => asked.search.after_ms = Some(bound(condition)?),
            LESS_THAN => asked.search.before_ms = Some(bound(condition)?),
            // Conversation ids are not issued by this service.
            _ => return None,
        }
    }
    (asked.folders.len() <= MAX_FOLDERS).then_some(asked)
}

/// The answer to a search of the `Mailbox` store `store`, in `range`.
pub async fn answer(mail: &Mail, login: &Login, store: &Element, range: Range) -> Element {
    let Some(asked) = store.get(QUERY).and_then(asked) else {
        return with_status(STORE, status::PROTOCOL_ERROR);
    };
    if !asked.email {
        return page(Vec::new(), range, 0);
    }
    let options = store.get(OPTIONS);
    let body = options
        .filter(|o| o.get(BODY_PREFERENCE).is_some())
        .map(|o| wanted(Some(o)).within(login.preferences.max_body_bytes));
    match found(mail, login, &asked, range, body).await {
        Ok(answer) => answer,
        Err(MailError::NotFound(_)) => with_status(STORE, status::FOLDER_SYNC_REQUIRED),
        Err(
            MailError::Refused(_)
            | MailError::OutOfRange(_)
            | MailError::InvalidKey
            | MailError::Folder(..),
        ) => with_status(STORE, status::PROTOCOL_ERROR),
        Err(error @ MailError::Unavailable(_)) => {
            tracing::warn!(error = %pushmail_common::report::Report(&error), "mailbox search failed");
            with_status(STORE, status::SERVER_ERROR)
        }
    }
}

async fn found(
    mail: &Mail,
    login: &Login,
    asked: &Asked,
    range: Range,
    body: Option<Wanted>,
) -> Result<Element, MailError> {
    let (found, total) = mail
        .search(
            login,
            &asked.folders,
            &asked.search,
            range.last.saturating_add(1),
        )
        .await?;
    // The mailbox answers the newest 100 at most: the phone is told of no
    // more, so it does not page past them.
    let total = total.min(crate::search::MAX_RESULTS);
    let wanted: Vec<Summary> = found
        .into_iter()
        .skip(range.first as usize)
        .take(range.window())
        .collect();
    let mut bodies = std::collections::HashMap::new();
    if let Some(body) = body.filter(|_| !wanted.is_empty()) {
        let ids: Vec<String> = wanted.iter().map(|s| s.message_id.clone()).collect();
        for chunk in ids.chunks(BODIES_PER_CALL) {
            for got in mail.bodies(login, chunk, body.kind, body.max).await? {
                bodies.insert(got.message_id.clone(), got);
            }
        }
    }
    let results = wanted
        .iter()
        .map(|summary| {
            let data = email::added(
                summary,
                bodies.get(&summary.message_id),
                login.preferences.attachments,
            );
            let mut properties = Element::of(PROPERTIES);
            properties.children = data.children;
            Element::of(RESULT)
                .with(Element::text_of(CLASS, "Email"))
                .with(Element::text_of(LONG_ID, summary.message_id.clone()))
                .with(Element::text_of(COLLECTION_ID, summary.folder_id.clone()))
                .with(properties)
        })
        .collect();
    Ok(page(results, range, total as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn and(children: Vec<Element>) -> Element {
        Element::of(QUERY).with(children.into_iter().fold(Element::of(AND), Element::with))
    }

    fn received(op: Tag, value: &str) -> Element {
        Element::of(op)
            .with(Element::of(DATE_RECEIVED))
            .with(Element::text_of(VALUE, value))
    }

    #[test]
    fn queries_name_folders_words_and_dates() {
        let query = and(vec![
            Element::text_of(CLASS, "Email"),
            Element::text_of(COLLECTION_ID, "f1"),
            Element::text_of(FREE_TEXT, " budget "),
            received(GREATER_THAN, "2026-12-01T00:00:00.000Z"),
            received(LESS_THAN, "2026-12-02T00:00:00.000Z"),
        ]);
        let got = asked(&query).unwrap();
        assert_eq!(got.folders, ["f1"]);
        assert!(got.email);
        assert_eq!(got.search.text, "budget");
        assert_eq!(got.search.after_ms, Some(1_796_083_200_000));
        assert_eq!(got.search.before_ms, Some(1_796_169_600_000));
        // Another class finds nothing; a bad date, an unknown condition,
        // no And, or too many folders is not a query.
        assert!(
            !asked(&and(vec![Element::text_of(CLASS, "Contacts")]))
                .unwrap()
                .email
        );
        assert_eq!(asked(&and(vec![received(GREATER_THAN, "yesterday")])), None);
        assert_eq!(
            asked(&and(vec![Element::text_of(
                tag("Search", "ConversationId"),
                "x"
            )])),
            None
        );
        assert_eq!(asked(&Element::of(QUERY)), None);
        let many = (0..=MAX_FOLDERS)
            .map(|n| Element::text_of(COLLECTION_ID, n.to_string()))
            .collect();
        assert_eq!(asked(&and(many)), None);
    }
}
