//! Sync tokens: [`plan`] computes a page from what a token's state holds
//! and what the server lists; [`States`] keeps the states behind tokens.
//!
//! A token stays valid after a newer one is issued from it, so a phone
//! whose answer was lost repeats its request with the old token and gets
//! the same changes again; tokens expire by age and by count per folder.

mod memory;
mod plan;
mod run;
mod sql;
mod state;
mod tree;

pub use memory::MemoryStates;
pub use plan::{Entries, Listing, Page, Renumbered, plan, resume};
pub use run::{SyncError, Synced, acknowledge, estimate, sync};
pub use sql::{PgStates, Retention, SqliteStates};
pub use state::{FolderState, Pending};
pub use tree::{Tree, TreeChanges, TreeEntry};

use async_trait::async_trait;

use crate::domain::FolderId;

/// Whose folder a state belongs to: a token is only honoured there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    /// Tenant.
    pub tenant: String,
    /// Account.
    pub account: String,
    /// Folder; the empty name (no server has a folder without one) is the
    /// account's folder tree.
    pub folder: FolderId,
}

impl Scope {
    /// The account's folder tree, as a phone that keeps a copy of it
    /// (ActiveSync's FolderSync) was told it.
    pub fn tree(tenant: &str, account: &str) -> Self {
        Self {
            tenant: tenant.to_owned(),
            account: account.to_owned(),
            folder: FolderId::new(""),
        }
    }
}

/// A sync token as issued: random, so it cannot be guessed or forged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Token(String);

impl Token {
    /// A fresh token.
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    /// A token a client sent back.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self(text.to_ascii_lowercase()))
    }

    /// What the client is given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The state store failed.
#[derive(Debug, thiserror::Error)]
pub enum StatesError {
    /// The database could not be used.
    #[error("the mailbox database is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A database failure as the stores report it.
pub(crate) fn unavailable(error: sqlx::Error) -> StatesError {
    StatesError::Unavailable(Box::new(error))
}

/// Where the states behind tokens live: encoded states, each under its
/// token in its scope.
#[async_trait]
pub trait States: Send + Sync {
    /// Keeps `state` for `scope` under a new token.
    async fn put(&self, scope: &Scope, state: Vec<u8>) -> Result<Token, StatesError>;
    /// The state behind `token` in `scope`; `None` when it is unknown or
    /// expired (or was issued for another scope).
    async fn get(&self, scope: &Scope, token: &Token) -> Result<Option<Vec<u8>>, StatesError>;
    /// Forgets every state of an account (it was deleted or re-pointed).
    async fn forget_account(&self, tenant: &str, account: &str) -> Result<(), StatesError>;

    /// Keeps a folder's `state` under a new token.
    async fn save(&self, scope: &Scope, state: &FolderState) -> Result<Token, StatesError> {
        self.put(scope, state.encode()).await
    }

    /// The folder state behind `token`; `None` when it is unknown,
    /// expired, another scope's or unreadable.
    async fn load(&self, scope: &Scope, token: &Token) -> Result<Option<FolderState>, StatesError> {
        Ok(self
            .get(scope, token)
            .await?
            .and_then(|bytes| FolderState::decode(&bytes)))
    }

    /// Keeps the account's folder tree as told under a new token.
    async fn save_tree(
        &self,
        tenant: &str,
        account: &str,
        tree: &Tree,
    ) -> Result<Token, StatesError> {
        self.put(&Scope::tree(tenant, account), tree.encode()).await
    }

    /// The folder tree behind `token`.
    async fn load_tree(
        &self,
        tenant: &str,
        account: &str,
        token: &Token,
    ) -> Result<Option<Tree>, StatesError> {
        Ok(self
            .get(&Scope::tree(tenant, account), token)
            .await?
            .and_then(|bytes| Tree::decode(&bytes)))
    }
}
