//! Mailbox ownership across ingest replicas: each IMAP account is watched
//! by exactly one replica; a joining replica takes a share; when a replica
//! dies its mailboxes are taken over and no mail is lost or announced
//! twice.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use pushmail_ingest::leases::Leases;
use pushmail_integration_tests::dovecot::Dovecot;
use pushmail_integration_tests::nodes::{BindingNode, IsolatedIngest, TenantEvents, ingest_config};
use pushmail_integration_tests::unique;
use pushmail_proto::binding::v1 as pb;

const ACCOUNTS: usize = 10;

/// Waits until `done` holds for the accounts' lease holders.
async fn holders_until(
    leases: &Leases,
    accounts: &[String],
    what: &str,
    done: impl Fn(&[Option<String>]) -> bool,
) -> Vec<Option<String>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut holders = Vec::new();
        for account in accounts {
            holders.push(leases.holder(account).await.unwrap());
        }
        if done(&holders) {
            return holders;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: holders stayed {holders:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn distinct(holders: &[Option<String>]) -> HashSet<&String> {
    holders.iter().flatten().collect()
}

#[tokio::test]
async fn each_mailbox_has_one_owner_and_a_dead_replicas_mailboxes_are_taken_over() {
    let names: Vec<String> = (0..ACCOUNTS)
        .map(|i| format!("shard{i}@example.net"))
        .collect();
    let names_ref: Vec<&str> = names.iter().map(String::as_str).collect();
    let dovecot = Dovecot::start(&names_ref).await.expect("dovecot");
    let mut binding = BindingNode::start().await.unwrap();
    let tenant = binding.tenant().await.unwrap();
    let mut accounts = Vec::new();
    let mut by_account = HashMap::new();
    for user in &dovecot.users {
        let account = binding
            .mailbox_account(
                &tenant,
                user,
                dovecot.imap.port(),
                pb::AccountKind::ExternalImap,
            )
            .await
            .unwrap();
        by_account.insert(account.account_id.clone(), user.address.clone());
        accounts.push(account.account_id);
    }
    let mut events = TenantEvents::new(&tenant.tenant_id).await.unwrap();
    let blobs = tempfile::tempdir().unwrap();
    let mut config = ingest_config(binding.addr, blobs.path());
    config.imap.refresh_seconds = 1;
    config.sharding.lease_ms = 2_000;
    // The test's view of the leases (same Redis prefix, never run).
    let view = Leases::new(
        config
            .marks
            .connect(pushmail_common::redis::Durability::Cache)
            .await
            .unwrap(),
        &config.marks.redis.key_prefix,
        Duration::from_secs(2),
    );

    let a = IsolatedIngest::start(config.clone()).unwrap();
    let first = holders_until(&view, &accounts, "one replica owns all", |h| {
        h.iter().all(Option::is_some) && distinct(h).len() == 1
    })
    .await;
    let a_id = first[0].clone().unwrap();

    let b = IsolatedIngest::start(config.clone()).unwrap();
    let shared = holders_until(&view, &accounts, "a joining replica takes a share", |h| {
        h.iter().all(Option::is_some) && distinct(h).len() == 2
    })
    .await;
    let b_id = distinct(&shared)
        .into_iter()
        .find(|id| **id != a_id)
        .unwrap()
        .clone();
    println!(
        "after the join: {} accounts on A, {} on B",
        shared.iter().filter(|h| h.as_ref() == Some(&a_id)).count(),
        shared.iter().filter(|h| h.as_ref() == Some(&b_id)).count()
    );

    // Let every watcher reach IDLE (first sight marks the mailbox end).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let deliver_all = async |round: &str| {
        for address in by_account.values() {
            let mail = format!(
                "From: x@example.net\r\nSubject: {round}\r\nMessage-ID: <{}@x>\r\n\r\nbody\r\n",
                unique(round)
            );
            dovecot.deliver(address, mail.as_bytes()).await.unwrap();
        }
    };
    let expect_once_each = async |events: &mut TenantEvents, round: &str| {
        let mut seen: HashMap<String, usize> = HashMap::new();
        while seen.len() < ACCOUNTS {
            let event = events.next().await.unwrap();
            assert_eq!(event.summary.as_ref().unwrap().subject, round);
            *seen.entry(event.account_id).or_default() += 1;
        }
        let extra = events.next_within(Duration::from_secs(3)).await.unwrap();
        assert!(
            extra.is_none(),
            "{round}: an account announced twice: {extra:?}"
        );
        assert!(seen.values().all(|n| *n == 1), "{round}: {seen:?}");
    };
    deliver_all("shared").await;
    expect_once_each(&mut events, "shared").await;

    // A dies without giving anything back; mail keeps arriving meanwhile.
    let killed = Instant::now();
    a.kill();
    deliver_all("after the crash").await;
    holders_until(&view, &accounts, "the survivor takes everything", |h| {
        h.iter().all(|h| h.as_ref() == Some(&b_id))
    })
    .await;
    println!("takeover after {:?} (lease 2 s)", killed.elapsed());
    expect_once_each(&mut events, "after the crash").await;

    b.kill();
    binding.stop().await.unwrap();
}
