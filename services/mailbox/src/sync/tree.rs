//! The folder tree as a phone was told it, behind a token, for clients
//! that keep a copy of the tree and ask what changed (ActiveSync's
//! FolderSync): which folders are new, renamed, moved or given another
//! role, and which are gone. Like a folder's sync state, a tree token stays
//! valid after its successor is issued, so a repeated call is answered the
//! same way.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The encoding's version; another is treated as expired.
const VERSION: u8 = 1;

/// A folder as told: its name, parent ("" at the top) and role (the
/// contract's `FolderRole` number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeEntry {
    /// Display name.
    pub name: String,
    /// The parent's folder id; "" at the top.
    pub parent: String,
    /// The role's number in the contract.
    pub role: i32,
}

/// The folders as told, by folder id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    /// By folder id.
    pub folders: BTreeMap<String, TreeEntry>,
}

/// What changed between two trees, by folder id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeChanges {
    /// New folders, each after its parent.
    pub added: Vec<String>,
    /// Renamed, moved or given another role.
    pub changed: Vec<String>,
    /// Gone, each before its parent.
    pub removed: Vec<String>,
}

impl TreeChanges {
    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

impl Tree {
    /// Bytes to store.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION];
        // A map of strings and numbers always serializes.
        out.extend(serde_json::to_vec(&self.folders).unwrap_or_default());
        out
    }

    /// The tree `bytes` encode; `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (&version, rest) = bytes.split_first()?;
        if version != VERSION {
            return None;
        }
        serde_json::from_slice(rest)
            .ok()
            .map(|folders| Self { folders })
    }

    /// What a phone holding `self` has to be told to hold `now`.
    pub fn changes_to(&self, now: &Self) -> TreeChanges {
        let mut added: Vec<String> = now
            .folders
            .keys()
            .filter(|id| !self.folders.contains_key(*id))
            .cloned()
            .collect();
        // A client files a folder under its parent, so parents come first
        // (and, for removals, children first).
        added.sort_by_key(|id| (now.depth(id), id.clone()));
        let changed = now
            .folders
            .iter()
            .filter(|(id, entry)| self.folders.get(*id).is_some_and(|old| old != *entry))
            .map(|(id, _)| id.clone())
            .collect();
        let mut removed: Vec<String> = self
            .folders
            .keys()
            .filter(|id| !now.folders.contains_key(*id))
            .cloned()
            .collect();
        removed.sort_by_key(|id| (std::cmp::Reverse(self.depth(id)), id.clone()));
        TreeChanges {
            added,
            changed,
            removed,
        }
    }

    /// Whether `id` is `ancestor` or under it, within the tree.
    pub fn within(&self, id: &str, ancestor: &str) -> bool {
        let mut seen = BTreeSet::new();
        let mut at = id;
        loop {
            if at == ancestor {
                return true;
            }
            match self.folders.get(at) {
                Some(entry) if !entry.parent.is_empty() && seen.insert(at) => at = &entry.parent,
                _ => return false,
            }
        }
    }

    /// Forgets `id` and every folder under it (a phone deleting a folder
    /// deletes what is in it).
    pub fn remove_subtree(&mut self, id: &str) {
        let gone: Vec<String> = self
            .folders
            .keys()
            .filter(|folder| self.within(folder, id))
            .cloned()
            .collect();
        for folder in gone {
            self.folders.remove(&folder);
        }
    }

    /// How many ancestors `id` has within the tree (a cycle or a missing
    /// parent ends the count).
    fn depth(&self, id: &str) -> usize {
        let mut seen = BTreeSet::new();
        let mut at = id;
        while let Some(entry) = self.folders.get(at) {
            if entry.parent.is_empty() || !seen.insert(at) {
                break;
            }
            at = &entry.parent;
        }
        seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subtree_goes_whole_and_nothing_beside_it() {
        let entry = |parent: &str| TreeEntry {
            name: String::new(),
            parent: parent.to_owned(),
            role: 1,
        };
        let mut tree = Tree {
            folders: [
                ("a", ""),
                ("a1", "a"),
                ("a11", "a1"),
                ("b", ""),
                ("loop1", "loop2"),
                ("loop2", "loop1"),
            ]
            .into_iter()
            .map(|(id, parent)| (id.to_owned(), entry(parent)))
            .collect(),
        };
        assert!(tree.within("a11", "a") && !tree.within("b", "a"));
        assert!(!tree.within("loop1", "a"), "a cycle ends the walk");
        tree.remove_subtree("a");
        assert_eq!(
            tree.folders.keys().map(String::as_str).collect::<Vec<_>>(),
            ["b", "loop1", "loop2"]
        );
    }

    fn tree(entries: &[(&str, &str, &str, i32)]) -> Tree {
        Tree {
            folders: entries
                .iter()
                .map(|(id, name, parent, role)| {
                    (
                        (*id).to_owned(),
                        TreeEntry {
                            name: (*name).to_owned(),
                            parent: (*parent).to_owned(),
                            role: *role,
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn parents_are_added_before_children_and_removed_after_them() {
        let empty = Tree::default();
        let now = tree(&[
            ("c", "Deep", "b", 7),
            ("b", "Mid", "a", 7),
            ("a", "Top", "", 7),
            ("i", "INBOX", "", 1),
        ]);
        let changes = empty.changes_to(&now);
        assert_eq!(changes.added, ["a", "i", "b", "c"]);
        assert_eq!(now.changes_to(&empty).removed, ["c", "b", "a", "i"]);
        assert!(now.changes_to(&now).is_empty());
    }

    #[test]
    fn a_rename_a_move_or_a_new_role_is_a_change() {
        let before = tree(&[("a", "A", "", 7), ("b", "B", "", 7), ("c", "C", "", 7)]);
        let after = tree(&[("a", "A2", "", 7), ("b", "B", "a", 7), ("c", "C", "", 5)]);
        assert_eq!(before.changes_to(&after).changed, ["a", "b", "c"]);
    }

    #[test]
    fn encoding_round_trips_and_refuses_other_bytes() {
        let t = tree(&[("a", "收件箱", "", 1)]);
        assert_eq!(Tree::decode(&t.encode()), Some(t));
        assert_eq!(Tree::decode(b""), None);
        assert_eq!(Tree::decode(b"\x02{}"), None);
        assert_eq!(Tree::decode(b"\x01not json"), None);
    }

    #[test]
    fn a_parent_cycle_does_not_loop() {
        let t = tree(&[("a", "A", "b", 7), ("b", "B", "a", 7)]);
        assert_eq!(Tree::default().changes_to(&t).added.len(), 2);
    }
}
