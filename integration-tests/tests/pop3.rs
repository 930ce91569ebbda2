//! POP3 polling against a real Dovecot: every delivered mail announced
//! exactly once, across restarts and failed publishes.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::sync::Arc;
use std::time::Duration;

use pushmail_common::blob::{BlobStore, LocalBlobStore};
use pushmail_common::bus::{EventBus, SubscribeOptions};
use pushmail_common::redact::Secret;
use pushmail_ingest::arrival::Announcer;
use pushmail_ingest::checkpoints::{Checkpoints, MemoryCheckpoints};
use pushmail_ingest::mail::Limits;
use pushmail_ingest::marks::{Pop3Marks, RedisMarks};
use pushmail_ingest::pop3::{MailAccount, PollError, PollWith, open, poll_once};
use pushmail_ingest::tls::{Security, Tls};
use pushmail_integration_tests::dovecot::Dovecot;
use pushmail_integration_tests::{memory_bus, redis_config};
use pushmail_proto::topics::MAIL_ARRIVED;

fn mail(n: usize) -> Vec<u8> {
    format!("From: a@example.net\r\nTo: pop@example.net\r\nSubject: mail {n}\r\nMessage-ID: <pop-{n}-{}@example.net>\r\n\r\nbody {n}\r\n", uuid::Uuid::now_v7())
        .into_bytes()
}

#[tokio::test]
async fn every_mail_is_announced_once_across_restarts_and_failures() {
    let dovecot = Dovecot::start(&["pop@example.net"]).await.expect("dovecot");
    let user = &dovecot.users[0];
    let account = MailAccount {
        tenant: "tenant-1".into(),
        account: format!("account-{}", uuid::Uuid::now_v7()),
        host: "127.0.0.1".into(),
        port: dovecot.pop3.port(),
        security: Security::None,
        username: user.address.clone(),
        password: Secret::new(user.password.clone()),
        folders: Vec::new(),
    };
    let config = redis_config();
    let marks: Arc<dyn Pop3Marks> = Arc::new(RedisMarks::new(
        pushmail_common::redis::connect(&config).await.unwrap(),
        &config.key_prefix,
    ));
    let bus: Arc<dyn EventBus> = memory_bus(1_000);
    bus.ensure_topic(MAIL_ARRIVED.name(), 3).await.unwrap();
    let mut events = bus
        .subscribe(SubscribeOptions {
            group: "test".into(),
            topics: vec![MAIL_ARRIVED.name().into()],
        })
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let blobs: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::new(dir.path()));
    let announcer = Announcer::new(bus.clone(), blobs, Limits::default());
    let checkpoints: Arc<dyn Checkpoints> = Arc::new(MemoryCheckpoints::default());
    let tls = Tls::new(&[]).unwrap().with_egress(
        pushmail_common::egress::EgressConfig::loopback()
            .policy()
            .unwrap(),
    );
    let poll = |announcer: Announcer| {
        let (account, marks, tls, checkpoints) = (
            account.clone(),
            marks.clone(),
            tls.clone(),
            checkpoints.clone(),
        );
        async move {
            poll_once(
                &account,
                PollWith {
                    tls: &tls,
                    marks: &*marks,
                    checkpoints: &*checkpoints,
                    announcer: &announcer,
                    max_message_bytes: 1 << 20,
                    timeout: Duration::from_secs(5),
                    backfill: 0,
                },
            )
            .await
        }
    };

    // The first poll takes the (empty) mailbox as the baseline.
    assert!(poll(announcer.clone()).await.unwrap().baselined);
    for n in 0..2 {
        dovecot.deliver(&user.address, &mail(n)).await.unwrap();
    }
    assert_eq!(poll(announcer.clone()).await.unwrap().announced, 2);
    assert_eq!(
        poll(announcer.clone()).await.unwrap().announced,
        0,
        "nothing twice"
    );

    // A publish that fails leaves the mail unmarked; the next poll gets it.
    dovecot.deliver(&user.address, &mail(2)).await.unwrap();
    let broken_blobs: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::new(dir.path().join("file")));
    std::fs::write(dir.path().join("file"), b"not a directory").unwrap();
    let failing = Announcer::new(bus.clone(), broken_blobs, Limits::default());
    assert!(matches!(poll(failing).await, Err(PollError::Announce(_))));
    // A restarted poller (new announcer, same marks) picks up exactly that one.
    let restarted = Announcer::new(
        bus.clone(),
        Arc::new(LocalBlobStore::new(dir.path().join("blobs"))),
        Limits::default(),
    );
    let report = poll(restarted.clone()).await.unwrap();
    assert_eq!((report.announced, report.on_server), (1, 3));
    assert_eq!(poll(restarted).await.unwrap().announced, 0);

    let mut subjects = Vec::new();
    for _ in 0..3 {
        let record = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
            .unwrap();
        let event: pushmail_proto::events::v1::MailArrived =
            pushmail_common::bus::decode(MAIL_ARRIVED, &record).unwrap();
        assert!(
            event.idempotency_key.starts_with("mid:"),
            "{}",
            event.idempotency_key
        );
        subjects.push(event.summary.unwrap().subject);
    }
    subjects.sort();
    assert_eq!(subjects, ["mail 0", "mail 1", "mail 2"]);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), events.next())
            .await
            .is_err(),
        "exactly three events"
    );

    // A wrong password is a clear refusal.
    let wrong = MailAccount {
        password: Secret::new("nope"),
        ..account.clone()
    };
    let err = poll_once(
        &wrong,
        PollWith {
            tls: &tls,
            marks: &*marks,
            checkpoints: &*checkpoints,
            announcer: &announcer,
            max_message_bytes: 1 << 20,
            timeout: Duration::from_secs(5),
            backfill: 0,
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("PASS"), "{err}");
}

