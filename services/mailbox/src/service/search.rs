//! Search: the account's messages matching a query, newest first, found
//! by the backend (the provider's IMAP SEARCH, or the platform's own
//! store's summaries) and summarised as a sync lists them.

use pushmail_common::clock::from_timestamp;
use pushmail_proto::mailbox::v1 as pb;

use super::{Mailboxes, identified};
use crate::backend::Mailbox;
use crate::domain::{FolderId, Listed, Query};
use crate::refusal::Refusal;
use crate::wire;

/// Most folders one search names.
pub(crate) const MAX_FOLDERS: usize = 50;

/// Most messages one search answers.
pub(crate) const MAX_FOUND: u32 = 100;

/// Longest words searched for, bytes.
pub(crate) const MAX_TEXT: usize = 256;

/// The query `r` asks, checked.
fn query(r: &pb::SearchRequest) -> Result<Query, Refusal> {
    let text = r.text.trim();
    if text.len() > MAX_TEXT {
        return Err(Refusal::BadSearch {
            field: "text",
            reason: "at most 256 bytes",
        });
    }
    // Words go into an IMAP command: a line break would end it there.
    if text.chars().any(char::is_control) {
        return Err(Refusal::BadSearch {
            field: "text",
            reason: "no control characters",
        });
    }
    let query = Query {
        text: (!text.is_empty()).then(|| text.to_owned()),
        received_after_ms: r.received_after.as_ref().map(from_timestamp),
        received_before_ms: r.received_before.as_ref().map(from_timestamp),
    };
    if let (Some(after), Some(before)) = (query.received_after_ms, query.received_before_ms)
        && after >= before
    {
        return Err(Refusal::BadSearch {
            field: "received_before",
            reason: "must be later than received_after",
        });
    }
    Ok(query)
}

impl Mailboxes {
    pub(super) async fn search(&self, r: pb::SearchRequest) -> Result<pb::SearchResponse, Refusal> {
        let (tenant, account) = identified(&r.tenant_id, &r.account_id)?;
        if r.folder_ids.len() > MAX_FOLDERS {
            return Err(Refusal::BadSearch {
                field: "folder_ids",
                reason: "at most 50 folders",
            });
        }
        let query = query(&r)?;
        let named = r
            .folder_ids
            .iter()
            .map(|id| FolderId::decode(id))
            .collect::<Result<Vec<_>, _>>()?;
        let limit = match r.limit {
            0 => MAX_FOUND,
            n => n.min(MAX_FOUND),
        } as usize;
        let access = self.access(tenant, account).await?;
        opened!(self, &access, |m| {
            let folders = if named.is_empty() {
                m.folders().await?.into_iter().map(|f| f.id).collect()
            } else {
                named
            };
            let mut total = 0usize;
            let mut found: Vec<Listed> = Vec::new();
            for folder in &folders {
                let (uid_validity, uids) = m.search(folder, &query).await?;
                total += uids.len();
                // UIDs grow with arrival: a folder's newest are its last.
                let newest = &uids[uids.len().saturating_sub(limit)..];
                let listed = m.summaries(folder, uid_validity, newest).await?;
                found.extend(
                    listed
                        .into_iter()
                        .filter(|l| query.dated(l.summary.received_ms.unwrap_or(0))),
                );
                // Arrival times are whole seconds on IMAP: within one,
                // the higher UID came later. Kept to the limit as each
                // folder adds, so many folders hold no more.
                found.sort_by_key(|l| std::cmp::Reverse((l.summary.received_ms, l.key.uid)));
                found.truncate(limit);
            }
            Ok(pb::SearchResponse {
                found: found
                    .iter()
                    .map(|l| wire::summary(&l.key, &l.summary))
                    .collect(),
                total: u32::try_from(total).unwrap_or(u32::MAX),
            })
        })
    }
}
