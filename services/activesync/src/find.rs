//! Find (MS-ASCMD §2.2.1.2, EAS 16.1): the newer search of a 16.1 phone,
//! of the mailbox (`MailBoxSearchCriterion`: words, in a folder or all of
//! them) or of the tenant's directory (`GALSearchCriterion`). The same
//! searches as Search, answered with Find's own, shorter properties and
//! ids a Sync of the folder would give.

use pushmail_wbxml::{Element, Tag, tag};

use crate::email;
use crate::login::{Login, Logins};
use crate::mail::{Mail, MailError, MailSearch, Summary};
use crate::search::{Range, gal_properties};
use crate::sync::server_id;

const FIND: Tag = tag("Find", "Find");
const SEARCH_ID: Tag = tag("Find", "SearchId");
const EXECUTE_SEARCH: Tag = tag("Find", "ExecuteSearch");
const MAILBOX_CRITERION: Tag = tag("Find", "MailBoxSearchCriterion");
const GAL_CRITERION: Tag = tag("Find", "GALSearchCriterion");
const QUERY: Tag = tag("Find", "Query");
const STATUS: Tag = tag("Find", "Status");
const FREE_TEXT: Tag = tag("Find", "FreeText");
const OPTIONS: Tag = tag("Find", "Options");
const RANGE: Tag = tag("Find", "Range");
const RESPONSE: Tag = tag("Find", "Response");
const RESULT: Tag = tag("Find", "Result");
const PROPERTIES: Tag = tag("Find", "Properties");
const PREVIEW: Tag = tag("Find", "Preview");
const HAS_ATTACHMENTS: Tag = tag("Find", "HasAttachments");
const TOTAL: Tag = tag("Find", "Total");
const DISPLAY_CC: Tag = tag("Find", "DisplayCc");
const STORE: Tag = tag("ItemOperations", "Store");
const CLASS: Tag = tag("AirSync", "Class");
const COLLECTION_ID: Tag = tag("AirSync", "CollectionId");
const SERVER_ID: Tag = tag("AirSync", "ServerId");
/// The Email properties a Find result carries of what a Sync lists.
const LISTED: [Tag; 6] = [
    tag("Email", "Subject"),
    tag("Email", "DateReceived"),
    tag("Email", "DisplayTo"),
    tag("Email", "Importance"),
    tag("Email", "Read"),
    tag("Email", "From"),
];

/// Find's statuses (MS-ASCMD §2.2.3.177.4).
mod status {
    pub(super) const SUCCESS: &str = "1";
    pub(super) const INVALID_REQUEST: &str = "2";
    pub(super) const FOLDER_SYNC_REQUIRED: &str = "3";
}

fn with_status(code: &str) -> Element {
    Element::of(FIND).with(Element::text_of(STATUS, code))
}

/// The answer to a Find `body`; `Err` when the mailbox or the directory
/// could not be asked (the phone is told to retry later).
pub async fn answer(
    logins: &dyn Logins,
    mail: &Mail,
    login: &Login,
    body: &Element,
) -> Result<Element, MailError> {
    let execute = body
        .get(EXECUTE_SEARCH)
        .filter(|_| body.tag() == FIND && body.get(SEARCH_ID).is_some());
    let Some(criterion) = execute.and_then(|e| e.elements().next()) else {
        return Ok(with_status(status::INVALID_REQUEST));
    };
    let Some(range) = Range::parse(
        criterion
            .get(OPTIONS)
            .and_then(|o| o.get(RANGE))
            .map(Element::text)
            .as_deref(),
    ) else {
        return Ok(with_status(status::INVALID_REQUEST));
    };
    let Some(query) = criterion.get(QUERY) else {
        return Ok(with_status(status::INVALID_REQUEST));
    };
    let response = match criterion.tag() {
        MAILBOX_CRITERION => match mailbox(mail, login, query, range).await {
            Ok(Some(response)) => response,
            Ok(None) => return Ok(with_status(status::INVALID_REQUEST)),
            Err(MailError::NotFound(_)) => return Ok(with_status(status::FOLDER_SYNC_REQUIRED)),
            Err(MailError::Refused(_) | MailError::OutOfRange(_) | MailError::InvalidKey) => {
                return Ok(with_status(status::INVALID_REQUEST));
            }
            Err(error) => return Err(error),
        },
        GAL_CRITERION => match gal(logins, login, &query.text(), range).await {
            Ok(Some(response)) => response,
            Ok(None) => return Ok(with_status(status::INVALID_REQUEST)),
            Err(error) => return Err(MailError::Unavailable(error)),
        },
        _ => return Ok(with_status(status::INVALID_REQUEST)),
    };
    Ok(with_status(status::SUCCESS).with(response))
}

