//! Changes written back to the server: flags (`UID STORE … .SILENT`),
//! moves (`UID MOVE`, else `UID COPY` then expunging the originals by UID),
//! permanent deletes (`\Deleted` then `UID EXPUNGE`, so another client's
//! deleted-but-kept messages are left alone) and appends (`APPENDUID` read
//! back where the server has UIDPLUS).

use async_imap::imap_proto::rfc4315::UidSetMember;
use async_imap::imap_proto::{AttributeValue, Response, ResponseCode};

use crate::backend::BackendError;
use crate::domain::{FlagUpdate, Flags, FolderId, MessageKey, Uid};

use super::conn::{Conn, quoted, uid_set};

/// `+FLAGS` and `-FLAGS` lists for `update`.
fn flag_lists(update: FlagUpdate) -> (Vec<&'static str>, Vec<&'static str>) {
    let mut add = Vec::new();
    let mut remove = Vec::new();
    for (wanted, flag) in [
        (update.seen, "\\Seen"),
        (update.flagged, "\\Flagged"),
        (update.answered, "\\Answered"),
        (update.forwarded, "$Forwarded"),
    ] {
        match wanted {
            Some(true) => add.push(flag),
            Some(false) => remove.push(flag),
            None => {}
        }
    }
    (add, remove)
}

/// IMAP flags for a stored message.
pub(crate) fn flag_text(flags: Flags) -> String {
    let mut out = Vec::new();
    for (on, flag) in [
        (flags.seen, "\\Seen"),
        (flags.flagged, "\\Flagged"),
        (flags.answered, "\\Answered"),
        (flags.forwarded, "$Forwarded"),
        (flags.draft, "\\Draft"),
    ] {
        if on {
            out.push(flag);
        }
    }
    out.join(" ")
}

/// Applies `update` to `uids` of the selected folder.
pub(crate) async fn set_flags(
    conn: &mut Conn,
    uids: &[Uid],
    update: FlagUpdate,
) -> Result<(), BackendError> {
    let set = uid_set(&uids.iter().map(|u| u.0).collect::<Vec<_>>());
    let (add, remove) = flag_lists(update);
    if !add.is_empty() {
        let command = format!("UID STORE {set} +FLAGS.SILENT ({})", add.join(" "));
        conn.run("STORE", &command).await?;
    }
    if !remove.is_empty() {
        let command = format!("UID STORE {set} -FLAGS.SILENT ({})", remove.join(" "));
        conn.run("STORE", &command).await?;
    }
    Ok(())
}

/// Moves `uids` of the selected folder to `to`.
pub(crate) async fn move_to(
    conn: &mut Conn,
    uids: &[Uid],
    to: &FolderId,
) -> Result<Vec<(Uid, Option<MessageKey>)>, BackendError> {
    let set = uid_set(&uids.iter().map(|u| u.0).collect::<Vec<_>>());
    let target = quoted(to.raw());
    let mut mapping = None;
    let mut note = |response: &Response<'_>| {
        if mapping.is_none() {
            mapping = copy_uids(response);
        }
    };
    if conn.caps.moves {
        conn.exchange("MOVE", &format!("UID MOVE {set} {target}"), &mut note)
            .await
            .map_err(|e| super::select::missing_folder(e, to))?;
    } else {
        conn.exchange("COPY", &format!("UID COPY {set} {target}"), &mut note)
            .await
            .map_err(|e| super::select::missing_folder(e, to))?;
        expunge(conn, uids).await?;
    }
    Ok(uids
        .iter()
        .map(|uid| {
            let moved = mapping.as_ref().and_then(|(uid_validity, pairs)| {
                pairs
                    .iter()
                    .find(|(from, _)| from == uid)
                    .map(|(_, new)| MessageKey {
                        folder: to.clone(),
                        uid_validity: *uid_validity,
                        uid: *new,
                    })
            });
            (*uid, moved)
        })
        .collect())
}

/// Removes `uids` of the selected folder for good.
pub(crate) async fn expunge(conn: &mut Conn, uids: &[Uid]) -> Result<(), BackendError> {
    let set = uid_set(&uids.iter().map(|u| u.0).collect::<Vec<_>>());
    conn.run(
        "STORE",
        &format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)"),
    )
    .await?;
    let command = if conn.caps.uidplus {
        format!("UID EXPUNGE {set}")
    } else {
        // Without UIDPLUS only a plain EXPUNGE exists; it also removes
        // what another client marked deleted, as that client asked.
        "EXPUNGE".to_owned()
    };
    conn.run("EXPUNGE", &command).await?;
    Ok(())
}

