//! A Sync that asks to wait (MS-ASCMD's `Wait`, in minutes, or
//! `HeartbeatInterval`, in seconds): answered at once when there is
//! anything to tell, else held as a Ping is (see `push`) until mail comes
//! for one of its collections, then answered with it; when the interval
//! ends, answered with the quiet answer it had. A Sync that carries the
//! phone's own changes, or starts a collection (key `0`), is answered at
//! once: it is not repeated to see what changed since.

use std::time::Duration;

use pushmail_wbxml::{Element, Tag, tag};
use tokio_util::sync::CancellationToken;

use crate::login::Login;
use crate::mail::Mail;
use crate::ping::{MAX_HEARTBEAT, MIN_HEARTBEAT};
use crate::push::{Push, PushError, Woken};

const SYNC: Tag = tag("AirSync", "Sync");
const STATUS: Tag = tag("AirSync", "Status");
const COLLECTIONS: Tag = tag("AirSync", "Collections");
const COLLECTION: Tag = tag("AirSync", "Collection");
const COLLECTION_ID: Tag = tag("AirSync", "CollectionId");
const SYNC_KEY: Tag = tag("AirSync", "SyncKey");
const COMMANDS: Tag = tag("AirSync", "Commands");
const RESPONSES: Tag = tag("AirSync", "Responses");
const MORE_AVAILABLE: Tag = tag("AirSync", "MoreAvailable");
const WAIT: Tag = tag("AirSync", "Wait");
const HEARTBEAT: Tag = tag("AirSync", "HeartbeatInterval");
const LIMIT: Tag = tag("AirSync", "Limit");

/// Sync's status for a wait out of bounds (MS-ASCMD §2.2.3.177.17).
const INVALID_WAIT: &str = "14";
/// `Wait` bounds, minutes.
const MIN_WAIT: u64 = 1;
const MAX_WAIT: u64 = 59;

/// How long a Sync asks to be held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waiting {
    /// Not at all.
    No,
    /// This long at most.
    For(Duration),
    /// Out of bounds: answered status 14 with the bound passed.
    Refused(Element),
}

fn refused(limit: u64) -> Waiting {
    Waiting::Refused(
        Element::of(SYNC)
            .with(Element::text_of(STATUS, INVALID_WAIT))
            .with(Element::text_of(LIMIT, limit.to_string())),
    )
}

/// What `body` asks (`Wait` wins when both are named, as it came first).
pub fn waiting(body: &Element) -> Waiting {
    let number = |t: Tag| body.get(t).map(|e| e.text().trim().parse::<u64>().ok());
    match (number(WAIT), number(HEARTBEAT)) {
        (Some(Some(minutes)), _) if (MIN_WAIT..=MAX_WAIT).contains(&minutes) => {
            Waiting::For(Duration::from_secs(minutes * 60))
        }
        (Some(Some(minutes)), _) => refused(minutes.clamp(MIN_WAIT, MAX_WAIT)),
        (_, Some(Some(seconds))) if (MIN_HEARTBEAT..=MAX_HEARTBEAT).contains(&seconds) => {
            Waiting::For(Duration::from_secs(seconds))
        }
        (_, Some(Some(seconds))) => refused(seconds.clamp(MIN_HEARTBEAT, MAX_HEARTBEAT)),
        (Some(None), _) | (_, Some(None)) => refused(MIN_WAIT),
        (None, None) => Waiting::No,
    }
}

/// The mailboxes of a Sync worth holding: none carries the phone's
/// changes or starts anew, and every one is a folder of ours.
fn holdable(body: &Element) -> Option<Vec<String>> {
    let collections: Vec<&Element> = body.get(COLLECTIONS)?.all(COLLECTION).collect();
    let mut mailboxes = Vec::with_capacity(collections.len());
    for collection in collections {
        let key = collection.get(SYNC_KEY).map(Element::text);
        if collection.get(COMMANDS).is_some() || key.as_deref().is_none_or(|k| k.trim() == "0") {
            return None;
        }
        let id = collection.get(COLLECTION_ID).map(Element::text)?;
        mailboxes.push(crate::ping::mailbox(id.trim())?);
    }
    (!mailboxes.is_empty()).then_some(mailboxes)
}

/// Whether an answer tells the phone nothing but new keys.
pub fn quiet(answer: &Element) -> bool {
    if answer.get(STATUS).is_some() {
        return false;
    }
    answer.get(COLLECTIONS).is_some_and(|collections| {
        collections.all(COLLECTION).all(|c| {
            c.get(STATUS).is_some_and(|s| s.text().trim() == "1")
                && c.get(COMMANDS).is_none()
                && c.get(RESPONSES).is_none()
                && c.get(MORE_AVAILABLE).is_none()
        })
    })
}