#[tokio::test]
async fn pop3_over_implicit_tls_and_stls_checks_the_certificate() {
    let dovecot = Dovecot::start_with_tls(&["tls@example.net"])
        .await
        .expect("dovecot");
    let user = &dovecot.users[0];
    dovecot.deliver(&user.address, &mail(7)).await.unwrap();
    let trusted = Tls::new(&[dovecot.certificate.clone().unwrap().into()])
        .unwrap()
        .with_egress(
            pushmail_common::egress::EgressConfig::loopback()
                .policy()
                .unwrap(),
        );
    let account = |port: u16, security| MailAccount {
        tenant: "t".into(),
        account: format!("account-{}", uuid::Uuid::now_v7()),
        host: "localhost".into(),
        port,
        security,
        username: user.address.clone(),
        password: Secret::new(user.password.clone()),
        folders: Vec::new(),
    };
    for (port, security) in [
        (dovecot.pop3s.unwrap().port(), Security::Implicit),
        (dovecot.pop3.port(), Security::StartTls),
    ] {
        let mut pop3 = open(&account(port, security), &trusted, Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("{security:?}: {e}"));
        pop3.login(&user.address, &user.password).await.unwrap();
        assert_eq!(pop3.uidl().await.unwrap().len(), 1, "{security:?}");
        pop3.quit().await.unwrap();
    }
    // A certificate nobody vouches for is refused before any password is sent.
    let untrusting = Tls::new(&[]).unwrap().with_egress(
        pushmail_common::egress::EgressConfig::loopback()
            .policy()
            .unwrap(),
    );
    let refused = open(
        &account(dovecot.pop3s.unwrap().port(), Security::Implicit),
        &untrusting,
        Duration::from_secs(5),
    )
    .await;
    assert!(refused.is_err());
    let refused = open(
        &account(dovecot.pop3.port(), Security::StartTls),
        &untrusting,
        Duration::from_secs(5),
    )
    .await;
    assert!(refused.is_err());
}

