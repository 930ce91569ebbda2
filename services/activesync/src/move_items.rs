//! MoveItems (MS-ASCMD §2.2.1.12): messages filed into another folder on
//! the mail server, each answered with its id there. Moves to one folder
//! are one call to the mailbox service.

use std::collections::BTreeMap;

use pushmail_wbxml::{Element, Tag, tag};

use crate::login::Login;
use crate::mail::{Mail, MailError};
use crate::sync::{message_id, server_id};

const MOVE_ITEMS: Tag = tag("Move", "MoveItems");
const MOVE: Tag = tag("Move", "Move");
const SRC_MSG_ID: Tag = tag("Move", "SrcMsgId");
const SRC_FLD_ID: Tag = tag("Move", "SrcFldId");
const DST_FLD_ID: Tag = tag("Move", "DstFldId");
const RESPONSE: Tag = tag("Move", "Response");
const STATUS: Tag = tag("Move", "Status");
const DST_MSG_ID: Tag = tag("Move", "DstMsgId");

/// MoveItems' statuses (MS-ASCMD §2.2.3.177.9).
mod status {
    pub(super) const INVALID_SOURCE: &str = "1";
    pub(super) const INVALID_DESTINATION: &str = "2";
    pub(super) const SUCCESS: &str = "3";
    pub(super) const SAME_FOLDER: &str = "4";
    pub(super) const FAILED: &str = "5";
}

/// Most moves one request names.
pub const MAX_MOVES: usize = 512;

fn response(src: &str, code: &str, dst: Option<&str>) -> Element {
    let mut response = Element::of(RESPONSE)
        .with(Element::text_of(SRC_MSG_ID, src))
        .with(Element::text_of(STATUS, code));
    if let Some(dst) = dst {
        response = response.with(Element::text_of(DST_MSG_ID, dst));
    }
    response
}

/// One asked move: the message as the phone names it, and its folders.
struct Asked {
    src: String,
    from: String,
    to: String,
}

/// The answer to a MoveItems `body`; `None` when it is not one.
pub async fn answer(mail: &Mail, login: &Login, body: &Element) -> Option<Element> {
    if body.tag() != MOVE_ITEMS {
        return None;
    }
    let field = |m: &Element, t| {
        m.get(t)
            .map(|e| e.text().trim().to_owned())
            .unwrap_or_default()
    };
    let asked: Vec<Asked> = body
        .all(MOVE)
        .map(|m| Asked {
            src: field(m, SRC_MSG_ID),
            from: field(m, SRC_FLD_ID),
            to: field(m, DST_FLD_ID),
        })
        .collect();
    if asked.is_empty() || asked.len() > MAX_MOVES {
        return None;
    }
    let mut answers: Vec<Option<Element>> = vec![None; asked.len()];
    // Grouped by destination, keeping each move's place in the answer.
    let mut by_destination: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (at, one) in asked.iter().enumerate() {
        if one.src.is_empty() || one.from.is_empty() {
            answers[at] = Some(response(&one.src, status::INVALID_SOURCE, None));
        } else if one.to.is_empty() {
            answers[at] = Some(response(&one.src, status::INVALID_DESTINATION, None));
        } else if one.to == one.from {
            answers[at] = Some(response(&one.src, status::SAME_FOLDER, None));
        } else {
            by_destination.entry(&one.to).or_default().push(at);
        }
    }
    for (to, places) in by_destination {
        let ids: Vec<String> = places
            .iter()
            .map(|&at| message_id(&asked[at].src, &asked[at].from))
            .collect();
        match mail.move_to(login, &ids, to).await {
            Ok(moved) => {
                for (&at, id) in places.iter().zip(&ids) {
                    let src = &asked[at].src;
                    answers[at] = Some(match moved.iter().find(|(from, _)| from == id) {
                        // Without the new id (a server without UIDPLUS)
                        // the destination's next Sync lists it.
                        Some((_, new)) if new.is_empty() => {
                            response(src, status::SUCCESS, Some(src))
                        }
                        Some((_, new)) => response(src, status::SUCCESS, Some(&server_id(new, to))),
                        None => response(src, status::INVALID_SOURCE, None),
                    });
                }
            }
            Err(error) => {
                let code = match &error {
                    // An id the service never issued.
                    MailError::Refused(_) => status::INVALID_SOURCE,
                    // A folder the account does not have (a message that
                    // is gone is simply not among the moved).
                    MailError::NotFound(_) => status::INVALID_DESTINATION,
                    MailError::InvalidKey | MailError::OutOfRange(_) | MailError::Folder(..) => {
                        status::FAILED
                    }
                    MailError::Unavailable(_) => {
                        tracing::warn!(error = %pushmail_common::report::Report(&error), "move failed");
                        status::FAILED
                    }
                };
                for &at in &places {
                    answers[at] = Some(response(&asked[at].src, code, None));
                }
            }
        }
    }
    let mut answer = Element::of(MOVE_ITEMS);
    for one in answers.into_iter().flatten() {
        answer = answer.with(one);
    }
    Some(answer)
}
