//! The folder list: `LIST` (with `RETURN (SPECIAL-USE STATUS …)` where the
//! server has LIST-STATUS, else a `STATUS` per folder), roles from the
//! special-use attributes (RFC 6154) and, on servers without them, from
//! the names clients and providers really use (English, Chinese, German,
//! French and Spanish).

use std::collections::HashMap;

use async_imap::imap_proto::{MailboxDatum, NameAttribute, Response, StatusAttribute};

use crate::backend::BackendError;
use crate::domain::{Folder, FolderId, FolderRole};

use super::conn::{Conn, quoted};
use super::utf7;

const STATUS_ITEMS: &str = "MESSAGES UNSEEN UIDNEXT UIDVALIDITY";

/// A listed folder before its counts.
struct Named {
    raw: String,
    delimiter: Option<String>,
    role: Option<FolderRole>,
    selectable: bool,
}

#[derive(Default)]
struct Counts {
    messages: u32,
    unseen: u32,
    uid_next: u32,
    uid_validity: u32,
    modseq: Option<u64>,
}

/// The folder with `role`: one `LIST` without counts (a delete or a
/// send needs the trash or Sent folder, not every folder's STATUS).
pub(crate) async fn with_role(
    conn: &mut Conn,
    role: FolderRole,
) -> Result<Option<FolderId>, BackendError> {
    let command = if conn.caps.special_use {
        r#"LIST "" "*" RETURN (SPECIAL-USE)"#
    } else {
        r#"LIST "" "*""#
    };
    let named = listed(conn, command, &mut HashMap::new()).await?;
    Ok(assemble(named, &mut HashMap::new())
        .into_iter()
        .find(|f| f.role == role)
        .map(|f| f.id))
}

/// The listed folders of `command`'s answer, and any STATUS it carried.
async fn listed(
    conn: &mut Conn,
    command: &str,
    counts: &mut HashMap<String, Counts>,
) -> Result<Vec<Named>, BackendError> {
    let mut named = Vec::new();
    conn.exchange("LIST", command, |response| match response {
        Response::MailboxData(MailboxDatum::List(list)) => named.push(Named {
            raw: list.name.to_string(),
            delimiter: list.delimiter.as_deref().map(str::to_owned),
            role: special_use(&list.name_attributes),
            selectable: !list.name_attributes.iter().any(|a| {
                matches!(a, NameAttribute::NoSelect)
                    || matches!(a, NameAttribute::Extension(e) if e.eq_ignore_ascii_case("\\NonExistent"))
            }),
        }),
        Response::MailboxData(MailboxDatum::Status { mailbox, status }) => {
            counts.insert(mailbox.to_string(), read_status(status));
        }
        _ => {}
    })
    .await?;
    Ok(named)
}

