//! IMAP IDLE watching end to end: an account created through binding's
//! API, mail delivered to a real Dovecot, `MailArrived` read from the real
//! broker. The backlog is not pushed; each new mail is announced once,
//! across an ingest restart and across a UIDVALIDITY change.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::time::Duration;

use pushmail_common::bus::{EventBus as _, SubscribeOptions};
use pushmail_ingest::marks::{ImapMarks as _, RedisMarks};
use pushmail_integration_tests::dovecot::{Dovecot, ImapProfile};
use pushmail_integration_tests::nodes::{BindingNode, IngestNode, TenantEvents, ingest_config};
use pushmail_integration_tests::unique;
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::events::v1::{IngestSource, MailArrived};
use pushmail_proto::topics::MAIL_ARRIVED;

/// The next event's subject.
async fn subject(events: &mut TenantEvents) -> String {
    events.next().await.unwrap().summary.unwrap().subject
}

async fn quiet(events: &mut TenantEvents) {
    let extra = events.next_within(Duration::from_secs(3)).await.unwrap();
    assert!(extra.is_none(), "exactly one event per mail: {extra:?}");
}

fn mail(n: u32, subject: &str) -> Vec<u8> {
    format!(
        "From: x@example.net\r\nSubject: {subject}\r\nMessage-ID: <imap-{n}-{}@x>\r\n\r\nbody {n}\r\n",
        unique("m")
    )
    .into_bytes()
}

