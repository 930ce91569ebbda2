//! Mailbox ownership across ingest replicas: each watched account (IMAP or
//! POP3) is owned by exactly one replica, through a lease in Redis.
//!
//! Replicas announce themselves in a members set (score = expiry), renewed
//! every `lease_ms / 3`. The preferred owner of an account is the live
//! member with the highest rendezvous hash of (account, member), so a join
//! or a death moves only about 1/N of the accounts. A replica watches an
//! account only while it holds the account's lease (`SET NX PX`, renewed by
//! compare-and-expire). When an account should move, its old owner first
//! drops it from its owned set (its watcher stops), and only on the next
//! round deletes the lease; the new owner then takes it. A replica that
//! dies stops renewing: its members entry and leases expire and the others
//! take its accounts within `lease_ms` plus one round.
//!
//! Member expiries come from each replica's clock: skew beyond a third of
//! `lease_ms` would make replicas disagree about who is alive (the leases
//! still keep ownership exclusive).
//!
//! Without Redis (standalone) this process owns every account.

use pushmail_common::report::Report;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::ConnectionManager;
use sha2::Digest as _;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::marks::MarkError;

const ACQUIRE: &str = r"
local v = redis.call('GET', KEYS[1])
if v == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Lease commands sent per round trip.
const BATCH: usize = 1_000;

/// What a round does with one account's lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Preferred here: take or renew it.
    Take,
    /// Moving away: keep it one more round while the watcher stops.
    Keep,
    /// Moved away last round: give it back.
    Release,
}

/// Which watchers want accounts watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Interest {
    /// IMAP IDLE watchers.
    Imap,
    /// POP3 pollers.
    Pop3,
}

struct Redis {
    redis: ConnectionManager,
    members: String,
    lease_prefix: String,
    lease: Duration,
}

/// This replica's share of the accounts.
pub struct Leases {
    node: String,
    redis: Option<Redis>,
    interest: Mutex<HashMap<Interest, HashSet<String>>>,
    owned: watch::Sender<HashSet<String>>,
    /// Owned last round but no longer preferred: released next round.
    leaving: Mutex<HashSet<String>>,
    /// A new interest runs a round at once instead of at the next tick.
    wake: tokio::sync::Notify,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("node", &self.node)
            .field("shared", &self.redis.is_some())
            .finish()
    }
}

impl Leases {
    /// Leases in Redis under `{prefix}ingest:`, or (without Redis) every
    /// account owned here.
    pub fn new(redis: Option<ConnectionManager>, prefix: &str, lease: Duration) -> Arc<Self> {
        let node = uuid::Uuid::now_v7().to_string();
        let (owned, _) = watch::channel(HashSet::new());
        Arc::new(Self {
            node,
            redis: redis.map(|redis| Redis {
                redis,
                members: format!("{prefix}ingest:members"),
                lease_prefix: format!("{prefix}ingest:lease:"),
                lease,
            }),
            interest: Mutex::new(HashMap::new()),
            owned,
            leaving: Mutex::new(HashSet::new()),
            wake: tokio::sync::Notify::new(),
        })
    }

    /// This replica's id in the members set and in lease values.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The accounts owned now, and their changes.
    pub(crate) fn owned(&self) -> watch::Receiver<HashSet<String>> {
        self.owned.subscribe()
    }

    /// Whether `account` is owned here now.
    pub fn owns(&self, account: &str) -> bool {
        self.owned.borrow().contains(account)
    }

    /// Sets the accounts one kind of watcher wants; without Redis they are
    /// owned at once, with Redis from the next round.
    pub(crate) fn want(&self, interest: Interest, accounts: HashSet<String>) {
        let mut all = lock(&self.interest);
        if all.get(&interest) == Some(&accounts) {
            return;
        }
        all.insert(interest, accounts);
        if self.redis.is_none() {
            let union = all.values().flatten().cloned().collect();
            self.owned.send_replace(union);
        } else {
            self.wake.notify_one();
        }
    }

    /// The replica holding `account`'s lease, if any (for tests and tools).
    pub async fn holder(&self, account: &str) -> Result<Option<String>, MarkError> {
        let Some(r) = &self.redis else {
            return Ok(self.owns(account).then(|| self.node.clone()));
        };
        let mut redis = r.redis.clone();
        Ok(redis::cmd("GET")
            .arg(format!("{}{account}", r.lease_prefix))
            .query_async(&mut redis)
            .await?)
    }

