//! ItemOperations (MS-ASCMD §2.2.1.10): Fetch of a message (with the body
//! the phone prefers) or of an attachment by its reference, whole or a
//! byte range of it (`Range`), base64 in `Data`; and EmptyFolderContents,
//! which removes a folder's messages for good (phones offer it for the
//! trash). Each operation has its own status; the answer's holds only
//! for a request that is not ItemOperations at all.

use base64::Engine as _;
use pushmail_wbxml::{Element, Tag, tag};

use crate::login::Login;
use crate::mail::{Mail, MailError};
use crate::sync::{Wanted, fetched, message_id, wanted};

const ITEM_OPERATIONS: Tag = tag("ItemOperations", "ItemOperations");
const FETCH: Tag = tag("ItemOperations", "Fetch");
const STORE: Tag = tag("ItemOperations", "Store");
const OPTIONS: Tag = tag("ItemOperations", "Options");
const RANGE: Tag = tag("ItemOperations", "Range");
const TOTAL: Tag = tag("ItemOperations", "Total");
const PROPERTIES: Tag = tag("ItemOperations", "Properties");
const DATA: Tag = tag("ItemOperations", "Data");
const STATUS: Tag = tag("ItemOperations", "Status");
const RESPONSE: Tag = tag("ItemOperations", "Response");
const EMPTY_FOLDER_CONTENTS: Tag = tag("ItemOperations", "EmptyFolderContents");
const COLLECTION_ID: Tag = tag("AirSync", "CollectionId");
const SERVER_ID: Tag = tag("AirSync", "ServerId");
const CLASS: Tag = tag("AirSync", "Class");
const FILE_REFERENCE: Tag = tag("AirSyncBase", "FileReference");
const CONTENT_TYPE: Tag = tag("AirSyncBase", "ContentType");
const LONG_ID: Tag = tag("Search", "LongId");

/// ItemOperations' statuses (MS-ASCMD §2.2.3.177.8).
mod status {
    pub(super) const SUCCESS: &str = "1";
    pub(super) const PROTOCOL_ERROR: &str = "2";
    pub(super) const SERVER_ERROR: &str = "3";
    pub(super) const NOT_FOUND: &str = "6";
    pub(super) const BAD_RANGE: &str = "8";
    pub(super) const UNKNOWN_STORE: &str = "9";
    pub(super) const BAD_ATTACHMENT: &str = "15";
    pub(super) const BLOCKED: &str = "16";
}

/// Most operations one request names.
const MAX_OPERATIONS: usize = 64;

/// Most attachment bytes one answer carries (before base64): a phone
/// fetches a larger attachment by ranges.
pub const MAX_FETCH: u64 = 16 << 20;

/// An inclusive byte range, `first-last`.
pub fn range(text: &str) -> Option<(u64, u64)> {
    let (first, last) = text.trim().split_once('-')?;
    let (first, last) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
    (first <= last).then_some((first, last))
}

fn with_status(of: Tag, code: &str) -> Element {
    Element::of(of).with(Element::text_of(STATUS, code))
}

/// The answer to an ItemOperations `body`.
pub async fn answer(mail: &Mail, login: &Login, body: &Element) -> Element {
    let operations: Vec<&Element> = body.elements().collect();
    if body.tag() != ITEM_OPERATIONS || operations.is_empty() || operations.len() > MAX_OPERATIONS {
        return with_status(ITEM_OPERATIONS, status::PROTOCOL_ERROR);
    }
    let mut response = Element::of(RESPONSE);
    for operation in operations {
        response = response.with(match operation.tag() {
            FETCH => fetch(mail, login, operation).await,
            EMPTY_FOLDER_CONTENTS => empty(mail, login, operation).await,
            other => with_status(other, status::PROTOCOL_ERROR),
        });
    }
    with_status(ITEM_OPERATIONS, status::SUCCESS).with(response)
}