/// The answer to a Sync `body`, held as it asks (see the module).
pub async fn answer(
    mail: &Mail,
    push: &Push,
    login: &Login,
    body: &Element,
    stop: &CancellationToken,
) -> Result<Element, PushError> {
    let interval = match waiting(body) {
        Waiting::No => return Ok(crate::sync::answer(mail, login, body).await),
        Waiting::Refused(answer) => return Ok(answer),
        Waiting::For(interval) => interval,
    };
    let first = crate::sync::answer(mail, login, body).await;
    let Some(mailboxes) = holdable(body).filter(|_| quiet(&first)) else {
        return Ok(first);
    };
    let woken = tokio::select! {
        woken = push.hold(login, interval, mailboxes) => woken?,
        () = stop.cancelled() => Woken::Expired,
    };
    Ok(match woken {
        // The keys the phone sent still stand (a key stays valid after
        // its successor is issued): the same Sync again tells what came.
        Woken::Changed { .. } => crate::sync::answer(mail, login, body).await,
        Woken::Expired => first,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sync(extra: &[Element], collections: &[(&str, &str, bool)]) -> Element {
        let mut listed = Element::of(COLLECTIONS);
        for (key, id, commands) in collections {
            let mut collection = Element::of(COLLECTION)
                .with(Element::text_of(SYNC_KEY, *key))
                .with(Element::text_of(COLLECTION_ID, *id));
            if *commands {
                collection = collection.with(Element::of(COMMANDS));
            }
            listed = listed.with(collection);
        }
        let mut root = Element::of(SYNC).with(listed);
        for element in extra {
            root = root.with(element.clone());
        }
        root
    }

    fn limit(waiting: Waiting) -> (String, String) {
        let Waiting::Refused(answer) = waiting else {
            panic!("not refused: {waiting:?}");
        };
        (
            answer.get(STATUS).unwrap().text(),
            answer.get(LIMIT).unwrap().text(),
        )
    }

    #[test]
    fn waits_are_bounded_and_the_bound_is_told() {
        let wait = |t: Tag, v: &str| waiting(&sync(&[Element::text_of(t, v)], &[]));
        assert_eq!(wait(WAIT, "10"), Waiting::For(Duration::from_secs(600)));
        assert_eq!(
            wait(HEARTBEAT, "300"),
            Waiting::For(Duration::from_secs(300))
        );
        assert_eq!(limit(wait(WAIT, "0")), ("14".to_owned(), "1".to_owned()));
        assert_eq!(limit(wait(WAIT, "60")), ("14".to_owned(), "59".to_owned()));
        assert_eq!(
            limit(wait(HEARTBEAT, "59")),
            ("14".to_owned(), "60".to_owned())
        );
        assert_eq!(
            limit(wait(HEARTBEAT, "3541")),
            ("14".to_owned(), "3540".to_owned())
        );
        assert_eq!(limit(wait(WAIT, "soon")).0, "14");
        assert_eq!(waiting(&sync(&[], &[])), Waiting::No);
    }

    #[test]
    fn only_a_plain_sync_of_our_folders_is_held() {
        let inbox = "SU5CT1g";
        assert_eq!(
            holdable(&sync(&[], &[("F", inbox, false)])),
            Some(vec!["INBOX".to_owned()])
        );
        assert_eq!(holdable(&sync(&[], &[("F", inbox, true)])), None);
        assert_eq!(holdable(&sync(&[], &[("0", inbox, false)])), None);
        assert_eq!(holdable(&sync(&[], &[("F", "%%", false)])), None);
        assert_eq!(holdable(&sync(&[], &[])), None);
    }

    #[test]
    fn an_answer_with_anything_in_it_is_not_quiet() {
        let collection = |extra: Option<Element>, status: &str| {
            let mut c = Element::of(COLLECTION)
                .with(Element::text_of(SYNC_KEY, "k"))
                .with(Element::text_of(STATUS, status));
            if let Some(extra) = extra {
                c = c.with(extra);
            }
            Element::of(SYNC).with(Element::of(COLLECTIONS).with(c))
        };
        assert!(quiet(&collection(None, "1")));
        assert!(!quiet(&collection(None, "3")));
        assert!(!quiet(&collection(Some(Element::of(COMMANDS)), "1")));
        assert!(!quiet(&collection(Some(Element::of(MORE_AVAILABLE)), "1")));
        assert!(!quiet(
            &Element::of(SYNC).with(Element::text_of(STATUS, "4"))
        ));
    }
}
