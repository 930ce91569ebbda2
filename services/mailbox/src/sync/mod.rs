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

pub use memory::MemoryStates;
pub use plan::{Entries, Listing, Page, Renumbered, plan, resume};
pub use run::{SyncError, Synced, sync};
pub use sql::{PgStates, Retention, SqliteStates};
pub use state::{FolderState, Pending};

use async_trait::async_trait;

use crate::domain::FolderId;

/// Whose folder a state belongs to: a token is only honoured there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    /// Tenant.
    pub tenant: String,
    /// Account.
    pub account: String,
    /// Folder.
    pub folder: FolderId,
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

/// Where the states behind tokens live.
#[async_trait]
pub trait States: Send + Sync {
    /// Keeps `state` for `scope` under a new token.
    async fn save(&self, scope: &Scope, state: &FolderState) -> Result<Token, StatesError>;
    /// The state behind `token` in `scope`; `None` when it is unknown or
    /// expired (or was issued for another scope).
    async fn load(&self, scope: &Scope, token: &Token) -> Result<Option<FolderState>, StatesError>;
    /// Forgets every state of an account (it was deleted or re-pointed).
    async fn forget_account(&self, tenant: &str, account: &str) -> Result<(), StatesError>;
}
