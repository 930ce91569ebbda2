//! Logged-in sessions kept between requests: a phone syncing a folder,
//! reading and flagging makes several calls in a row, and providers
//! throttle (163/126 block) accounts that log in too often. A session is
//! kept per account login (server, user and password: new settings never
//! reuse an old session), at most a few per account and a bound in all,
//! for a short idle time; one taken from the pool is checked with a NOOP
//! first and replaced when the server has dropped it. A session whose
//! request failed on the connection is never kept.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::ImapAccount;
use super::conn::Conn;

/// A kept session.
pub(crate) struct Idle {
    pub(crate) conn: Conn,
    since: Instant,
}

/// How many sessions are kept, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// Idle sessions per account login.
    pub per_account: usize,
    /// Idle sessions in all.
    pub total: usize,
    /// How long an idle session is kept.
    pub idle: Duration,
}

/// The kept sessions.
pub(crate) struct Pool {
    limits: PoolLimits,
    idle: Mutex<HashMap<[u8; 32], Vec<Idle>>>,
}

/// Which sessions may serve `account`: its server and its login, password
/// included (hashed, so no password is kept as a key).
pub(crate) fn key(account: &ImapAccount) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in [
        account.host.as_bytes(),
        &account.port.to_be_bytes(),
        format!("{:?}", account.security).as_bytes(),
        account.username.as_bytes(),
        account.password.expose().as_bytes(),
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().into()
}

impl Pool {
    pub(crate) fn new(limits: PoolLimits) -> Self {
        Self {
            limits,
            idle: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Vec<Idle>>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The most recently kept session for `key` that is not too old;
    /// older ones are dropped (their connections closed).
    pub(crate) fn take(&self, key: &[u8; 32]) -> Option<Idle> {
        let mut idle = self.lock();
        let sessions = idle.get_mut(key)?;
        let fresh = |s: &Idle| s.since.elapsed() < self.limits.idle;
        sessions.retain(fresh);
        let taken = sessions.pop();
        if sessions.is_empty() {
            idle.remove(key);
        }
        taken
    }

    /// Keeps `conn` for `key` if there is room; otherwise gives it back
    /// (to be logged out).
    pub(crate) fn keep(&self, key: [u8; 32], conn: Conn) -> Option<Conn> {
        if self.limits.per_account == 0 || self.limits.total == 0 {
            return Some(conn);
        }
        let mut idle = self.lock();
        let limit = self.limits.idle;
        idle.retain(|_, sessions| {
            sessions.retain(|s| s.since.elapsed() < limit);
            !sessions.is_empty()
        });
        let total: usize = idle.values().map(Vec::len).sum();
        let sessions = idle.entry(key).or_default();
        if sessions.len() >= self.limits.per_account || total >= self.limits.total {
            return Some(conn);
        }
        sessions.push(Idle {
            conn,
            since: Instant::now(),
        });
        None
    }

    /// Idle sessions held now (metrics and tests).
    pub(crate) fn held(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }
}
