//! Folders a phone makes, renames and deletes on the mail server, and the
//! tree as that phone now knows it: its token's tree with the phone's own
//! edit applied, so its next FolderChanges does not tell it what it did.
//! A folder's id is its server name, so a rename gives new ids; the phone
//! keeps the old one (ActiveSync's ServerId does not change), and the
//! next FolderChanges tells it the old folder gone and the new one added.

use pushmail_proto::mailbox::v1 as pb;

use super::views::since;
use super::{Mailboxes, identified};
use crate::backend::{BackendError, Mailbox};
use crate::domain::{Folder, FolderId, FolderRole};
use crate::refusal::Refusal;
use crate::sync::{SyncError, Token, Tree, TreeEntry};
use crate::wire;

/// Longest folder name, in characters (what mail clients allow).
const MAX_NAME: usize = 255;

fn folder_name(name: &str) -> Result<&str, Refusal> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Refusal::BadFolderName("must not be empty"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(Refusal::BadFolderName("must be at most 255 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(Refusal::BadFolderName("must not hold control characters"));
    }
    Ok(name)
}

fn parent(id: &str) -> Result<Option<FolderId>, Refusal> {
    match id {
        "" => Ok(None),
        id => Ok(Some(FolderId::decode(id)?)),
    }
}

/// The folder `id` among `folders`.
fn find<'a>(folders: &'a [Folder], id: &FolderId) -> Result<&'a Folder, Refusal> {
    folders
        .iter()
        .find(|f| &f.id == id)
        .ok_or_else(|| Refusal::Backend(BackendError::NoFolder(id.clone())))
}

/// The folder a phone may rename or delete: one of its own, with none of
/// the special ones under it (a rename or delete takes them along; some
/// servers file Sent or Archive under a user's folder).
fn editable<'a>(folders: &'a [Folder], id: &FolderId) -> Result<&'a Folder, Refusal> {
    let folder = find(folders, id)?;
    let special = subtree(folders, id).iter().any(|under| {
        folders
            .iter()
            .any(|f| &f.id == under && f.role != FolderRole::User)
    });
    if special {
        Err(Refusal::SpecialFolder)
    } else {
        Ok(folder)
    }
}

/// Checks that `name` may go under `parent` (which exists and is not
/// `moving` or under it), where no other folder than `moving` has it.
fn placeable(
    folders: &[Folder],
    parent: Option<&FolderId>,
    name: &str,
    moving: Option<&FolderId>,
) -> Result<(), Refusal> {
    let mut at = parent;
    while let Some(id) = at {
        if Some(id) == moving {
            return Err(Refusal::NoParent);
        }
        at = folders
            .iter()
            .find(|f| &f.id == id)
            .ok_or(Refusal::NoParent)?
            .parent
            .as_ref();
    }
    let taken = folders
        .iter()
        .find(|f| f.parent.as_ref() == parent && f.name == name && Some(&f.id) != moving);
    match taken {
        Some(other) => Err(Refusal::Backend(BackendError::FolderExists(
            other.id.clone(),
        ))),
        None => Ok(()),
    }
}

/// `folder` and every folder under it, the deepest first.
fn subtree(folders: &[Folder], folder: &FolderId) -> Vec<FolderId> {
    let depth_under = |f: &Folder| -> Option<usize> {
        let mut depth = 0;
        let mut at = Some(&f.id);
        while let Some(id) = at {
            if id == folder {
                return Some(depth);
            }
            depth += 1;
            if depth > folders.len() {
                return None;
            }
            at = folders.iter().find(|g| &g.id == id)?.parent.as_ref();
        }
        None
    };
    let mut under: Vec<(usize, FolderId)> = folders
        .iter()
        .filter_map(|f| depth_under(f).map(|depth| (depth, f.id.clone())))
        .collect();
    under.sort_by_key(|(depth, _)| std::cmp::Reverse(*depth));
    under.into_iter().map(|(_, id)| id).collect()
}

impl Mailboxes {
    /// The tree the phone holding `token` was told.
    async fn told(&self, tenant: &str, account: &str, token: &str) -> Result<Tree, Refusal> {
        let token: Token = since(token)?.ok_or(Refusal::BadToken)?;
        Ok(self
            .states
            .load_tree(tenant, account, &token)
            .await?
            .ok_or(SyncError::UnknownToken)?)
    }

    async fn edited(
        &self,
        tenant: &str,
        account: &str,
        told: &Tree,
        folder: Option<pb::Folder>,
    ) -> Result<pb::FolderEdited, Refusal> {
        let next = self.states.save_tree(tenant, account, told).await?;
        Ok(pb::FolderEdited {
            folder,
            next_token: next.as_str().to_owned(),
        })
    }

    pub(super) async fn create_folder(
        &self,
        r: pb::CreateFolderRequest,
    ) -> Result<pb::FolderEdited, Refusal> {
        let (tenant, account) = identified(&r.tenant_id, &r.account_id)?;
        let name = folder_name(&r.name)?;
        let parent = parent(&r.parent_id)?;
        let mut told = self.told(tenant, account, &r.since_token).await?;
        let access = self.access(tenant, account).await?;
        let id = opened!(self, &access, |m| {
            let folders = m.folders().await?;
            placeable(&folders, parent.as_ref(), name, None)?;
            Ok(m.create_folder(parent.as_ref(), name).await?)
        })?;
        let made = wire::folder(&Folder {
            id,
            name: name.to_owned(),
            parent,
            role: FolderRole::User,
            total: 0,
            unread: 0,
            version: String::new(),
        });
        told.folders.insert(made.folder_id.clone(), entry(&made));
        tracing::info!(folder = %made.folder_id, "folder made");
        self.edited(tenant, account, &told, Some(made)).await
    }

