//! Views of the mailbox for clients that keep a copy of it (ActiveSync):
//! the folder tree's changes by token, an estimate of a sync without
//! making it, and message bodies cut to size beside a sync.

use pushmail_proto::mailbox::v1 as pb;

use super::{Mailboxes, identified};
use crate::backend::{BackendError, Mailbox};
use crate::bodies::{self, BodyKind};
use crate::domain::Uid;
use crate::domain::{FolderId, MessageKey};
use crate::refusal::Refusal;
use crate::sync::{Scope, SyncError, Token, Tree, TreeEntry, acknowledge, estimate};
use crate::wire;

/// Most bytes of an attachment one GetAttachment gives.
pub(crate) const MAX_ATTACHMENT_CHUNK: u64 = 8 << 20;

/// Most messages one GetBodies names: each body is read whole from the
/// server to be cut, so a call is bounded in reads as well as bytes.
pub(crate) const MAX_BODIES: usize = 64;

pub(super) fn since(token: &str) -> Result<Option<Token>, Refusal> {
    match token {
        "" => Ok(None),
        text => Ok(Some(Token::parse(text).ok_or(Refusal::BadToken)?)),
    }
}

fn tree(folders: &[pb::Folder]) -> Tree {
    Tree {
        folders: folders
            .iter()
            .map(|f| {
                (
                    f.folder_id.clone(),
                    TreeEntry {
                        name: f.name.clone(),
                        parent: f.parent_id.clone(),
                        role: f.role,
                    },
                )
            })
            .collect(),
    }
}

/// A folder (with its UIDVALIDITY) and the messages named in it, each
/// with its position in the request.
type FolderGroup<'a> = ((&'a FolderId, u32), Vec<(usize, Uid)>);

/// `keys` by folder, in the order first named.
fn by_folder(keys: &[MessageKey]) -> Vec<FolderGroup<'_>> {
    let mut groups: Vec<FolderGroup<'_>> = Vec::new();
    for (at, key) in keys.iter().enumerate() {
        let folder = (&key.folder, key.uid_validity);
        match groups.iter_mut().find(|(f, _)| *f == folder) {
            Some((_, members)) => members.push((at, key.uid)),
            None => groups.push((folder, vec![(at, key.uid)])),
        }
    }
    groups
}

fn kind(kind: pb::BodyType) -> BodyKind {
    match kind {
        pb::BodyType::Html => BodyKind::Html,
        pb::BodyType::Mime => BodyKind::Mime,
        pb::BodyType::Plain | pb::BodyType::Unspecified => BodyKind::Plain,
    }
}

fn body_type(kind: BodyKind) -> pb::BodyType {
    match kind {
        BodyKind::Plain => pb::BodyType::Plain,
        BodyKind::Html => pb::BodyType::Html,
        BodyKind::Mime => pb::BodyType::Mime,
    }
}

impl Mailboxes {
    pub(super) async fn folder_changes(
        &self,
        r: pb::FolderChangesRequest,
    ) -> Result<pb::FolderChangesResponse, Refusal> {
        let (tenant, account) = identified(&r.tenant_id, &r.account_id)?;
        let since = since(&r.since_token)?;
        let told = match &since {
            Some(token) => Some(
                self.states
                    .load_tree(tenant, account, token)
                    .await?
                    .ok_or(SyncError::UnknownToken)?,
            ),
            None => None,
        };
        let access = self.access(tenant, account).await?;
        let folders = opened!(self, &access, |m| Ok(m.folders().await?))?;
        let folders: Vec<pb::Folder> = folders.iter().map(wire::folder).collect();
        let now = tree(&folders);
        let changes = told.unwrap_or_default().changes_to(&now);
        // Nothing new: the token the phone holds still describes the tree,
        // and no state is written for a phone that merely checks.
        let next = match since {
            Some(token) if changes.is_empty() => token,
            _ => self.states.save_tree(tenant, account, &now).await?,
        };
        let pick = |ids: &[String]| -> Vec<pb::Folder> {
            ids.iter()
                .filter_map(|id| folders.iter().find(|f| &f.folder_id == id).cloned())
                .collect()
        };
        Ok(pb::FolderChangesResponse {
            added: pick(&changes.added),
            changed: pick(&changes.changed),
            removed: changes.removed,
            next_token: next.as_str().to_owned(),
        })
    }