/// Stores `raw` in `folder` with `flags`; its key where the server says.
pub(crate) async fn append(
    conn: &mut Conn,
    folder: &FolderId,
    raw: &[u8],
    flags: Flags,
) -> Result<Option<MessageKey>, BackendError> {
    let mut key = None;
    conn.append(folder.raw(), &flag_text(flags), raw, |response| {
        if let Response::Done { outcome, .. } = response
            && let Some(ResponseCode::AppendUid(uid_validity, uids)) = &outcome.code
        {
            key = single(uids).map(|uid| MessageKey {
                folder: folder.clone(),
                uid_validity: *uid_validity,
                uid: Uid(uid),
            });
        }
    })
    .await
    .map_err(|e| super::select::missing_folder(e, folder))?;
    Ok(key)
}

/// The whole message `uid` of the selected folder, if it is at most
/// `max` bytes: its size is asked first, so a huge message is refused
/// before any of it is held in memory.
pub(crate) async fn raw(
    conn: &mut Conn,
    key: &MessageKey,
    max: u64,
) -> Result<Vec<u8>, BackendError> {
    let mut size = None;
    conn.exchange(
        "FETCH",
        &format!("UID FETCH {} (UID RFC822.SIZE)", key.uid.0),
        |response| {
            if let Response::Fetch(_, attributes) = response
                && attributes
                    .iter()
                    .any(|a| matches!(a, AttributeValue::Uid(n) if *n == key.uid.0))
            {
                size = attributes.iter().find_map(|a| match a {
                    AttributeValue::Rfc822Size(n) => Some(u64::from(*n)),
                    _ => None,
                });
            }
        },
    )
    .await?;
    let size = size.ok_or_else(|| BackendError::NoMessage(key.encode()))?;
    if size > max {
        return Err(BackendError::TooLarge { size, max });
    }
    let command = format!("UID FETCH {} (UID BODY.PEEK[])", key.uid.0);
    let mut found = None;
    conn.exchange("FETCH", &command, |response| {
        if let Response::Fetch(_, attributes) = response
            && attributes
                .iter()
                .any(|a| matches!(a, AttributeValue::Uid(n) if *n == key.uid.0))
        {
            found = attributes.iter().find_map(|a| match a {
                AttributeValue::BodySection {
                    section: None,
                    data: Some(data),
                    ..
                } => Some(data.to_vec()),
                _ => None,
            });
        }
    })
    .await?;
    found.ok_or_else(|| BackendError::NoMessage(key.encode()))
}

/// COPYUID of a COPY (tagged) or MOVE (untagged OK): the target's
/// UIDVALIDITY and each source UID's new UID.
fn copy_uids(response: &Response<'_>) -> Option<(u32, Vec<(Uid, Uid)>)> {
    match response {
        Response::Data { outcome, .. } | Response::Done { outcome, .. } => match &outcome.code {
            Some(ResponseCode::CopyUid(uid_validity, from, to)) => {
                let from = expand(from);
                let to = expand(to);
                (from.len() == to.len()).then(|| {
                    (
                        *uid_validity,
                        from.into_iter()
                            .zip(to)
                            .map(|(a, b)| (Uid(a), Uid(b)))
                            .collect(),
                    )
                })
            }
            _ => None,
        },
        _ => None,
    }
}

/// A UID set's members in order (a COPYUID set is the size of the copy).
fn expand(set: &[UidSetMember]) -> Vec<u32> {
    const MOST: usize = 100_000;
    let mut out = Vec::new();
    for member in set {
        match member {
            UidSetMember::Uid(n) => out.push(*n),
            UidSetMember::UidRange(range) => {
                let (a, b) = (*range.start(), *range.end());
                let (low, high) = (a.min(b), a.max(b));
                if (high - low) as usize > MOST {
                    return Vec::new();
                }
                out.extend(low..=high);
            }
        }
    }
    out
}

fn single(set: &[UidSetMember]) -> Option<u32> {
    match expand(set).as_slice() {
        [uid] => Some(*uid),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_split_into_added_and_removed_flags() {
        let update = FlagUpdate {
            seen: Some(true),
            flagged: Some(false),
            answered: None,
            forwarded: Some(true),
        };
        assert_eq!(
            flag_lists(update),
            (vec!["\\Seen", "$Forwarded"], vec!["\\Flagged"])
        );
        assert_eq!(flag_lists(FlagUpdate::default()), (vec![], vec![]));
    }

    #[test]
    fn copyuid_sets_expand_in_order() {
        let set = [UidSetMember::UidRange(3..=5), UidSetMember::Uid(9)];
        assert_eq!(expand(&set), [3, 4, 5, 9]);
        assert_eq!(
            expand(&[UidSetMember::UidRange(1..=u32::MAX)]),
            Vec::<u32>::new()
        );
    }
}