#[tokio::test]
async fn imap_mail_is_announced_once_across_restarts_and_a_uidvalidity_change() {
    let dovecot = Dovecot::start(&["idle@example.net"])
        .await
        .expect("dovecot");
    let user = dovecot.users[0].clone();
    let mut binding = BindingNode::start().await.unwrap();
    let tenant = binding.tenant().await.unwrap();
    let account = binding
        .mailbox_account(
            &tenant,
            &user,
            dovecot.imap.port(),
            pb::AccountKind::ExternalImap,
        )
        .await
        .unwrap();
    let mut events = TenantEvents::new(&tenant.tenant_id).await.unwrap();

    // Mail already there before the account is watched: not pushed.
    dovecot
        .deliver(&user.address, &mail(0, "backlog"))
        .await
        .unwrap();

    let blobs = tempfile::tempdir().unwrap();
    let mut config = ingest_config(binding.addr, blobs.path());
    config.imap.refresh_seconds = 1;
    let marks = RedisMarks::new(
        config
            .marks
            .connect(pushmail_common::redis::Durability::Cache)
            .await
            .unwrap()
            .unwrap(),
        &config.marks.redis.key_prefix,
    );
    let start = async || IngestNode::on_test_broker(config.clone()).await.unwrap();
    let ingest = start().await;
    // Wait for the watcher's first look (its mark), then deliver.
    let first_mark = loop {
        if let Some(mark) = marks.get(&account.account_id, "INBOX").await.unwrap() {
            break mark;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(first_mark.last_uid, 1, "the backlog is behind the mark");
    // Give the watcher a moment to enter IDLE, so the next mail wakes it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    dovecot
        .deliver(&user.address, "From: x@example.net\r\nSubject: =?GB2312?B?vL62yLGouOajusfryfPUxA==?=\r\nMessage-ID: <imap-cn@x>\r\n\r\nhi\r\n".as_bytes())
        .await
        .unwrap();
    let event = events.next().await.unwrap();
    assert_eq!(event.account_id, account.account_id);
    assert_eq!(event.source(), IngestSource::Imap);
    assert_eq!(event.uid, 2);
    assert_eq!(event.uid_validity, first_mark.uid_validity);
    assert_eq!(event.summary.unwrap().subject, "季度报告：请审阅");
    assert_eq!(
        event.idempotency_key,
        format!(
            "imap:{}:INBOX:{}:2",
            account.account_id, first_mark.uid_validity
        )
    );
    dovecot
        .deliver(&user.address, &mail(3, "third"))
        .await
        .unwrap();
    assert_eq!(subject(&mut events).await, "third");

    // Restart ingest with a mail delivered while it was down.
    ingest.stop().await.unwrap();
    dovecot
        .deliver(&user.address, &mail(4, "while down"))
        .await
        .unwrap();
    let ingest = start().await;
    assert_eq!(subject(&mut events).await, "while down");
    quiet(&mut events).await;

    // The server renumbers the mailbox while ingest is down, and a mail
    // arrives: only that one is announced.
    ingest.stop().await.unwrap();
    dovecot
        .change_uid_validity(&user.address, first_mark.uid_validity + 1_000)
        .await
        .unwrap();
    dovecot
        .deliver(&user.address, &mail(5, "after renumbering"))
        .await
        .unwrap();
    let ingest = start().await;
    let event = events.next().await.unwrap();
    assert_eq!(event.summary.unwrap().subject, "after renumbering");
    assert_eq!(event.uid_validity, first_mark.uid_validity + 1_000);
    quiet(&mut events).await;
    // And the watch goes on under the new UIDVALIDITY.
    dovecot
        .deliver(&user.address, &mail(6, "sixth"))
        .await
        .unwrap();
    assert_eq!(subject(&mut events).await, "sixth");
    quiet(&mut events).await;

    // Redis loses the marks while ingest is down and a mail arrives: the
    // watcher resumes from binding's checkpoint, so that mail is neither
    // skipped (as a mailbox first seen would) nor are the earlier ones
    // announced again.
    ingest.stop().await.unwrap();
    let forgotten = forget_marks(&config, &account.account_id).await;
    assert_eq!(forgotten, 2, "the mark and the Message-IDs were there");
    dovecot
        .deliver(&user.address, &mail(7, "while the marks were gone"))
        .await
        .unwrap();
    let ingest = start().await;
    assert_eq!(subject(&mut events).await, "while the marks were gone");
    quiet(&mut events).await;
    let restored = marks.get(&account.account_id, "INBOX").await.unwrap();
    assert_eq!(
        restored.map(|m| m.uid_validity),
        Some(first_mark.uid_validity + 1_000),
        "the mark is back"
    );

    ingest.stop().await.unwrap();
    binding.stop().await.unwrap();
}

/// Deletes every ingest mark key of `account` (what a Redis without
/// persistence loses on restart); returns how many there were.
async fn forget_marks(config: &pushmail_ingest::Config, account: &str) -> usize {
    let mut redis = pushmail_common::redis::connect(&config.marks.redis)
        .await
        .unwrap();
    let prefix = &config.marks.redis.key_prefix;
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}ingest:imap:{account}:*"))
        .query_async(&mut redis)
        .await
        .unwrap();
    keys.push(format!("{prefix}ingest:pop3:{account}"));
    let deleted: usize = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut redis)
        .await
        .unwrap();
    deleted
}

fn tls_account(dovecot: &Dovecot, password: &str) -> pushmail_ingest::accounts::MailAccount {
    pushmail_ingest::accounts::MailAccount {
        tenant: "t".into(),
        account: unique("account"),
        host: "localhost".into(),
        port: dovecot.imap.port(),
        security: pushmail_ingest::tls::Security::StartTls,
        username: dovecot.users[0].address.clone(),
        password: pushmail_common::redact::Secret::new(password.to_owned()),
        folders: Vec::new(),
    }
}

