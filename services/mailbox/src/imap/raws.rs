//! Whole messages of one folder in as few round trips as their sizes
//! allow: one `UID FETCH (RFC822.SIZE)` for all, then `BODY.PEEK[]` in
//! batches of at most [`BATCH_BYTES`], where one message at a time took
//! two round trips each (a page of a phone's first Sync reads 100).

use std::collections::BTreeMap;

use async_imap::imap_proto::{AttributeValue, Response};

use crate::backend::BackendError;
use crate::domain::Uid;

use super::conn::{Conn, uid_set};

/// Most message bytes one batch fetches (one over it goes alone).
const BATCH_BYTES: u64 = 16 << 20;

fn uid_of(attributes: &[AttributeValue<'_>]) -> Option<u32> {
    attributes.iter().find_map(|a| match a {
        AttributeValue::Uid(n) => Some(*n),
        _ => None,
    })
}

/// `uids` of the selected folder, each shown to `each` whole or with why
/// not (`TooLarge` over `max`, `NoMessage` when gone), a batch at a time
/// so no more than a batch is held.
pub(crate) async fn raws(
    conn: &mut Conn,
    uids: &[Uid],
    max: u64,
    each: &mut (dyn FnMut(Uid, Result<Vec<u8>, BackendError>) + Send),
) -> Result<(), BackendError> {
    if uids.is_empty() {
        return Ok(());
    }
    let set: Vec<u32> = uids.iter().map(|u| u.0).collect();
    let mut sizes = BTreeMap::new();
    conn.exchange(
        "FETCH",
        &format!("UID FETCH {} (UID RFC822.SIZE)", uid_set(&set)),
        |response| {
            if let Response::Fetch(_, attributes) = response
                && let Some(uid) = uid_of(attributes)
                && set.contains(&uid)
                && let Some(size) = attributes.iter().find_map(|a| match a {
                    AttributeValue::Rfc822Size(n) => Some(u64::from(*n)),
                    _ => None,
                })
            {
                sizes.insert(uid, size);
            }
        },
    )
    .await?;
    let mut batches: Vec<Vec<u32>> = Vec::new();
    let mut bytes = 0;
    for (&uid, &size) in sizes.iter().filter(|&(_, &size)| size <= max) {
        match batches.last_mut() {
            Some(batch) if bytes + size <= BATCH_BYTES => batch.push(uid),
            _ => {
                batches.push(vec![uid]);
                bytes = 0;
            }
        }
        bytes += size;
    }
    let mut found = BTreeMap::new();
    let mut told = std::collections::BTreeSet::new();
    for batch in batches {
        conn.exchange(
            "FETCH",
            &format!("UID FETCH {} (UID BODY.PEEK[])", uid_set(&batch)),
            |response| {
                if let Response::Fetch(_, attributes) = response
                    && let Some(uid) = uid_of(attributes)
                    && batch.contains(&uid)
                    && let Some(data) = attributes.iter().find_map(|a| match a {
                        AttributeValue::BodySection {
                            section: None,
                            data: Some(data),
                            ..
                        } => Some(data.to_vec()),
                        _ => None,
                    })
                {
                    found.insert(uid, data);
                }
            },
        )
        .await?;
        for (uid, raw) in std::mem::take(&mut found) {
            told.insert(uid);
            each(Uid(uid), Ok(raw));
        }
    }
    for &uid in uids.iter().filter(|u| !told.contains(&u.0)) {
        let why = match sizes.get(&uid.0) {
            Some(&size) if size > max => BackendError::TooLarge { size, max },
            _ => BackendError::NoMessage(format!("UID {}", uid.0)),
        };
        each(uid, Err(why));
    }
    Ok(())
}
