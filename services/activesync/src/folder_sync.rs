//! FolderSync (MS-ASCMD §2.2.1.5): the account's folder tree, then what
//! changed in it since the phone's key. The key is the mailbox service's
//! tree token (`0`: the whole tree), so any replica answers and a repeated
//! request is answered again.

use pushmail_wbxml::{Element, Tag, tag};

use crate::login::Login;
use crate::mail::{Folder, FolderRole, Mail, MailError};

const FOLDER_SYNC: Tag = tag("FolderHierarchy", "FolderSync");
const STATUS: Tag = tag("FolderHierarchy", "Status");
const SYNC_KEY: Tag = tag("FolderHierarchy", "SyncKey");
const CHANGES: Tag = tag("FolderHierarchy", "Changes");
const COUNT: Tag = tag("FolderHierarchy", "Count");
const ADD: Tag = tag("FolderHierarchy", "Add");
const UPDATE: Tag = tag("FolderHierarchy", "Update");
const DELETE: Tag = tag("FolderHierarchy", "Delete");
const SERVER_ID: Tag = tag("FolderHierarchy", "ServerId");
const PARENT_ID: Tag = tag("FolderHierarchy", "ParentId");
const DISPLAY_NAME: Tag = tag("FolderHierarchy", "DisplayName");
const TYPE: Tag = tag("FolderHierarchy", "Type");

/// FolderSync's statuses (MS-ASCMD §2.2.3.177.4).
mod status {
    pub(super) const SUCCESS: &str = "1";
    pub(super) const SERVER_ERROR: &str = "6";
    pub(super) const INVALID_KEY: &str = "9";
    pub(super) const MALFORMED: &str = "10";
}

/// The top of the tree, as a parent.
pub const ROOT: &str = "0";

/// MS-ASCMD §2.2.3.186.3's folder types: the roles phones show apart, and
/// a user mail folder for the rest (Junk and Archive have no type).
pub fn folder_type(role: FolderRole) -> &'static str {
    match role {
        FolderRole::Inbox => "2",
        FolderRole::Drafts => "3",
        FolderRole::Trash => "4",
        FolderRole::Sent => "5",
        FolderRole::Junk | FolderRole::Archive | FolderRole::User | FolderRole::Unspecified => "12",
    }
}

fn folder(of: Tag, folder: &Folder) -> Element {
    let parent = if folder.parent_id.is_empty() {
        ROOT
    } else {
        &folder.parent_id
    };
    Element::of(of)
        .with(Element::text_of(SERVER_ID, folder.folder_id.clone()))
        .with(Element::text_of(PARENT_ID, parent))
        .with(Element::text_of(
            DISPLAY_NAME,
            folder.name.replace('\0', ""),
        ))
        .with(Element::text_of(TYPE, folder_type(folder.role())))
}

fn with_status(code: &str) -> Element {
    Element::of(FOLDER_SYNC).with(Element::text_of(STATUS, code))
}

/// The answer to a FolderSync `body`.
pub async fn answer(mail: &Mail, login: &Login, body: &Element) -> Element {
    let Some(key) = body
        .get(SYNC_KEY)
        .filter(|_| body.tag() == FOLDER_SYNC)
        .map(|k| k.text().trim().to_owned())
    else {
        return with_status(status::MALFORMED);
    };
    let since = match key.as_str() {
        "0" => String::new(),
        token if crate::sync_key::is_token(token) => key,
        _ => return with_status(status::INVALID_KEY),
    };
    let changes = match mail.folder_changes(login, &since).await {
        Ok(changes) => changes,
        Err(MailError::InvalidKey) => return with_status(status::INVALID_KEY),
        Err(error) => {
            tracing::warn!(error = %pushmail_common::report::Report(&error), "folder sync failed");
            return with_status(status::SERVER_ERROR);
        }
    };
    let count = changes.added.len() + changes.changed.len() + changes.removed.len();
    // Deletions first (a name freed can be taken), then new folders
    // parents first, then moves that may name a new parent.
    let mut listed = Element::of(CHANGES).with(Element::text_of(COUNT, count.to_string()));
    for id in &changes.removed {
        listed = listed.with(Element::of(DELETE).with(Element::text_of(SERVER_ID, id.clone())));
    }
    for added in &changes.added {
        listed = listed.with(folder(ADD, added));
    }
    for changed in &changes.changed {
        listed = listed.with(folder(UPDATE, changed));
    }
    with_status(status::SUCCESS)
        .with(Element::text_of(SYNC_KEY, changes.token))
        .with(listed)
}