#[tokio::test]
async fn imap_over_starttls_checks_the_certificate_and_the_password_and_announces_big_mail_by_header()
 {
    use std::sync::Arc;

    use pushmail_common::blob::LocalBlobStore;
    use pushmail_common::bus::{MemoryBus, MemoryBusConfig};
    use pushmail_ingest::arrival::Announcer;
    use pushmail_ingest::imap::{Watch, WatchSettings, open};
    use pushmail_ingest::marks::MemoryMarks;
    use pushmail_ingest::tls::Tls;

    let dovecot = Dovecot::start_with_tls(&["tls-imap@example.net"])
        .await
        .expect("dovecot");
    let password = dovecot.users[0].password.clone();
    let trusted = Tls::new(&[dovecot.certificate.clone().unwrap().into()])
        .unwrap()
        .with_egress(
            pushmail_common::egress::EgressConfig::loopback()
                .policy()
                .unwrap(),
        );
    let timeout = Duration::from_secs(5);

    let untrusting = Tls::new(&[]).unwrap().with_egress(
        pushmail_common::egress::EgressConfig::loopback()
            .policy()
            .unwrap(),
    );
    assert!(
        open(&tls_account(&dovecot, &password), &untrusting, timeout)
            .await
            .is_err(),
        "an unknown certificate is refused before the password is sent"
    );
    let wrong = open(
        &tls_account(&dovecot, "not-the-password"),
        &trusted,
        timeout,
    )
    .await;
    assert!(
        matches!(wrong, Err(pushmail_ingest::imap::ImapError::Refused { .. })),
        "wrong password"
    );

    let account = tls_account(&dovecot, &password);
    let mut imap = open(&account, &trusted, timeout).await.expect("STARTTLS");
    let blobs = tempfile::tempdir().unwrap();
    let bus = Arc::new(MemoryBus::new(&MemoryBusConfig::default()));
    bus.ensure_topic(MAIL_ARRIVED.name(), 1).await.unwrap();
    let mut events = bus
        .subscribe(SubscribeOptions {
            group: "g".into(),
            topics: vec![MAIL_ARRIVED.name().into()],
        })
        .await
        .unwrap();
    let announcer = Announcer::new(
        bus.clone(),
        Arc::new(LocalBlobStore::new(blobs.path())),
        pushmail_ingest::mail::Limits::default(),
    );
    let marks = MemoryMarks::default();
    let checkpoints = pushmail_ingest::checkpoints::MemoryCheckpoints::default();
    let watch = Watch {
        account: &account,
        mailbox: "INBOX",
        marks: &marks,
        checkpoints: &checkpoints,
        announcer: &announcer,
        settings: WatchSettings {
            timeout,
            idle: Duration::from_secs(60),
            noop: Duration::from_secs(60),
            max_message_bytes: 64 * 1024,
            folder_poll: Duration::from_secs(120),
        },
    };
    assert_eq!(
        watch.catch_up(&mut imap).await.unwrap().announced,
        0,
        "baseline"
    );
    let big = format!(
        "From: a@example.net\r\nSubject: the big one\r\nMessage-ID: <{}@x>\r\n\r\n{}\r\n",
        unique("big"),
        "x".repeat(100 * 1024)
    );
    let address = dovecot.users[0].address.clone();
    dovecot.deliver(&address, big.as_bytes()).await.unwrap();
    dovecot.deliver(&address, &mail(1, "small")).await.unwrap();
    let report = watch.catch_up(&mut imap).await.unwrap();
    assert_eq!(report.announced, 2);
    let first: MailArrived =
        pushmail_common::bus::decode(MAIL_ARRIVED, &events.next().await.unwrap()).unwrap();
    assert_eq!(first.summary.unwrap().subject, "the big one");
    assert!(
        first.size_bytes > 100 * 1024,
        "its real size: {}",
        first.size_bytes
    );
    let second: MailArrived =
        pushmail_common::bus::decode(MAIL_ARRIVED, &events.next().await.unwrap()).unwrap();
    assert_eq!(second.summary.unwrap().subject, "small");
    assert_eq!(
        watch.catch_up(&mut imap).await.unwrap().announced,
        0,
        "nothing twice"
    );
    imap.logout().await.unwrap();
}

