//! FolderCreate, FolderUpdate and FolderDelete (MS-ASCMD §2.2.1.2–4):
//! mail folders the phone makes, renames or moves, and deletes, on the
//! mail server through the mailbox service. Each carries the phone's
//! FolderSync key and is answered with the next one, which already counts
//! the phone's own change. Only mail folders: a contacts, calendar or
//! tasks folder (types 13–17) is not the mailbox's to make.

use pushmail_wbxml::{Element, Tag, tag};

use crate::folder_sync::ROOT;
use crate::login::Login;
use crate::mail::{FolderRefusal, Mail, MailError};
use crate::protocol::Command;

const STATUS: Tag = tag("FolderHierarchy", "Status");
const SYNC_KEY: Tag = tag("FolderHierarchy", "SyncKey");
const SERVER_ID: Tag = tag("FolderHierarchy", "ServerId");
const PARENT_ID: Tag = tag("FolderHierarchy", "ParentId");
const DISPLAY_NAME: Tag = tag("FolderHierarchy", "DisplayName");
const TYPE: Tag = tag("FolderHierarchy", "Type");

/// The statuses the three commands share (§2.2.3.177.2, .3 and .5); where
/// they differ, the command's own meaning is noted.
mod status {
    pub(super) const SUCCESS: &str = "1";
    /// A name taken (FolderCreate, FolderUpdate); FolderUpdate also for a
    /// special folder.
    pub(super) const EXISTS: &str = "2";
    /// FolderDelete: a special folder.
    pub(super) const SPECIAL: &str = "3";
    pub(super) const NO_FOLDER: &str = "4";
    pub(super) const NO_PARENT: &str = "5";
    pub(super) const SERVER_ERROR: &str = "6";
    pub(super) const INVALID_KEY: &str = "9";
    pub(super) const MALFORMED: &str = "10";
}

/// Folder types a phone may make here: a user-created folder, generic or
/// mail (§2.2.3.186.3).
const MAIL_TYPES: [&str; 2] = ["1", "12"];

/// What one of the three commands asks.
enum Edit {
    Create {
        parent: String,
        name: String,
    },
    Update {
        folder: String,
        parent: String,
        name: String,
    },
    Delete {
        folder: String,
    },
}

fn text(body: &Element, of: Tag) -> Option<String> {
    body.get(of).map(|e| e.text().trim().to_owned())
}

/// The phone's parent id as the mailbox names it ("" for the top).
fn parent_of(id: String) -> String {
    if id == ROOT { String::new() } else { id }
}

/// The request of `command`; `None` when it is malformed.
fn read(command: Command, body: &Element) -> Option<Edit> {
    let edit = match command {
        Command::FolderCreate => {
            let kind = text(body, TYPE)?;
            if !MAIL_TYPES.contains(&kind.as_str()) {
                tracing::info!(kind, "FolderCreate of a folder type not kept here");
                return None;
            }
            Edit::Create {
                parent: parent_of(text(body, PARENT_ID)?),
                name: text(body, DISPLAY_NAME)?,
            }
        }
        Command::FolderUpdate => Edit::Update {
            folder: text(body, SERVER_ID)?,
            parent: parent_of(text(body, PARENT_ID)?),
            name: text(body, DISPLAY_NAME)?,
        },
        Command::FolderDelete => Edit::Delete {
            folder: text(body, SERVER_ID)?,
        },
        _ => return None,
    };
    Some(edit)
}

fn answer_of(command: Command, code: &str) -> Element {
    let root = match command {
        Command::FolderCreate => tag("FolderHierarchy", "FolderCreate"),
        Command::FolderUpdate => tag("FolderHierarchy", "FolderUpdate"),
        _ => tag("FolderHierarchy", "FolderDelete"),
    };
    Element::of(root).with(Element::text_of(STATUS, code))
}

/// The status that tells the phone why `command` failed.
fn failed(command: Command, error: &MailError) -> &'static str {
    match error {
        MailError::InvalidKey => status::INVALID_KEY,
        MailError::Folder(FolderRefusal::Exists, _) => status::EXISTS,
        MailError::Folder(FolderRefusal::Special, _) if command == Command::FolderDelete => {
            status::SPECIAL
        }
        MailError::Folder(FolderRefusal::Special, _) => status::EXISTS,
        MailError::Folder(FolderRefusal::NoParent, _) => status::NO_PARENT,
        MailError::NotFound(_) => status::NO_FOLDER,
        MailError::Refused(_) => status::MALFORMED,
        MailError::OutOfRange(_) | MailError::Unavailable(_) => status::SERVER_ERROR,
    }
}

/// The answer to `command` (FolderCreate, FolderUpdate or FolderDelete)
/// of `body`.
pub async fn answer(mail: &Mail, login: &Login, command: Command, body: &Element) -> Element {
    let (Some(key), Some(edit)) = (text(body, SYNC_KEY), read(command, body)) else {
        return answer_of(command, status::MALFORMED);
    };
    // A key this server never gave: FolderSync again (as an expired one).
    if !crate::sync_key::is_token(&key) {
        return answer_of(command, status::INVALID_KEY);
    }
    let done = match &edit {
        Edit::Create { parent, name } => mail
            .create_folder(login, &key, parent, name)
            .await
            .map(|(folder, next)| (next, Some(folder.folder_id))),
        Edit::Update {
            folder,
            parent,
            name,
        } => mail
            .rename_folder(login, &key, folder, parent, name)
            .await
            .map(|next| (next, None)),
        Edit::Delete { folder } => mail
            .delete_folder(login, &key, folder)
            .await
            .map(|next| (next, None)),
    };
    match done {
        Ok((next, made)) => {
            let mut answer =
                answer_of(command, status::SUCCESS).with(Element::text_of(SYNC_KEY, next));
            if let Some(id) = made {
                answer = answer.with(Element::text_of(SERVER_ID, id));
            }
            answer
        }
        Err(error) => {
            let code = failed(command, &error);
            if code == status::SERVER_ERROR {
                tracing::warn!(command = command.name(), error = %pushmail_common::report::Report(&error), "folder edit failed");
            } else {
                tracing::info!(command = command.name(), code, reason = %error, "folder edit refused");
            }
            answer_of(command, code)
        }
    }
}
