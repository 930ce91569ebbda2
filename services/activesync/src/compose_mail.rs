//! SendMail, SmartReply and SmartForward (MS-ASCMD §2.2.1.17, .19, .20):
//! the message the phone composed, sent through the mailbox service as
//! every message is sent (the account's address as sender, threading and
//! the original quoted or carried for a reply or forward, a Sent copy),
//! once per `ClientId`. Success is an empty answer; a failure is the
//! command's own status.

use pushmail_wbxml::{Element, Node, Tag, tag};

use crate::login::Login;
use crate::mail::{Mail, Outgoing, SendError, Sending};
use crate::protocol::Command;
use crate::sync::message_id;

const CLIENT_ID: Tag = tag("ComposeMail", "ClientId");
const MIME: Tag = tag("ComposeMail", "Mime");
const SOURCE: Tag = tag("ComposeMail", "Source");
const FOLDER_ID: Tag = tag("ComposeMail", "FolderId");
const ITEM_ID: Tag = tag("ComposeMail", "ItemId");
const LONG_ID: Tag = tag("ComposeMail", "LongId");
const REPLACE_MIME: Tag = tag("ComposeMail", "ReplaceMime");
const SAVE_IN_SENT_ITEMS: Tag = tag("ComposeMail", "SaveInSentItems");
const STATUS: Tag = tag("ComposeMail", "Status");

/// MS-ASCMD §2.2.2's common statuses these commands answer.
mod status {
    pub(super) const INVALID_CONTENT: &str = "101";
    pub(super) const INVALID_MIME: &str = "107";
    pub(super) const SERVER_ERROR_RETRY_LATER: &str = "111";
    pub(super) const MAIL_SUBMISSION_FAILED: &str = "120";
    pub(super) const ITEM_NOT_FOUND: &str = "150";
}

/// The command's own root (`SendMail`, `SmartReply`, `SmartForward`).
fn root(command: Command) -> Tag {
    match command {
        Command::SmartReply => tag("ComposeMail", "SmartReply"),
        Command::SmartForward => tag("ComposeMail", "SmartForward"),
        _ => tag("ComposeMail", "SendMail"),
    }
}

fn failed(command: Command, code: &str) -> Option<Element> {
    Some(Element::of(root(command)).with(Element::text_of(STATUS, code)))
}

/// The message bytes of `Mime` (opaque, or text from a lenient client).
fn mime(body: &Element) -> Option<Vec<u8>> {
    let mime = body.get(MIME)?;
    let mut bytes = Vec::new();
    for node in &mime.children {
        match node {
            Node::Opaque(data) => bytes.extend_from_slice(data),
            Node::Text(text) => bytes.extend_from_slice(text.as_bytes()),
            Node::Element(_) => {}
        }
    }
    (!bytes.is_empty()).then_some(bytes)
}

/// The message replied to or forwarded: `Source`'s folder and item, or
/// the `LongId` a search result gave (the mailbox's own id).
fn source(body: &Element) -> Option<String> {
    let source = body.get(SOURCE)?;
    let text = |t| source.get(t).map(|e| e.text().trim().to_owned());
    if let Some(long_id) = text(LONG_ID) {
        return Some(long_id).filter(|id| !id.is_empty());
    }
    Some(message_id(&text(ITEM_ID)?, &text(FOLDER_ID)?))
}

/// The answer to `command` with `body`: `None` when the message was sent
/// (an empty answer), else the command's status.
pub async fn answer(
    mail: &Mail,
    login: &Login,
    command: Command,
    body: &Element,
) -> Option<Element> {
    if body.tag() != root(command) {
        return failed(command, status::INVALID_CONTENT);
    }
    let client_id = body
        .get(CLIENT_ID)
        .map(|c| c.text().trim().to_owned())
        .filter(|c| !c.is_empty() && c.len() <= 40);
    let (Some(client_id), Some(mime)) = (client_id, mime(body)) else {
        return failed(command, status::INVALID_CONTENT);
    };
    // With ReplaceMime the phone's message is the whole of it: sent as a
    // new one, nothing of the original added.
    let original = match command {
        Command::SendMail => None,
        _ if body.get(REPLACE_MIME).is_some() => None,
        _ => match source(body) {
            Some(id) => Some(id),
            None => return failed(command, status::ITEM_NOT_FOUND),
        },
    };
    let sending = match (command, original.as_deref()) {
        (Command::SmartReply, Some(id)) => Sending::Reply(id),
        (Command::SmartForward, Some(id)) => Sending::Forward(id),
        _ => Sending::New,
    };
    // The user's signature goes on what the service composes around the
    // phone's text; a ReplaceMime message is sent as the phone made it.
    // A copy goes to Sent only when the phone asks (MS-ASCMD
    // §2.2.3.155): a phone that keeps its own leaves it out.
    let how = Outgoing {
        signed: body.get(REPLACE_MIME).is_none(),
        sent_copy: body.get(SAVE_IN_SENT_ITEMS).is_some(),
    };
    match mail.send(login, sending, mime, &client_id, how).await {
        Ok(()) => None,
        Err(error) => {
            let code = match &error {
                SendError::Invalid(_) => status::INVALID_MIME,
                SendError::NoOriginal(_) => status::ITEM_NOT_FOUND,
                SendError::NotSent(_) => status::MAIL_SUBMISSION_FAILED,
                SendError::InFlight => status::SERVER_ERROR_RETRY_LATER,
                SendError::Unavailable(_) => {
                    tracing::warn!(error = %pushmail_common::report::Report(&error), "send failed");
                    status::SERVER_ERROR_RETRY_LATER
                }
            };
            tracing::info!(reason = %error, code, "message not sent");
            failed(command, code)
        }
    }
}