/// Folders the user chose besides INBOX (set with `UpdateAccount`), on a
/// server without NOTIFY: asked with STATUS every 5 s; new mail in one is
/// announced under its name, once; a chosen folder the server does not
/// have is skipped without stopping INBOX.
#[tokio::test]
async fn new_mail_in_a_chosen_folder_is_announced_under_its_name() {
    let dovecot = Dovecot::start_provider(&["folders@example.net"], ImapProfile::Plain)
        .await
        .expect("dovecot");
    chosen_folders(&dovecot, &["Work", "Gone"], 5).await;
}

/// The same where the server has NOTIFY (Dovecot as shipped): the folder
/// is polled only every 10 minutes, so the mail is announced within the
/// test's bound only because the server told of it.
#[tokio::test]
async fn a_server_with_notify_tells_of_a_chosen_folder_without_polling() {
    let dovecot = Dovecot::start(&["notify@example.net"])
        .await
        .expect("dovecot");
    chosen_folders(&dovecot, &["Work"], 600).await;
}

async fn chosen_folders(dovecot: &Dovecot, chosen: &[&str], poll_seconds: u64) {
    let user = dovecot.users[0].clone();
    dovecot
        .imap_peer(&user, &serde_json::json!([["create", "Work"]]))
        .await
        .unwrap();
    let mut binding = BindingNode::start().await.unwrap();
    let tenant = binding.tenant().await.unwrap();
    let account = binding
        .mailbox_account(
            &tenant,
            &user,
            dovecot.imap.port(),
            pb::AccountKind::ExternalImap,
        )
        .await
        .unwrap();
    let names: Vec<String> = chosen.iter().map(|s| (*s).to_owned()).collect();
    let updated = binding
        .admin
        .update_account(pushmail_integration_tests::authed(
            &tenant.api_key,
            pb::UpdateAccountRequest {
                tenant_id: tenant.tenant_id.clone(),
                account_id: account.account_id.clone(),
                watched_folders: Some(pb::WatchedFolders {
                    names: names.clone(),
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.watched_folders, names);
    let mut events = TenantEvents::new(&tenant.tenant_id).await.unwrap();
    // Mail already in Work before it is watched: not pushed.
    let append = |subject: &str, n| {
        let raw = String::from_utf8(mail(n, subject)).unwrap();
        serde_json::json!([["append", "Work", "", raw]])
    };
    dovecot
        .imap_peer(&user, &append("work backlog", 0))
        .await
        .unwrap();

    let blobs = tempfile::tempdir().unwrap();
    let mut config = ingest_config(binding.addr, blobs.path());
    config.imap.folder_poll_seconds = poll_seconds;
    let marks = RedisMarks::new(
        config
            .marks
            .connect(pushmail_common::redis::Durability::Cache)
            .await
            .unwrap()
            .unwrap(),
        &config.marks.redis.key_prefix,
    );
    let ingest = IngestNode::on_test_broker(config.clone()).await.unwrap();
    let work_mark = loop {
        if let Some(mark) = marks.get(&account.account_id, "Work").await.unwrap() {
            break mark;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(work_mark.last_uid, 1, "Work's backlog is behind its mark");
    // Give the watcher a moment to be idle on INBOX.
    tokio::time::sleep(Duration::from_millis(500)).await;

    dovecot
        .imap_peer(&user, &append("filed by a rule", 1))
        .await
        .unwrap();
    let event = events.next().await.unwrap();
    assert_eq!(event.mailbox, "Work");
    assert_eq!(event.uid, 2);
    assert_eq!(event.summary.unwrap().subject, "filed by a rule");
    assert_eq!(
        event.idempotency_key,
        format!(
            "imap:{}:Work:{}:2",
            account.account_id, work_mark.uid_validity
        )
    );
    // INBOX goes on as ever.
    dovecot
        .deliver(&user.address, &mail(2, "to the inbox"))
        .await
        .unwrap();
    let inbox = events.next().await.unwrap();
    assert_eq!(inbox.mailbox, "INBOX");
    assert_eq!(inbox.summary.unwrap().subject, "to the inbox");
    quiet(&mut events).await;
    ingest.stop().await.unwrap();
    binding.stop().await.unwrap();
}