/// Every selectable folder with its role, counts and version.
pub(crate) async fn list(conn: &mut Conn) -> Result<Vec<Folder>, BackendError> {
    let items = if conn.caps.condstore {
        format!("{STATUS_ITEMS} HIGHESTMODSEQ")
    } else {
        STATUS_ITEMS.to_owned()
    };
    let command = match (conn.caps.list_status, conn.caps.special_use) {
        (true, true) => format!(r#"LIST "" "*" RETURN (SPECIAL-USE STATUS ({items}))"#),
        (true, false) => format!(r#"LIST "" "*" RETURN (STATUS ({items}))"#),
        (false, _) => r#"LIST "" "*""#.to_owned(),
    };
    let mut counts: HashMap<String, Counts> = HashMap::new();
    let named = listed(conn, &command, &mut counts).await?;
    if !conn.caps.list_status {
        for folder in named.iter().filter(|f| f.selectable) {
            let command = format!("STATUS {} ({items})", quoted(&folder.raw));
            let mut found = None;
            let asked = conn
                .exchange("STATUS", &command, |response| {
                    if let Response::MailboxData(MailboxDatum::Status { status, .. }) = response {
                        found = Some(read_status(status));
                    }
                })
                .await;
            match asked {
                Ok(()) => {
                    if let Some(found) = found {
                        counts.insert(folder.raw.clone(), found);
                    }
                }
                // A folder that vanished between LIST and STATUS is left
                // with no counts; a lost connection is not.
                Err(BackendError::Refused { .. }) => {}
                Err(other) => return Err(other),
            }
        }
    }
    Ok(assemble(named, &mut counts))
}

fn read_status(status: &[StatusAttribute]) -> Counts {
    let mut counts = Counts::default();
    for item in status {
        match item {
            StatusAttribute::Messages(n) => counts.messages = *n,
            StatusAttribute::Unseen(n) => counts.unseen = *n,
            StatusAttribute::UidNext(n) => counts.uid_next = *n,
            StatusAttribute::UidValidity(n) => counts.uid_validity = *n,
            StatusAttribute::HighestModSeq(n) => counts.modseq = Some(*n),
            _ => {}
        }
    }
    counts
}

/// Folders with parents, roles (one folder per role: the special-use one
/// first, else the first by name) and versions.
fn assemble(named: Vec<Named>, counts: &mut HashMap<String, Counts>) -> Vec<Folder> {
    let mut taken: Vec<FolderRole> = named.iter().filter_map(|f| f.role).collect();
    let mut out = Vec::new();
    for folder in &named {
        if !folder.selectable {
            continue;
        }
        let (parent, leaf) = match folder.delimiter.as_deref().filter(|d| !d.is_empty()) {
            Some(delimiter) => match folder.raw.rsplit_once(delimiter) {
                Some((parent, leaf)) => (Some(FolderId::new(parent)), leaf),
                None => (None, folder.raw.as_str()),
            },
            None => (None, folder.raw.as_str()),
        };
        let name = utf7::decode(leaf);
        let role = folder.role.unwrap_or_else(|| {
            match role_by_name(&folder.raw, &name).filter(|role| !taken.contains(role)) {
                Some(role) if parent.is_none() => {
                    taken.push(role);
                    role
                }
                _ => FolderRole::User,
            }
        });
        let c = counts.remove(&folder.raw).unwrap_or_default();
        let version = match c.modseq {
            Some(modseq) => format!("{}.{modseq}", c.uid_validity),
            None => format!(
                "{}.{}.{}.{}",
                c.uid_validity, c.uid_next, c.messages, c.unseen
            ),
        };
        out.push(Folder {
            id: FolderId::new(folder.raw.clone()),
            name,
            parent,
            role,
            total: c.messages,
            unread: c.unseen,
            version,
        });
    }
    out
}

fn special_use(attributes: &[NameAttribute<'_>]) -> Option<FolderRole> {
    attributes.iter().find_map(|a| match a {
        NameAttribute::Sent => Some(FolderRole::Sent),
        NameAttribute::Drafts => Some(FolderRole::Drafts),
        NameAttribute::Trash => Some(FolderRole::Trash),
        NameAttribute::Junk => Some(FolderRole::Junk),
        NameAttribute::Archive => Some(FolderRole::Archive),
        _ => None,
    })
}

/// The role a top-level folder's name suggests on a server that does not
/// say (names seen at 163/126/QQ/139/Sina, Outlook, Gmail and Thunderbird).
fn role_by_name(raw: &str, name: &str) -> Option<FolderRole> {
    if raw.eq_ignore_ascii_case("INBOX") {
        return Some(FolderRole::Inbox);
    }
    let lower = name.to_lowercase();
    let table: &[(FolderRole, &[&str])] = &[
        (
            FolderRole::Sent,
            &[
                "sent",
                "sent items",
                "sent messages",
                "sent mail",
                "已发送",
                "已发送邮件",
                "已傳送",
                "寄件備份",
                "gesendet",
                "gesendete elemente",
                "envoyés",
                "éléments envoyés",
                "enviados",
            ],
        ),
        (
            FolderRole::Drafts,
            &[
                "drafts",
                "draft",
                "草稿箱",
                "草稿",
                "entwürfe",
                "brouillons",
                "borradores",
            ],
        ),
        (
            FolderRole::Trash,
            &[
                "trash",
                "deleted items",
                "deleted messages",
                "deleted",
                "bin",
                "已删除",
                "已删除邮件",
                "垃圾桶",
                "papierkorb",
                "gelöschte elemente",
                "corbeille",
                "papelera",
            ],
        ),
        (
            FolderRole::Junk,
            &[
                "junk",
                "spam",
                "junk e-mail",
                "junk email",
                "垃圾邮件",
                "垃圾郵件",
                "广告邮件",
                "indésirables",
            ],
        ),
        (
            FolderRole::Archive,
            &["archive", "archives", "归档", "存档", "archiv"],
        ),
    ];
    table
        .iter()
        .find(|(_, names)| names.contains(&lower.as_str()))
        .map(|(role, _)| *role)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(raw: &str, role: Option<FolderRole>) -> Named {
        Named {
            raw: raw.to_owned(),
            delimiter: Some("/".to_owned()),
            role,
            selectable: true,
        }
    }

    #[test]
    fn names_give_roles_where_the_server_does_not() {
        assert_eq!(role_by_name("INBOX", "INBOX"), Some(FolderRole::Inbox));
        assert_eq!(role_by_name("&XfJT0ZAB-", "已发送"), Some(FolderRole::Sent));
        assert_eq!(
            role_by_name("Deleted Items", "Deleted Items"),
            Some(FolderRole::Trash)
        );
        assert_eq!(role_by_name("Projects", "Projects"), None);
    }

    #[test]
    fn special_use_wins_and_each_role_is_given_once() {
        let folders = assemble(
            vec![
                named("INBOX", None),
                named("Sent", None),
                named("Sent Messages", Some(FolderRole::Sent)),
                named("Trash", None),
                named("Deleted Items", None),
                named("Work/Sent", None),
                named("&g0l6P3ux-", None),
            ],
            &mut HashMap::new(),
        );
        let roles: Vec<(String, FolderRole)> =
            folders.iter().map(|f| (f.name.clone(), f.role)).collect();
        assert_eq!(
            roles,
            [
                ("INBOX".to_owned(), FolderRole::Inbox),
                ("Sent".to_owned(), FolderRole::User),
                ("Sent Messages".to_owned(), FolderRole::Sent),
                ("Trash".to_owned(), FolderRole::Trash),
                ("Deleted Items".to_owned(), FolderRole::User),
                ("Sent".to_owned(), FolderRole::User),
                ("草稿箱".to_owned(), FolderRole::Drafts),
            ]
        );
        assert_eq!(folders[5].parent, Some(FolderId::new("Work")));
    }
}