    pub(super) async fn acknowledge(
        &self,
        r: pb::AcknowledgeRequest,
    ) -> Result<pb::AcknowledgeResponse, Refusal> {
        let (tenant, account) = identified(&r.tenant_id, &r.account_id)?;
        let scope = Scope {
            tenant: tenant.to_owned(),
            account: account.to_owned(),
            folder: FolderId::decode(&r.folder_id)?,
        };
        let since = since(&r.since_token)?.ok_or(Refusal::BadToken)?;
        let named = r.flagged.iter().map(|f| f.message_ids.len()).sum::<usize>() + r.removed.len();
        if named > crate::refusal::MAX_IDS {
            return Err(Refusal::TooMany { asked: named });
        }
        // Only this folder's messages are its state's; another folder's id
        // changes nothing here.
        let uids = |ids: &[String]| -> Result<Vec<Uid>, Refusal> {
            let mut uids = Vec::with_capacity(ids.len());
            for id in ids {
                let key = MessageKey::decode(id)?;
                if key.folder == scope.folder {
                    uids.push(key.uid);
                }
            }
            Ok(uids)
        };
        let mut flagged = Vec::with_capacity(r.flagged.len());
        for change in &r.flagged {
            flagged.push((
                uids(&change.message_ids)?,
                wire::flag_update(change.update.as_ref()),
            ));
        }
        let removed = uids(&r.removed)?;
        let token = acknowledge(self.states.as_ref(), &scope, &since, &flagged, &removed).await?;
        Ok(pb::AcknowledgeResponse {
            next_token: token.as_str().to_owned(),
        })
    }

    pub(super) async fn get_attachment(
        &self,
        r: pb::GetAttachmentRequest,
    ) -> Result<pb::AttachmentContent, Refusal> {
        let (tenant, account) = identified(&r.tenant_id, &r.account_id)?;
        let key = MessageKey::decode(&r.message_id)?;
        let access = self.access(tenant, account).await?;
        let raw = opened!(self, &access, |m| Ok(m.raw(&key).await?))?;
        let contents = pushmail_mime::contents(
            &raw,
            &pushmail_mime::Limits {
                max_message_bytes: raw.len().max(1),
                ..pushmail_mime::Limits::default()
            },
        )
        .map_err(Refusal::Original)?;
        let attached = contents
            .attachments
            .into_iter()
            .find(|a| a.info.part_id == r.part_id)
            .ok_or_else(|| Refusal::NoPart(r.part_id.clone()))?;
        let total = attached.bytes.len() as u64;
        if r.offset > total {
            return Err(Refusal::BadRange {
                offset: r.offset,
                total,
            });
        }
        let max = match r.max_bytes {
            0 => MAX_ATTACHMENT_CHUNK,
            n => n.min(MAX_ATTACHMENT_CHUNK),
        };
        let start = usize::try_from(r.offset).unwrap_or(usize::MAX);
        let end = usize::try_from(r.offset.saturating_add(max).min(total)).unwrap_or(usize::MAX);
        Ok(pb::AttachmentContent {
            file_name: attached.info.file_name,
            content_type: attached.info.content_type,
            total_bytes: total,
            offset: r.offset,
            data: attached.bytes[start..end].to_vec(),
        })
    }