#[tokio::test]
async fn an_oversized_mail_is_announced_from_its_headers_and_blocks_nothing() {
    let dovecot = Dovecot::start(&["big@example.net"]).await.expect("dovecot");
    let user = &dovecot.users[0];
    let big = format!(
        "From: a@example.net\r\nSubject: the big one\r\nMessage-ID: <big-{}@example.net>\r\n\r\n{}\r\n",
        uuid::Uuid::now_v7(),
        "x".repeat(4_000)
    );
    let account = MailAccount {
        tenant: "t".into(),
        account: format!("account-{}", uuid::Uuid::now_v7()),
        host: "127.0.0.1".into(),
        port: dovecot.pop3.port(),
        security: Security::None,
        username: user.address.clone(),
        password: Secret::new(user.password.clone()),
        folders: Vec::new(),
    };
    let marks = pushmail_ingest::marks::MemoryMarks::default();
    let bus: Arc<dyn EventBus> = memory_bus(1_000);
    bus.ensure_topic(MAIL_ARRIVED.name(), 3).await.unwrap();
    let mut events = bus
        .subscribe(SubscribeOptions {
            group: "test".into(),
            topics: vec![MAIL_ARRIVED.name().into()],
        })
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let announcer = Announcer::new(
        bus.clone(),
        Arc::new(LocalBlobStore::new(dir.path())),
        Limits::default(),
    );
    let checkpoints: Arc<dyn Checkpoints> = Arc::new(MemoryCheckpoints::default());
    let tls = Tls::new(&[]).unwrap().with_egress(
        pushmail_common::egress::EgressConfig::loopback()
            .policy()
            .unwrap(),
    );
    let baseline = poll_once(
        &account,
        PollWith {
            tls: &tls,
            marks: &marks,
            checkpoints: &*checkpoints,
            announcer: &announcer,
            max_message_bytes: 1_024,
            timeout: Duration::from_secs(5),
            backfill: 0,
        },
    )
    .await
    .unwrap();
    assert!(baseline.baselined);
    dovecot
        .deliver(&user.address, big.as_bytes())
        .await
        .unwrap();
    dovecot.deliver(&user.address, &mail(1)).await.unwrap();
    // A 1 KiB fetch limit: the 4 KB mail cannot be fetched whole.
    let report = poll_once(
        &account,
        PollWith {
            tls: &tls,
            marks: &marks,
            checkpoints: &*checkpoints,
            announcer: &announcer,
            max_message_bytes: 1_024,
            timeout: Duration::from_secs(5),
            backfill: 0,
        },
    )
    .await
    .unwrap();
    assert_eq!((report.announced, report.truncated), (2, 1), "{report:?}");
    let mut seen = Vec::new();
    for _ in 0..2 {
        let record = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
            .unwrap();
        let event: pushmail_proto::events::v1::MailArrived =
            pushmail_common::bus::decode(MAIL_ARRIVED, &record).unwrap();
        seen.push((event.summary.unwrap().subject, event.size_bytes));
    }
    seen.sort();
    assert_eq!(seen[0].0, "mail 1");
    assert_eq!(seen[1].0, "the big one");
    assert!(
        seen[1].1 > 4_000,
        "the real size, not the headers': {seen:?}"
    );
    assert_eq!(
        poll_once(
            &account,
            PollWith {
                tls: &tls,
                marks: &marks,
                checkpoints: &*checkpoints,
                announcer: &announcer,
                max_message_bytes: 1_024,
                timeout: Duration::from_secs(5),
                backfill: 0,
            },
        )
        .await
        .unwrap()
        .announced,
        0
    );
}

/// ingest checks the address it actually connects to: a mailbox host that
/// resolves to loopback (after the account was accepted, or by a name that
/// changed) is not connected to unless the operator allows the network.
#[tokio::test]
async fn a_mailbox_on_an_internal_address_is_not_connected_to_unless_allowed() {
    let dovecot = Dovecot::start(&["ssrf@example.net"])
        .await
        .expect("dovecot");
    let user = &dovecot.users[0];
    let account = |host: &str| MailAccount {
        tenant: "tenant-1".into(),
        account: format!("account-{}", uuid::Uuid::now_v7()),
        host: host.into(),
        port: dovecot.pop3.port(),
        security: Security::None,
        username: user.address.clone(),
        password: Secret::new(user.password.clone()),
        folders: Vec::new(),
    };
    let production = Tls::new(&[]).unwrap();
    for host in ["127.0.0.1", "localhost", "::ffff:127.0.0.1"] {
        let refused = open(&account(host), &production, Duration::from_secs(5))
            .await
            .err()
            .unwrap_or_else(|| panic!("{host} was connected to"));
        let text = refused.to_string();
        assert!(
            text.contains("loopback") && text.contains("accounts.allowed_networks"),
            "{host}: {text}"
        );
    }
    let allowed = production.clone().with_egress(
        pushmail_common::egress::EgressConfig::loopback()
            .policy()
            .unwrap(),
    );
    open(&account("127.0.0.1"), &allowed, Duration::from_secs(5))
        .await
        .expect("the operator allows loopback");
}

