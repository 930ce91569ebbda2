//! Ping (MS-ASCMD §2.2.1.13): the phone names folders and a heartbeat,
//! and the request is held until mail comes for one of them (status 2,
//! with the folders) or the heartbeat ends (status 1). The hold itself is
//! the session service's (see `push`); this reads the request and writes
//! the answer.
//!
//! A Ping without a body asks to reuse the previous Ping's folders and
//! heartbeat, which this stateless service does not keep: it is answered
//! status 3 and the phone sends them again (the spec's answer for a
//! server that has none cached).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pushmail_wbxml::{Element, Tag, tag};
use tokio_util::sync::CancellationToken;

use crate::login::Login;
use crate::push::{Push, PushError, Woken};

/// Shortest heartbeat held, seconds (MS-ASCMD's lower bound).
pub const MIN_HEARTBEAT: u64 = 60;
/// Longest heartbeat held, seconds (MS-ASCMD's upper bound, under the
/// hour most carrier NATs and ingresses keep an idle connection).
pub const MAX_HEARTBEAT: u64 = 3_540;
/// Most folders one Ping watches; more are refused with status 6.
pub const MAX_FOLDERS: usize = 300;

const PING: Tag = tag("Ping", "Ping");
const STATUS: Tag = tag("Ping", "Status");
const HEARTBEAT: Tag = tag("Ping", "HeartbeatInterval");
const FOLDERS: Tag = tag("Ping", "Folders");
const FOLDER: Tag = tag("Ping", "Folder");
const ID: Tag = tag("Ping", "Id");
const MAX_FOLDERS_TAG: Tag = tag("Ping", "MaxFolders");

/// Ping's statuses (MS-ASCMD §2.2.3.177.10).
mod status {
    pub(super) const EXPIRED: &str = "1";
    pub(super) const CHANGED: &str = "2";
    pub(super) const MISSING: &str = "3";
    pub(super) const MALFORMED: &str = "4";
    pub(super) const HEARTBEAT: &str = "5";
    pub(super) const TOO_MANY: &str = "6";
    pub(super) const HIERARCHY: &str = "7";
}

/// A folder the phone watches: its id as the phone holds it, and the
/// mailbox's raw name it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    /// The phone's id.
    pub id: String,
    /// The raw server name.
    pub mailbox: String,
}

/// What a Ping asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// Hold for `interval`, watching `folders`.
    Hold {
        /// The heartbeat.
        interval: Duration,
        /// The folders.
        folders: Vec<Watched>,
    },
    /// Answered at once.
    Refused(Element),
}

fn status_only(code: &str) -> Element {
    Element::of(PING).with(Element::text_of(STATUS, code))
}

/// A Ping without a body (see the module).
pub fn empty() -> Element {
    status_only(status::MISSING)
}

/// The mailbox a folder id of ours stands for (the mailbox service's ids
/// are the raw name's base64url); `None` for anything else.
pub(crate) fn mailbox(id: &str) -> Option<String> {
    let name = String::from_utf8(URL_SAFE_NO_PAD.decode(id).ok()?).ok()?;
    (!name.is_empty() && !name.chars().any(char::is_control)).then_some(name)
}

/// Reads a Ping `body`.
pub fn read(body: &Element) -> Asked {
    if body.tag() != PING {
        return Asked::Refused(status_only(status::MALFORMED));
    }
    let (Some(heartbeat), Some(folders)) = (body.get(HEARTBEAT), body.get(FOLDERS)) else {
        return Asked::Refused(status_only(status::MISSING));
    };
    let Ok(seconds) = heartbeat.text().trim().parse::<u64>() else {
        return Asked::Refused(status_only(status::MALFORMED));
    };
    // MS-ASCMD §2.2.3.84.2: out of bounds, the phone is told the bound
    // it passed and pings again within it.
    if !(MIN_HEARTBEAT..=MAX_HEARTBEAT).contains(&seconds) {
        let bound = seconds.clamp(MIN_HEARTBEAT, MAX_HEARTBEAT);
        return Asked::Refused(
            status_only(status::HEARTBEAT).with(Element::text_of(HEARTBEAT, bound.to_string())),
        );
    }
    let asked: Vec<&Element> = folders.all(FOLDER).collect();
    if asked.len() > MAX_FOLDERS {
        return Asked::Refused(
            status_only(status::TOO_MANY)
                .with(Element::text_of(MAX_FOLDERS_TAG, MAX_FOLDERS.to_string())),
        );
    }
    if asked.is_empty() {
        return Asked::Refused(status_only(status::MISSING));
    }
    let mut watched: Vec<Watched> = Vec::with_capacity(asked.len());
    for folder in asked {
        let id = folder
            .get(ID)
            .map(|i| i.text().trim().to_owned())
            .unwrap_or_default();
        // An id this server never gave (or one of a class not served):
        // the phone's folder list is stale.
        let Some(mailbox) = mailbox(&id) else {
            return Asked::Refused(status_only(status::HIERARCHY));
        };
        if !watched.iter().any(|w| w.id == id) {
            watched.push(Watched { id, mailbox });
        }
    }
    Asked::Hold {
        interval: Duration::from_secs(seconds),
        folders: watched,
    }
}

/// Status 1: nothing came (or the phone is to ping again).
pub fn expired() -> Element {
    status_only(status::EXPIRED)
}

