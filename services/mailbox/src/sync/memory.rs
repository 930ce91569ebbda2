//! Sync states in memory: tests, and a single process that may lose its
//! tokens on restart (phones then sync from the start).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Scope, States, StatesError, Token};

/// A folder's tokens, oldest first: each with when it was issued and its
/// encoded state.
type Issued = VecDeque<(Token, Instant, Vec<u8>)>;

/// States per process, bounded per folder and by age.
#[derive(Debug)]
pub struct MemoryStates {
    per_folder: usize,
    max_age: Duration,
    inner: Mutex<HashMap<Scope, Issued>>,
}

impl MemoryStates {
    /// At most `per_folder` tokens per folder, each for `max_age`.
    pub fn new(per_folder: usize, max_age: Duration) -> Self {
        Self {
            per_folder: per_folder.max(1),
            max_age,
            inner: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Scope, Issued>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl States for MemoryStates {
    async fn put(&self, scope: &Scope, state: Vec<u8>) -> Result<Token, StatesError> {
        let token = Token::random();
        let mut inner = self.lock();
        let tokens = inner.entry(scope.clone()).or_default();
        tokens.push_back((token.clone(), Instant::now(), state));
        while tokens.len() > self.per_folder {
            tokens.pop_front();
        }
        Ok(token)
    }

    async fn get(&self, scope: &Scope, token: &Token) -> Result<Option<Vec<u8>>, StatesError> {
        let inner = self.lock();
        Ok(inner.get(scope).and_then(|tokens| {
            tokens
                .iter()
                .find(|(t, at, _)| t == token && at.elapsed() <= self.max_age)
                .map(|(_, _, bytes)| bytes.clone())
        }))
    }

    async fn forget_account(&self, tenant: &str, account: &str) -> Result<(), StatesError> {
        self.lock()
            .retain(|scope, _| scope.tenant != tenant || scope.account != account);
        Ok(())
    }
}