/// Marks lost (a Redis without persistence restarted, a flush): the
/// mailbox as it is is the baseline. Its 50 mails are not announced again
/// (no pushes, no SMS wake-ups); the next new mail is, once.
#[tokio::test]
async fn a_mailbox_whose_marks_are_lost_is_baselined_not_announced_again() {
    let dovecot = Dovecot::start(&["lost@example.net"])
        .await
        .expect("dovecot");
    let user = &dovecot.users[0];
    let account = MailAccount {
        tenant: "t".into(),
        account: format!("account-{}", uuid::Uuid::now_v7()),
        host: "127.0.0.1".into(),
        port: dovecot.pop3.port(),
        security: Security::None,
        username: user.address.clone(),
        password: Secret::new(user.password.clone()),
        folders: Vec::new(),
    };
    let config = redis_config();
    let redis = pushmail_common::redis::connect(&config).await.unwrap();
    let marks = RedisMarks::new(redis.clone(), &config.key_prefix);
    let bus: Arc<dyn EventBus> = memory_bus(1_000);
    bus.ensure_topic(MAIL_ARRIVED.name(), 3).await.unwrap();
    let mut events = bus
        .subscribe(SubscribeOptions {
            group: "test".into(),
            topics: vec![MAIL_ARRIVED.name().into()],
        })
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let announcer = Announcer::new(
        bus.clone(),
        Arc::new(LocalBlobStore::new(dir.path())),
        Limits::default(),
    );
    let checkpoints: Arc<dyn Checkpoints> = Arc::new(MemoryCheckpoints::default());
    let tls = Tls::new(&[]).unwrap().with_egress(
        pushmail_common::egress::EgressConfig::loopback()
            .policy()
            .unwrap(),
    );
    let poll = || {
        poll_once(
            &account,
            PollWith {
                tls: &tls,
                marks: &marks,
                checkpoints: &*checkpoints,
                announcer: &announcer,
                max_message_bytes: 1 << 20,
                timeout: Duration::from_secs(5),
                backfill: 0,
            },
        )
    };

    assert!(poll().await.unwrap().baselined, "first sight");
    for n in 0..50 {
        dovecot.deliver(&user.address, &mail(n)).await.unwrap();
    }
    assert_eq!(poll().await.unwrap().announced, 50);
    for _ in 0..50 {
        tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
            .unwrap();
    }

    // The marks go (every key of this test's prefix, as a flush would).
    let mut connection = redis.clone();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", config.key_prefix))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut connection)
        .await
        .unwrap();

    let after = poll().await.unwrap();
    assert!(after.baselined && after.synced, "{after:?}");
    assert_eq!((after.announced, after.on_server), (0, 50));
    dovecot.deliver(&user.address, &mail(50)).await.unwrap();
    assert_eq!(poll().await.unwrap().announced, 1);
    let mut next = async || {
        let record = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
            .unwrap();
        pushmail_common::bus::decode(MAIL_ARRIVED, &record).unwrap()
    };
    // The account was polled before (it has a checkpoint): its devices are
    // asked to sync, since anything that came while the marks were gone
    // is in the new baseline.
    let sync: pushmail_proto::events::v1::MailArrived = next().await;
    assert!(sync.mailbox_sync && sync.summary.is_none(), "{sync:?}");
    let event: pushmail_proto::events::v1::MailArrived = next().await;
    // The one after the 50 seen before: none of those came again first.
    assert_eq!(event.summary.unwrap().subject, "mail 50");
}