/// Status 2 with the watched folders among `mailboxes` (every one when
/// `all`).
pub fn changed(folders: &[Watched], mailboxes: &[String], all: bool) -> Element {
    // A change naming no mailbox (or none the phone watches, which the
    // session never sends) could be in any.
    let all = all
        || mailboxes.iter().any(String::is_empty)
        || !folders.iter().any(|f| mailboxes.contains(&f.mailbox));
    let mut listed = Element::of(FOLDERS);
    for folder in folders {
        if all || mailboxes.contains(&folder.mailbox) {
            listed = listed.with(Element::text_of(FOLDER, folder.id.clone()));
        }
    }
    status_only(status::CHANGED).with(listed)
}

/// The answer to a Ping `body` from the phone of `login`: held until
/// something comes, the heartbeat ends, or this replica stops (`stop`:
/// the phone is told to ping again, and does, at another replica).
pub async fn answer(
    push: &Push,
    login: &Login,
    body: &Element,
    stop: &CancellationToken,
) -> Result<Element, PushError> {
    let (interval, folders) = match read(body) {
        Asked::Hold { interval, folders } => (interval, folders),
        Asked::Refused(answer) => return Ok(answer),
    };
    let mailboxes = folders.iter().map(|f| f.mailbox.clone()).collect();
    let woken = tokio::select! {
        woken = push.hold(login, interval, mailboxes) => woken?,
        () = stop.cancelled() => Woken::Expired,
    };
    Ok(match woken {
        Woken::Changed { mailboxes, resync } => changed(&folders, &mailboxes, resync),
        Woken::Expired => expired(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping(heartbeat: Option<&str>, ids: &[&str]) -> Element {
        let mut root = Element::of(PING);
        if let Some(heartbeat) = heartbeat {
            root = root.with(Element::text_of(HEARTBEAT, heartbeat));
        }
        let mut folders = Element::of(FOLDERS);
        for id in ids {
            folders = folders.with(
                Element::of(FOLDER)
                    .with(Element::text_of(ID, *id))
                    .with(Element::text_of(tag("Ping", "Class"), "Email")),
            );
        }
        root.with(folders)
    }

    fn refused(asked: Asked) -> (String, Option<String>) {
        let Asked::Refused(answer) = asked else {
            panic!("held: {asked:?}");
        };
        let value = answer
            .get(HEARTBEAT)
            .or_else(|| answer.get(MAX_FOLDERS_TAG))
            .map(Element::text);
        (answer.get(STATUS).unwrap().text(), value)
    }

    #[test]
    fn a_ping_names_its_folders_once_and_bounds_are_told_back() {
        let inbox = URL_SAFE_NO_PAD.encode("INBOX");
        let work = URL_SAFE_NO_PAD.encode("Work/2026");
        assert_eq!(
            read(&ping(Some("480"), &[&inbox, &work, &inbox])),
            Asked::Hold {
                interval: Duration::from_secs(480),
                folders: vec![
                    Watched {
                        id: inbox.clone(),
                        mailbox: "INBOX".to_owned()
                    },
                    Watched {
                        id: work.clone(),
                        mailbox: "Work/2026".to_owned()
                    },
                ],
            }
        );
        let bounds = [
            ("59", Some("60")),
            ("0", Some("60")),
            ("3541", Some("3540")),
            ("99999999999", Some("3540")),
        ];
        for (heartbeat, told) in bounds {
            let (status, value) = refused(read(&ping(Some(heartbeat), &[&inbox])));
            assert_eq!((status.as_str(), value.as_deref()), ("5", told));
        }
        for edge in ["60", "3540"] {
            assert!(matches!(
                read(&ping(Some(edge), &[&inbox])),
                Asked::Hold { .. }
            ));
        }
        let many: Vec<&str> = std::iter::repeat_n(inbox.as_str(), MAX_FOLDERS + 1).collect();
        assert_eq!(
            refused(read(&ping(Some("480"), &many))),
            ("6".to_owned(), Some("300".to_owned()))
        );
        let cases = [
            (ping(None, &[&inbox]), "3"),
            (ping(Some("480"), &[]), "3"),
            (ping(Some("-1"), &[&inbox]), "4"),
            (Element::of(tag("AirSync", "Sync")), "4"),
            // Not base64url; a control character; an empty name.
            (ping(Some("480"), &["%%%"]), "7"),
            (ping(Some("480"), &[&URL_SAFE_NO_PAD.encode("a\r\nb")]), "7"),
            (ping(Some("480"), &[""]), "7"),
        ];
        for (body, status) in cases {
            assert_eq!(refused(read(&body)).0, status);
        }
        assert_eq!(empty().get(STATUS).unwrap().text(), "3");
    }

    #[test]
    fn a_change_lists_the_watched_folders_it_concerns_or_all_when_unsure() {
        let folders = [
            Watched {
                id: "i".to_owned(),
                mailbox: "INBOX".to_owned(),
            },
            Watched {
                id: "w".to_owned(),
                mailbox: "Work".to_owned(),
            },
        ];
        let listed = |answer: Element| -> Vec<String> {
            assert_eq!(answer.get(STATUS).unwrap().text(), "2");
            answer
                .get(FOLDERS)
                .unwrap()
                .all(FOLDER)
                .map(Element::text)
                .collect()
        };
        assert_eq!(
            listed(changed(&folders, &["Work".to_owned()], false)),
            ["w"]
        );
        assert_eq!(listed(changed(&folders, &[], true)), ["i", "w"]);
        assert_eq!(
            listed(changed(&folders, &[String::new()], false)),
            ["i", "w"]
        );
        assert_eq!(
            listed(changed(&folders, &["Other".to_owned()], false)),
            ["i", "w"]
        );
        assert_eq!(expired().get(STATUS).unwrap().text(), "1");
    }
}
