//! Selecting a folder, and what it holds: with QRESYNC, `SELECT … (QRESYNC
//! (uidvalidity modseq))` answers with only the messages changed since and
//! the UIDs expunged since (`VANISHED (EARLIER)`); without it, every UID
//! and its flags (`UID FETCH 1:* (FLAGS)`), which the sync plan diffs.

use std::collections::BTreeMap;

use async_imap::imap_proto::{AttributeValue, MailboxDatum, Response, ResponseCode, Status};

use crate::backend::BackendError;
use crate::domain::{Flags, FolderId, Uid};
use crate::sync::{Entries, Listing};

use super::conn::{Conn, quoted};

/// What SELECT said.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Selected {
    pub(crate) uid_validity: u32,
    pub(crate) exists: u32,
    pub(crate) modseq: Option<u64>,
}

/// Selects `folder` read-write; with `qresync`, asks for the changes since
/// that UIDVALIDITY and modseq, which `changes` is shown.
pub(crate) async fn select(
    conn: &mut Conn,
    folder: &FolderId,
    qresync: Option<(u32, u64)>,
    mut changes: impl FnMut(&Response<'_>) + Send,
) -> Result<Selected, BackendError> {
    let mut command = format!("SELECT {}", quoted(folder.raw()));
    match qresync {
        Some((uid_validity, modseq)) if conn.caps.qresync => {
            command.push_str(&format!(" (QRESYNC ({uid_validity} {modseq}))"));
        }
        // Without QRESYNC enabled, CONDSTORE must be asked for per SELECT
        // to hear HIGHESTMODSEQ.
        _ if conn.caps.condstore && !conn.caps.qresync => command.push_str(" (CONDSTORE)"),
        _ => {}
    }
    let mut selected = Selected::default();
    let mut validity = None;
    conn.exchange("SELECT", &command, |response| match response {
        Response::MailboxData(MailboxDatum::Exists(n)) => selected.exists = *n,
        Response::Data {
            status: Status::Ok,
            outcome,
        }
        | Response::Done { outcome, .. } => match &outcome.code {
            Some(ResponseCode::UidValidity(v)) => validity = Some(*v),
            Some(ResponseCode::HighestModSeq(m)) => selected.modseq = Some(*m),
            _ => {}
        },
        other => changes(other),
    })
    .await
    .map_err(|error| missing_folder(error, folder))?;
    selected.uid_validity =
        validity.ok_or_else(|| BackendError::Protocol("SELECT gave no UIDVALIDITY".to_owned()))?;
    if !conn.caps.condstore {
        selected.modseq = None;
    }
    Ok(selected)
}

/// A refusal to select that means the folder is not there.
pub(crate) fn missing_folder(error: BackendError, folder: &FolderId) -> BackendError {
    match error {
        BackendError::Refused { text, .. }
            if text.contains("NONEXISTENT")
                || text.to_ascii_lowercase().contains("doesn't exist")
                || text.to_ascii_lowercase().contains("does not exist") =>
        {
            BackendError::NoFolder(folder.clone())
        }
        other => other,
    }
}

/// What `folder` holds; see the module doc.
pub(crate) async fn listing(
    conn: &mut Conn,
    folder: &FolderId,
    since: Option<(u32, u64)>,
) -> Result<Listing, BackendError> {
    let mut changed = BTreeMap::new();
    let mut vanished = Vec::new();
    let selected = select(conn, folder, since, |response| match response {
        Response::Fetch(_, attributes) => {
            if let (Some(uid), Some(flags)) = uid_and_flags(attributes) {
                changed.insert(uid, flags);
            }
        }
        Response::Vanished { uids, .. } => vanished.extend(uids.iter().cloned()),
        _ => {}
    })
    .await?;
    if let Some((uid_validity, _)) = since
        && conn.caps.qresync
        && selected.uid_validity == uid_validity
    {
        return Ok(Listing {
            uid_validity: selected.uid_validity,
            modseq: selected.modseq,
            entries: Entries::Since { changed, vanished },
        });
    }
    let mut all = BTreeMap::new();
    if selected.exists > 0 {
        conn.exchange("FETCH", "UID FETCH 1:* (UID FLAGS)", |response| {
            if let Response::Fetch(_, attributes) = response
                && let (Some(uid), Some(flags)) = uid_and_flags(attributes)
            {
                all.insert(uid, flags);
            }
        })
        .await?;
    }
    Ok(Listing {
        uid_validity: selected.uid_validity,
        modseq: selected.modseq,
        entries: Entries::Full(all),
    })
}

/// The UID and flags of a FETCH response.
pub(crate) fn uid_and_flags(attributes: &[AttributeValue<'_>]) -> (Option<Uid>, Option<Flags>) {
    let mut uid = None;
    let mut flags = None;
    for attribute in attributes {
        match attribute {
            AttributeValue::Uid(n) => uid = Some(Uid(*n)),
            AttributeValue::Flags(list) => flags = Some(read_flags(list)),
            _ => {}
        }
    }
    (uid, flags)
}

/// Our flags from IMAP's.
pub(crate) fn read_flags<S: AsRef<str>>(list: &[S]) -> Flags {
    let mut flags = Flags::default();
    for flag in list {
        let flag = flag.as_ref();
        if flag.eq_ignore_ascii_case("\\Seen") {
            flags.seen = true;
        } else if flag.eq_ignore_ascii_case("\\Flagged") {
            flags.flagged = true;
        } else if flag.eq_ignore_ascii_case("\\Answered") {
            flags.answered = true;
        } else if flag.eq_ignore_ascii_case("$Forwarded") {
            flags.forwarded = true;
        } else if flag.eq_ignore_ascii_case("\\Draft") {
            flags.draft = true;
        }
    }
    flags
}