    pub(super) async fn rename_folder(
        &self,
        r: pb::RenameFolderRequest,
    ) -> Result<pb::FolderEdited, Refusal> {
        let (tenant, account) = identified(&r.tenant_id, &r.account_id)?;
        let name = folder_name(&r.name)?;
        let folder = FolderId::decode(&r.folder_id)?;
        let parent = parent(&r.parent_id)?;
        let mut told = self.told(tenant, account, &r.since_token).await?;
        let access = self.access(tenant, account).await?;
        let renamed = opened!(self, &access, |m| {
            let folders = m.folders().await?;
            let current = editable(&folders, &folder)?.clone();
            placeable(&folders, parent.as_ref(), name, Some(&folder))?;
            let unmoved = current.parent == parent && current.name == name;
            let id = if unmoved {
                current.id.clone()
            } else {
                m.rename_folder(&folder, parent.as_ref(), name).await?
            };
            Ok(Folder {
                id,
                name: name.to_owned(),
                parent: parent.clone(),
                ..current
            })
        })?;
        let renamed = wire::folder(&renamed);
        // Under the id the phone keeps, as the phone now sees it.
        told.folders.insert(
            folder.encode(),
            TreeEntry {
                name: renamed.name.clone(),
                parent: renamed.parent_id.clone(),
                role: renamed.role,
            },
        );
        tracing::info!(from = %folder.encode(), to = %renamed.folder_id, "folder renamed");
        self.edited(tenant, account, &told, Some(renamed)).await
    }

    pub(super) async fn delete_folder(
        &self,
        r: pb::DeleteFolderRequest,
    ) -> Result<pb::FolderEdited, Refusal> {
        let (tenant, account) = identified(&r.tenant_id, &r.account_id)?;
        let folder = FolderId::decode(&r.folder_id)?;
        let mut told = self.told(tenant, account, &r.since_token).await?;
        let access = self.access(tenant, account).await?;
        opened!(self, &access, |m| {
            let folders = m.folders().await?;
            editable(&folders, &folder)?;
            for id in subtree(&folders, &folder) {
                m.delete_folder(&id).await?;
            }
            Ok(())
        })?;
        told.remove_subtree(&folder.encode());
        tracing::info!(folder = %folder.encode(), "folder deleted");
        self.edited(tenant, account, &told, None).await
    }
}

fn entry(folder: &pb::Folder) -> TreeEntry {
    TreeEntry {
        name: folder.name.clone(),
        parent: folder.parent_id.clone(),
        role: folder.role,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(id: &str, parent: Option<&str>, role: FolderRole) -> Folder {
        Folder {
            id: FolderId::new(id),
            name: id.rsplit('/').next().unwrap_or(id).to_owned(),
            parent: parent.map(FolderId::new),
            role,
            total: 0,
            unread: 0,
            version: String::new(),
        }
    }

    fn tree() -> Vec<Folder> {
        vec![
            folder("INBOX", None, FolderRole::Inbox),
            folder("Work", None, FolderRole::User),
            folder("Work/2024", Some("Work"), FolderRole::User),
            folder("Work/2024/Q1", Some("Work/2024"), FolderRole::User),
            folder("Home", None, FolderRole::User),
        ]
    }

    #[test]
    fn a_subtree_is_deleted_deepest_first() {
        let order = subtree(&tree(), &FolderId::new("Work"));
        assert_eq!(
            order.iter().map(FolderId::raw).collect::<Vec<_>>(),
            ["Work/2024/Q1", "Work/2024", "Work"]
        );
    }

    #[test]
    fn a_folder_goes_only_where_its_name_is_free_and_never_inside_itself() {
        let folders = tree();
        let work = FolderId::new("Work");
        let inner = FolderId::new("Work/2024");
        assert!(placeable(&folders, None, "Archive 2", None).is_ok());
        assert!(matches!(
            placeable(&folders, None, "Home", None),
            Err(Refusal::Backend(BackendError::FolderExists(_)))
        ));
        assert!(placeable(&folders, None, "Work", Some(&work)).is_ok());
        assert!(matches!(
            placeable(&folders, Some(&inner), "Work", Some(&work)),
            Err(Refusal::NoParent)
        ));
        assert!(matches!(
            placeable(&folders, Some(&FolderId::new("Nowhere")), "x", None),
            Err(Refusal::NoParent)
        ));
        assert!(matches!(
            editable(&folders, &FolderId::new("INBOX")),
            Err(Refusal::SpecialFolder)
        ));
        // A special folder under a user's one keeps both where they are.
        let mut filed = tree();
        filed.push(folder("Home/Sent", Some("Home"), FolderRole::Sent));
        assert!(matches!(
            editable(&filed, &FolderId::new("Home")),
            Err(Refusal::SpecialFolder)
        ));
        assert!(editable(&filed, &work).is_ok());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(folder_name("  Receipts ").unwrap(), "Receipts");
        assert!(folder_name(" ").is_err());
        assert!(folder_name("a\nb").is_err());
        assert!(folder_name(&"x".repeat(256)).is_err());
        assert!(folder_name(&"已".repeat(255)).is_ok());
    }
}