/// The response around `results`, the `range` they fill and `total`.
fn response(store: &str, results: Vec<Element>, range: Range, total: usize) -> Element {
    let mut response = Element::of(RESPONSE)
        .with(Element::text_of(STORE, store))
        .with(Element::text_of(STATUS, status::SUCCESS));
    let answered = range.answered(results.len());
    for result in results {
        response = response.with(result);
    }
    if let Some(answered) = answered {
        response = response.with(Element::text_of(RANGE, answered));
    }
    response.with(Element::text_of(TOTAL, total.to_string()))
}

async fn mailbox(
    mail: &Mail,
    login: &Login,
    query: &Element,
    range: Range,
) -> Result<Option<Element>, MailError> {
    let mut folders = Vec::new();
    let mut search = MailSearch::default();
    for condition in query.elements() {
        match condition.tag() {
            CLASS if condition.text().trim() != "Email" => {
                return Ok(Some(response("Mailbox", Vec::new(), range, 0)));
            }
            CLASS => {}
            COLLECTION_ID => folders.push(condition.text().trim().to_owned()),
            FREE_TEXT => search.text = condition.text().trim().to_owned(),
            _ => return Ok(None),
        }
    }
    if search.text.is_empty() {
        return Ok(None);
    }
    let (found, total) = mail
        .search(login, &folders, &search, range.last.saturating_add(1))
        .await?;
    // The newest 100 at most, as Search tells them.
    let total = total.min(crate::search::MAX_RESULTS);
    let results = found
        .iter()
        .skip(range.first as usize)
        .take(range.window())
        .map(|summary| result(summary, login.preferences.attachments))
        .collect();
    Ok(Some(response("Mailbox", results, range, total as usize)))
}

/// One message as Find lists it: with the ids a Sync of its folder gives.
fn result(summary: &Summary, attachments: bool) -> Element {
    let listed = email::added(summary, None, attachments);
    let mut properties = Element::of(PROPERTIES);
    for tag in LISTED {
        if let Some(property) = listed.get(tag) {
            properties = properties.with(property.clone());
        }
    }
    let cc = email::display(&summary.cc);
    let has_attachments = attachments && !summary.attachments.is_empty();
    properties = properties
        .with(Element::text_of(DISPLAY_CC, cc))
        .with(Element::text_of(PREVIEW, summary.snippet.clone()))
        .with(Element::text_of(
            HAS_ATTACHMENTS,
            if has_attachments { "1" } else { "0" },
        ));
    Element::of(RESULT)
        .with(Element::text_of(CLASS, "Email"))
        .with(Element::text_of(
            SERVER_ID,
            server_id(&summary.message_id, &summary.folder_id),
        ))
        .with(Element::text_of(COLLECTION_ID, summary.folder_id.clone()))
        .with(properties)
}

async fn gal(
    logins: &dyn Logins,
    login: &Login,
    query: &str,
    range: Range,
) -> Result<Option<Element>, tonic::Status> {
    let query = query.trim();
    if query.is_empty() {
        return Ok(None);
    }
    let found = match logins
        .directory(login, query, crate::search::MAX_RESULTS)
        .await
    {
        Ok(found) => found,
        Err(status) if status.code() == tonic::Code::InvalidArgument => return Ok(None),
        Err(error) => return Err(error),
    };
    let total = found.len();
    let results = found
        .into_iter()
        .skip(range.first as usize)
        .take(range.window())
        .map(|address| Element::of(RESULT).with(gal_properties(PROPERTIES, address)))
        .collect();
    Ok(Some(response("GAL", results, range, total)))
}