    pub(super) async fn empty_folder(
        &self,
        r: pb::EmptyFolderRequest,
    ) -> Result<pb::EmptyFolderResponse, Refusal> {
        let (tenant, account) = identified(&r.tenant_id, &r.account_id)?;
        let folder = FolderId::decode(&r.folder_id)?;
        let access = self.access(tenant, account).await?;
        let removed = opened!(self, &access, |m| {
            let listing = m.listing(&folder, None).await?;
            let uids: Vec<Uid> = match listing.entries {
                crate::sync::Entries::Full(all) => all.into_keys().collect(),
                // A listing without a state is always full.
                crate::sync::Entries::Since { .. } => Vec::new(),
            };
            for chunk in uids.chunks(crate::refusal::MAX_IDS) {
                m.expunge(&folder, listing.uid_validity, chunk).await?;
            }
            Ok(uids.len())
        })?;
        if removed > 0 {
            self.tell(
                tenant,
                account,
                &r.device_id,
                crate::changes::Change::Deleted,
                vec![folder],
            );
        }
        Ok(pb::EmptyFolderResponse {
            removed: u32::try_from(removed).unwrap_or(u32::MAX),
        })
    }

    pub(super) async fn estimate_sync(
        &self,
        r: pb::EstimateSyncRequest,
    ) -> Result<pb::EstimateSyncResponse, Refusal> {
        let (tenant, account) = identified(&r.tenant_id, &r.account_id)?;
        let scope = Scope {
            tenant: tenant.to_owned(),
            account: account.to_owned(),
            folder: FolderId::decode(&r.folder_id)?,
        };
        let since = since(&r.since_token)?;
        let states = self.states.as_ref();
        let count = opened!(self, &self.access(tenant, account).await?, |m| Ok(
            estimate(m, states, &scope, since.as_ref()).await?
        ))?;
        Ok(pb::EstimateSyncResponse {
            estimate: u32::try_from(count).unwrap_or(u32::MAX),
        })
    }

    pub(super) async fn get_bodies(
        &self,
        r: pb::GetBodiesRequest,
    ) -> Result<pb::GetBodiesResponse, Refusal> {
        let (tenant, account) = identified(&r.tenant_id, &r.account_id)?;
        if r.message_ids.is_empty() {
            return Err(Refusal::NoMessages);
        }
        if r.message_ids.len() > MAX_BODIES {
            return Err(Refusal::TooManyBodies {
                asked: r.message_ids.len(),
            });
        }
        let keys = r
            .message_ids
            .iter()
            .map(|id| MessageKey::decode(id))
            .collect::<Result<Vec<_>, _>>()?;
        let wanted = kind(r.r#type());
        let access = self.access(tenant, account).await?;
        opened!(self, &access, |m| {
            // Read a folder's messages together (one IMAP round trip for
            // many), each cut as it comes; answered in the order asked.
            let mut cut: Vec<Option<pb::Body>> = vec![None; keys.len()];
            for ((folder, uid_validity), members) in by_folder(&keys) {
                let uids: Vec<Uid> = members.iter().map(|&(_, uid)| uid).collect();
                let mut failed = None;
                let mut each = |uid: Uid, outcome: Result<Vec<u8>, BackendError>| match outcome {
                    Ok(raw) => {
                        let body = bodies::body(&raw, wanted, r.max_bytes);
                        for &(at, _) in members.iter().filter(|&&(_, u)| u == uid) {
                            cut[at] = Some(pb::Body {
                                message_id: r.message_ids[at].clone(),
                                r#type: body_type(body.kind).into(),
                                data: body.data.clone(),
                                total_bytes: body.total,
                                truncated: body.truncated,
                            });
                        }
                    }
                    // Expunged since the sync that listed it.
                    Err(BackendError::NoMessage(_)) => {}
                    Err(error) => failed = Some(error),
                };
                match m.raws(folder, uid_validity, &uids, &mut each).await {
                    // The folder was renumbered: its messages are gone.
                    Ok(()) | Err(BackendError::NoMessage(_)) => {}
                    Err(error) => return Err(error.into()),
                }
                if let Some(error) = failed {
                    return Err(error.into());
                }
            }
            Ok(pb::GetBodiesResponse {
                bodies: cut.into_iter().flatten().collect(),
            })
        })
    }
}