    /// Renews membership and leases until `shutdown`, then gives every
    /// lease back so other replicas take over at once.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let Some(r) = &self.redis else {
            shutdown.cancelled().await;
            return;
        };
        let every = r.lease / 3;
        loop {
            if let Err(err) = self.round(r).await {
                // Leases not renewed expire: stop watching before they do.
                tracing::warn!(error = %Report(&err), "lease round failed; releasing ownership locally");
                self.owned.send_replace(HashSet::new());
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(every) => {}
                () = self.wake.notified() => {}
            }
        }
        self.owned.send_replace(HashSet::new());
        if let Err(err) = self.release_all(r).await {
            tracing::warn!(error = %Report(&err), "leases not released; they expire on their own");
        }
    }

    /// Renews this node's membership and drops expired members: the live
    /// nodes, which the accounts are spread over.
    async fn members(&self, r: &Redis, now: i64, lease_ms: i64) -> Result<Vec<String>, MarkError> {
        let (members,): (Vec<String>,) = redis::pipe()
            .atomic()
            .cmd("ZADD")
            .arg(&r.members)
            .arg(now + lease_ms)
            .arg(&self.node)
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&r.members)
            .arg("-inf")
            .arg(now)
            .ignore()
            .cmd("ZRANGE")
            .arg(&r.members)
            .arg(0)
            .arg(-1)
            .query_async(&mut r.redis.clone())
            .await?;
        Ok(members)
    }

    async fn round(&self, r: &Redis) -> Result<(), MarkError> {
        let now = pushmail_common::clock::now_ms();
        let mut redis = r.redis.clone();
        let lease_ms = i64::try_from(r.lease.as_millis()).unwrap_or(i64::MAX);
        let members = self.members(r, now, lease_ms).await?;
        let wanted: HashSet<String> = lock(&self.interest).values().flatten().cloned().collect();
        let leaving: HashSet<String> = std::mem::take(&mut *lock(&self.leaving));
        let current = self.owned.borrow().clone();
        let mut owned = HashSet::new();
        let mut next_leaving = HashSet::new();
        let mut accounts: Vec<&String> = wanted.iter().collect();
        accounts.extend(
            leaving
                .iter()
                .chain(&current)
                .filter(|a| !wanted.contains(*a)),
        );
        accounts.sort_unstable();
        accounts.dedup();
        let mut plan = Vec::with_capacity(accounts.len());
        for account in accounts {
            let preferred =
                wanted.contains(account) && preferred(account, &members) == Some(&self.node);
            if preferred {
                plan.push((account, Step::Take));
            } else if current.contains(account) {
                // Stop watching now, give the lease back next round: by then
                // the watcher has ended, so the new owner never overlaps it.
                plan.push((account, Step::Keep));
                next_leaving.insert(account.clone());
            } else if leaving.contains(account) {
                plan.push((account, Step::Release));
            }
        }
        // One round trip per batch, not per account.
        let (acquire, release): (String, String) = redis::pipe()
            .cmd("SCRIPT")
            .arg("LOAD")
            .arg(ACQUIRE)
            .cmd("SCRIPT")
            .arg("LOAD")
            .arg(RELEASE)
            .query_async(&mut redis)
            .await?;
        for batch in plan.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for (account, step) in batch {
                let key = format!("{}{account}", r.lease_prefix);
                match step {
                    Step::Take | Step::Keep => pipe
                        .cmd("EVALSHA")
                        .arg(&acquire)
                        .arg(1)
                        .arg(key)
                        .arg(&self.node)
                        .arg(lease_ms),
                    Step::Release => pipe
                        .cmd("EVALSHA")
                        .arg(&release)
                        .arg(1)
                        .arg(key)
                        .arg(&self.node),
                };
            }
            let results: Vec<i64> = pipe.query_async(&mut redis).await?;
            for ((account, step), got) in batch.iter().zip(results) {
                if *step == Step::Take && got == 1 {
                    owned.insert((*account).clone());
                }
            }
        }
        *lock(&self.leaving) = next_leaving;
        self.owned.send_if_modified(|now| {
            let changed = *now != owned;
            *now = owned;
            changed
        });
        Ok(())
    }

    async fn release_all(&self, r: &Redis) -> Result<(), MarkError> {
        let mut redis = r.redis.clone();
        let wanted: Vec<String> = lock(&self.interest).values().flatten().cloned().collect();
        for batch in wanted.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for account in batch {
                pipe.cmd("EVAL")
                    .arg(RELEASE)
                    .arg(1)
                    .arg(format!("{}{account}", r.lease_prefix))
                    .arg(&self.node)
                    .ignore();
            }
            let () = pipe.query_async(&mut redis).await?;
        }
        let _: i64 = redis::cmd("ZREM")
            .arg(&r.members)
            .arg(&self.node)
            .query_async(&mut redis)
            .await?;
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Rendezvous (highest random weight) choice of `account`'s owner.
fn preferred<'a>(account: &str, members: &'a [String]) -> Option<&'a String> {
    members.iter().max_by_key(|member| {
        let digest = sha2::Sha256::digest(format!("{account}\0{member}"));
        u64::from_be_bytes(digest[..8].try_into().unwrap_or_default())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_moves_only_the_accounts_of_a_joining_or_leaving_member() {
        let two: Vec<String> = vec!["a".into(), "b".into()];
        let three: Vec<String> = vec!["a".into(), "b".into(), "c".into()];
        let accounts: Vec<String> = (0..3_000).map(|i| format!("account-{i}")).collect();
        let mut moved = 0;
        let mut to_c = 0;
        for account in &accounts {
            let before = preferred(account, &two).unwrap();
            let after = preferred(account, &three).unwrap();
            if before != after {
                moved += 1;
                if after == "c" {
                    to_c += 1;
                }
            }
        }
        assert_eq!(moved, to_c, "only accounts moving to the new member move");
        assert!((800..1_200).contains(&moved), "about a third move: {moved}");
        assert_eq!(preferred("x", &[]), None);
    }

    #[tokio::test]
    async fn without_redis_everything_wanted_is_owned() {
        let leases = Leases::new(None, "p:", Duration::from_secs(30));
        leases.want(Interest::Imap, HashSet::from(["a".to_owned()]));
        leases.want(Interest::Pop3, HashSet::from(["b".to_owned()]));
        assert!(leases.owns("a") && leases.owns("b"));
        leases.want(Interest::Imap, HashSet::new());
        assert!(!leases.owns("a") && leases.owns("b"));
    }
}