fn failure(error: &MailError, not_found: &'static str) -> &'static str {
    match error {
        MailError::NotFound(_)
        | MailError::Refused(_)
        | MailError::InvalidKey
        | MailError::Folder(..) => not_found,
        MailError::OutOfRange(_) => status::BAD_RANGE,
        MailError::Unavailable(_) => {
            tracing::warn!(error = %pushmail_common::report::Report(error), "item operation failed");
            status::SERVER_ERROR
        }
    }
}

async fn empty(mail: &Mail, login: &Login, operation: &Element) -> Element {
    let folder = operation
        .get(COLLECTION_ID)
        .map(|c| c.text().trim().to_owned())
        .unwrap_or_default();
    let code = if folder.is_empty() {
        status::PROTOCOL_ERROR
    } else {
        match mail.empty_folder(login, &folder).await {
            Ok(()) => status::SUCCESS,
            Err(error) => failure(&error, status::NOT_FOUND),
        }
    };
    with_status(EMPTY_FOLDER_CONTENTS, code).with(Element::text_of(COLLECTION_ID, folder))
}

async fn fetch(mail: &Mail, login: &Login, operation: &Element) -> Element {
    let text = |t| operation.get(t).map(|e| e.text().trim().to_owned());
    if text(STORE).is_some_and(|s| !s.eq_ignore_ascii_case("Mailbox")) {
        return with_status(FETCH, status::UNKNOWN_STORE);
    }
    let options = operation.get(OPTIONS);
    let asked_range = options.and_then(|o| o.get(RANGE)).map(Element::text);
    if let Some(reference) = text(FILE_REFERENCE) {
        return attachment(mail, login, &reference, asked_range.as_deref()).await;
    }
    if let Some(long_id) = text(LONG_ID) {
        return found(mail, login, &long_id, wanted(options)).await;
    }
    match (text(COLLECTION_ID), text(SERVER_ID)) {
        (Some(collection), Some(server)) => {
            message(mail, login, &collection, &server, wanted(options)).await
        }
        _ => with_status(FETCH, status::PROTOCOL_ERROR),
    }
}

/// A search result, named by the `LongId` the search gave.
async fn found(mail: &Mail, login: &Login, long_id: &str, wanted: Wanted) -> Element {
    match fetched(mail, login, long_id, wanted).await {
        Ok(data) => {
            let mut properties = Element::of(PROPERTIES);
            properties.children = data.children;
            with_status(FETCH, status::SUCCESS)
                .with(Element::text_of(LONG_ID, long_id))
                .with(Element::text_of(CLASS, "Email"))
                .with(properties)
        }
        Err(error) => with_status(FETCH, failure(&error, status::NOT_FOUND))
            .with(Element::text_of(LONG_ID, long_id)),
    }
}

async fn message(
    mail: &Mail,
    login: &Login,
    collection: &str,
    server: &str,
    wanted: Wanted,
) -> Element {
    let id = message_id(server, collection);
    match fetched(mail, login, &id, wanted).await {
        Ok(data) => {
            let mut properties = Element::of(PROPERTIES);
            properties.children = data.children;
            with_status(FETCH, status::SUCCESS)
                .with(Element::text_of(COLLECTION_ID, collection))
                .with(Element::text_of(SERVER_ID, server))
                .with(Element::text_of(CLASS, "Email"))
                .with(properties)
        }
        Err(error) => with_status(FETCH, failure(&error, status::NOT_FOUND))
            .with(Element::text_of(COLLECTION_ID, collection))
            .with(Element::text_of(SERVER_ID, server)),
    }
}

async fn attachment(
    mail: &Mail,
    login: &Login,
    reference: &str,
    asked_range: Option<&str>,
) -> Element {
    let answer = |code| with_status(FETCH, code).with(Element::text_of(FILE_REFERENCE, reference));
    // Attachments turned off in the number's preferences: access to the
    // resource is blocked.
    if !login.preferences.attachments {
        return answer(status::BLOCKED);
    }
    let Some((message, part)) = reference.rsplit_once(':') else {
        return answer(status::BAD_ATTACHMENT);
    };
    let (offset, wanted) = match asked_range.map(range) {
        None => (0, MAX_FETCH),
        Some(None) => return answer(status::BAD_RANGE),
        Some(Some((first, last))) => (first, (last - first).saturating_add(1).min(MAX_FETCH)),
    };
    // The mailbox service gives an attachment in chunks; a range is
    // gathered from as many as it spans.
    let mut data = Vec::new();
    let mut total;
    let mut content_type = String::new();
    loop {
        let at = offset + data.len() as u64;
        let chunk = match mail
            .attachment(login, message, part, at, wanted - data.len() as u64)
            .await
        {
            Ok(chunk) => chunk,
            Err(error) => return answer(failure(&error, status::BAD_ATTACHMENT)),
        };
        total = chunk.total_bytes;
        if content_type.is_empty() {
            content_type = chunk.content_type;
        }
        let empty = chunk.data.is_empty();
        data.extend(chunk.data);
        if empty || data.len() as u64 >= wanted || offset + data.len() as u64 >= total {
            break;
        }
    }
    if total > 0 && offset >= total {
        return answer(status::BAD_RANGE);
    }
    let mut properties = Element::of(PROPERTIES).with(Element::text_of(CONTENT_TYPE, content_type));
    if asked_range.is_some() || (data.len() as u64) < total {
        let last = (offset + data.len() as u64).saturating_sub(1);
        properties = properties
            .with(Element::text_of(RANGE, format!("{offset}-{last}")))
            .with(Element::text_of(TOTAL, total.to_string()));
    }
    properties = properties.with(Element::text_of(
        DATA,
        base64::engine::general_purpose::STANDARD.encode(&data),
    ));
    answer(status::SUCCESS).with(properties)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_inclusive_and_ordered() {
        assert_eq!(range("0-99"), Some((0, 99)));
        assert_eq!(range(" 5 - 5 "), Some((5, 5)));
        for bad in ["", "5", "9-1", "a-b", "-3", "1-"] {
            assert_eq!(range(bad), None, "{bad}");
        }
    }
}
