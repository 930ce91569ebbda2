//! GetItemEstimate (MS-ASCMD §2.2.1.9): how many changes a Sync of each
//! collection would give from the phone's key, counted by the mailbox
//! service without giving them or issuing a token.

use pushmail_wbxml::{Element, Tag, tag};

use crate::login::Login;
use crate::mail::{Mail, MailError};
use crate::sync_key::SyncKey;

const GET_ITEM_ESTIMATE: Tag = tag("GetItemEstimate", "GetItemEstimate");
const COLLECTIONS: Tag = tag("GetItemEstimate", "Collections");
const COLLECTION: Tag = tag("GetItemEstimate", "Collection");
const COLLECTION_ID: Tag = tag("GetItemEstimate", "CollectionId");
const ESTIMATE: Tag = tag("GetItemEstimate", "Estimate");
const RESPONSE: Tag = tag("GetItemEstimate", "Response");
const STATUS: Tag = tag("GetItemEstimate", "Status");
const SYNC_KEY: Tag = tag("AirSync", "SyncKey");

/// GetItemEstimate's statuses (MS-ASCMD §2.2.3.177.6).
mod status {
    pub(super) const SUCCESS: &str = "1";
    pub(super) const INVALID_COLLECTION: &str = "2";
    pub(super) const NOT_PRIMED: &str = "3";
    pub(super) const INVALID_KEY: &str = "4";
}

/// Most collections one request names (as Sync).
const MAX_COLLECTIONS: usize = crate::sync::MAX_COLLECTIONS;

fn response(code: &str, id: Option<&str>, estimate: Option<u32>) -> Element {
    let mut response = Element::of(RESPONSE).with(Element::text_of(STATUS, code));
    if let Some(id) = id {
        let mut collection = Element::of(COLLECTION).with(Element::text_of(COLLECTION_ID, id));
        if let Some(estimate) = estimate {
            collection = collection.with(Element::text_of(ESTIMATE, estimate.to_string()));
        }
        response = response.with(collection);
    }
    response
}

/// The answer to a GetItemEstimate `body`; `Err` when the mailbox could
/// not be asked (the phone is told to retry later).
pub async fn answer(mail: &Mail, login: &Login, body: &Element) -> Result<Element, MailError> {
    let mut answer = Element::of(GET_ITEM_ESTIMATE);
    let asked: Vec<&Element> = body
        .get(COLLECTIONS)
        .filter(|_| body.tag() == GET_ITEM_ESTIMATE)
        .map(|c| c.all(COLLECTION).collect())
        .unwrap_or_default();
    if asked.is_empty() || asked.len() > MAX_COLLECTIONS {
        return Ok(answer.with(response(status::INVALID_COLLECTION, None, None)));
    }
    for collection in asked {
        let id = collection
            .get(COLLECTION_ID)
            .map(|c| c.text().trim().to_owned())
            .unwrap_or_default();
        let key = collection
            .get(SYNC_KEY)
            .map(|k| k.text())
            .unwrap_or_default();
        let part = if id.is_empty() {
            response(status::INVALID_COLLECTION, None, None)
        } else {
            match SyncKey::parse(&key) {
                None => response(status::INVALID_KEY, Some(&id), None),
                Some(SyncKey::Zero) => response(status::NOT_PRIMED, Some(&id), None),
                Some(SyncKey::Since(since)) => match mail.estimate(login, &id, &since).await {
                    Ok(estimate) => response(status::SUCCESS, Some(&id), Some(estimate)),
                    Err(MailError::InvalidKey) => response(status::INVALID_KEY, Some(&id), None),
                    Err(
                        MailError::NotFound(_) | MailError::Refused(_) | MailError::OutOfRange(_),
                    ) => response(status::INVALID_COLLECTION, Some(&id), None),
                    Err(error) => return Err(error),
                },
            }
        };
        answer = answer.with(part);
    }
    Ok(answer)
}