/// The mail a POP3 mailbox held before the platform first polled it: the
/// newest few are filed for the phone to read (`backfill`), none pushed;
/// after lost marks the same mail comes with the same keys, so the store
/// files nothing twice.
#[tokio::test]
async fn earlier_mail_is_backfilled_without_a_push() {
    let dovecot = Dovecot::start(&["old@example.net"]).await.expect("dovecot");
    let user = &dovecot.users[0];
    for n in 0..3 {
        dovecot.deliver(&user.address, &mail(n)).await.unwrap();
    }
    let account = MailAccount {
        tenant: "t".into(),
        account: format!("account-{}", uuid::Uuid::now_v7()),
        host: "127.0.0.1".into(),
        port: dovecot.pop3.port(),
        security: Security::None,
        username: user.address.clone(),
        password: Secret::new(user.password.clone()),
        folders: Vec::new(),
    };
    let bus: Arc<dyn EventBus> = memory_bus(1_000);
    bus.ensure_topic(MAIL_ARRIVED.name(), 1).await.unwrap();
    let mut events = bus
        .subscribe(SubscribeOptions {
            group: "test".into(),
            topics: vec![MAIL_ARRIVED.name().into()],
        })
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let announcer = Announcer::new(
        bus.clone(),
        Arc::new(LocalBlobStore::new(dir.path())),
        Limits::default(),
    );
    let checkpoints = MemoryCheckpoints::default();
    let tls = Tls::new(&[]).unwrap().with_egress(
        pushmail_common::egress::EgressConfig::loopback()
            .policy()
            .unwrap(),
    );
    let poll = async |marks: &pushmail_ingest::marks::MemoryMarks| {
        poll_once(
            &account,
            PollWith {
                tls: &tls,
                marks,
                checkpoints: &checkpoints,
                announcer: &announcer,
                max_message_bytes: 1 << 20,
                timeout: Duration::from_secs(5),
                backfill: 2,
            },
        )
        .await
        .unwrap()
    };
    let mut next = async || -> pushmail_proto::events::v1::MailArrived {
        let record = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
            .unwrap();
        pushmail_common::bus::decode(MAIL_ARRIVED, &record).unwrap()
    };

    let marks = pushmail_ingest::marks::MemoryMarks::default();
    let first = poll(&marks).await;
    assert!(first.baselined && !first.synced, "{first:?}");
    assert_eq!((first.backfilled, first.announced), (2, 0), "{first:?}");
    let mut filed = Vec::new();
    for _ in 0..2 {
        let event = next().await;
        assert!(event.backfill && !event.mailbox_sync, "{event:?}");
        filed.push((event.summary.unwrap().subject, event.idempotency_key));
    }
    assert_eq!(
        filed.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        ["mail 1", "mail 2"],
        "the newest two, oldest of them first"
    );
    // New mail after the baseline is announced as ever, once.
    dovecot.deliver(&user.address, &mail(3)).await.unwrap();
    assert_eq!(poll(&marks).await.announced, 1);
    let new = next().await;
    assert!(!new.backfill, "{new:?}");
    assert_eq!(new.summary.unwrap().subject, "mail 3");
    assert_eq!(poll(&marks).await.backfilled, 0, "a baseline once");

    // The marks lost: the newest two again under the keys they had, so
    // the store files nothing twice, then a sync for the phones (after
    // the filing, so what they sync includes it).
    let lost = pushmail_ingest::marks::MemoryMarks::default();
    let again = poll(&lost).await;
    assert!(again.synced && again.backfilled == 2, "{again:?}");
    let refiled: Vec<_> = [next().await, next().await]
        .into_iter()
        .map(|e| (e.summary.unwrap().subject, e.idempotency_key))
        .collect();
    assert_eq!(refiled[0], filed[1], "mail 2 under its first key");
    assert_eq!(refiled[1].0, "mail 3");
    assert_eq!(refiled[1].1, new.idempotency_key);
    assert!(next().await.mailbox_sync);
}
