//! The mailbox service's two heavy paths against Dovecot and Postfix, each
//! next to a baseline run in the same process run on the same servers:
//!
//! - folder sync of a 10,000-message INBOX (Dovecot with CONDSTORE and
//!   QRESYNC): ours from an empty token in windows of 512, as a phone pages
//!   it, against Python's `imaplib` fetching the same items for every
//!   message in one `UID FETCH 1:*`; then ours from the last token after
//!   another client changed 100 flags, expunged 10 and 10 arrived, against
//!   `imaplib` fetching every message's flags (what a client without a
//!   state must do to learn the same);
//! - the same sync from the platform's own store (forwarded, webhook and
//!   POP3 accounts: a PostgreSQL index) holding the same messages, against
//!   ours over IMAP;
//! - sending: 100 messages one after another through Postfix's submission
//!   port (STARTTLS, AUTH PLAIN checked by Dovecot), ours against `swaks`,
//!   then ours 8 at a time.
//!
//! Each timing is the median of three. Writes a Markdown report to the
//! path given as the first argument. Run by `make bench`.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark that fails should stop loudly

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use pushmail_common::egress::EgressConfig;
use pushmail_common::redact::Secret;
use pushmail_common::upstream::{Security, Tls};
use pushmail_integration_tests::dovecot::{Dovecot, ImapProfile};
use pushmail_integration_tests::mailbox::sending_provider;
use pushmail_integration_tests::measure::median;
use pushmail_mailbox::backend::Mailbox as _;
use pushmail_mailbox::domain::FolderId;
use pushmail_mailbox::imap::{ImapAccount, ImapConnector};
use pushmail_mailbox::submit::{SubmissionAccount, Submitter};
use pushmail_mailbox::sync::{MemoryStates, Scope, Token, sync};

const ALICE: &str = "alice@example.net";
const BOB: &str = "bob@example.net";
const MESSAGES: usize = 10_000;
const WINDOW: usize = 512;
const SENDS: usize = 100;
const RUNS: usize = 3;

/// The items our summaries read, as `imaplib` asks for them.
const FETCH_ITEMS: &str = "(UID FLAGS RFC822.SIZE INTERNALDATE BODYSTRUCTURE \
                           BODY.PEEK[HEADER] BODY.PEEK[TEXT]<0.4096>)";

fn message(n: usize) -> String {
    format!(
        "From: Sender {n} <sender{n}@example.org>\r\nTo: {ALICE}\r\n\
         Subject: report number {n}\r\nMessage-ID: <bench-{n}@example.org>\r\n\
         Date: Mon, 7 Dec 2026 08:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n\
         {}\r\n",
        "The quarterly numbers are attached and summarised here. ".repeat(8)
    )
}

/// `count` messages straight into the maildir (Dovecot indexes them at the
/// next access), starting at number `from`.
fn fill(dovecot: &Dovecot, from: usize, count: usize) {
    dovecot
        .drop_into_inbox(
            ALICE,
            (from..from + count).map(|n| (format!("1765000000.bench{n}.localhost"), message(n))),
        )
        .unwrap();
}

fn imap(dovecot: &Dovecot) -> ImapAccount {
    ImapAccount {
        host: "127.0.0.1".to_owned(),
        port: dovecot.imap.port(),
        security: Security::None,
        username: ALICE.to_owned(),
        password: Secret::new(format!("pw-{ALICE}")),
    }
}

/// Ours: one connection, pages of `WINDOW` from `since` until done; the
/// seconds, the entries seen and the last token.
async fn ours(
    connector: &ImapConnector,
    account: &ImapAccount,
    states: &MemoryStates,
    since: Option<&Token>,
) -> (f64, usize, Token) {
    let started = Instant::now();
    let mut mailbox = connector.open(account).await.unwrap();
    let (entries, token) = pages(&mut mailbox, states, since).await;
    Box::new(mailbox).close().await;
    (started.elapsed().as_secs_f64(), entries, token)
}

/// Pages of `WINDOW` of INBOX from `since` until done, as a phone asks:
/// the entries seen and the last token.
async fn pages(
    mailbox: &mut dyn pushmail_mailbox::backend::Mailbox,
    states: &MemoryStates,
    since: Option<&Token>,
) -> (usize, Token) {
    let scope = Scope {
        tenant: "t".to_owned(),
        account: "a".to_owned(),
        folder: FolderId::new("INBOX"),
    };
    let mut token = since.cloned();
    let mut entries = 0;
    loop {
        let page = sync(mailbox, states, &scope, token.as_ref(), WINDOW)
            .await
            .unwrap();
        entries += page.added.len() + page.changed.len() + page.removed.len();
        token = Some(page.token);
        if !page.more {
            return (entries, token.unwrap());
        }
    }
}

async fn sync_rows(report: &mut String) -> (f64, f64) {
    let dovecot = Dovecot::start_provider(&[ALICE], ImapProfile::Modern)
        .await
        .unwrap();
    fill(&dovecot, 0, MESSAGES);
    // Dovecot indexes the new files at the first access: not part of
    // either measurement.
    let (_, listed) = imaplib(&dovecot, "(UID)");
    assert_eq!(listed, MESSAGES);
    let connector = ImapConnector::new(
        Tls::new(&[])
            .unwrap()
            .with_egress(EgressConfig::loopback().policy().unwrap()),
        Duration::from_secs(60),
    );
    let account = imap(&dovecot);
    let states = MemoryStates::new(64, Duration::from_secs(3_600));

    let mut theirs_full = Vec::new();
    let mut ours_full = Vec::new();
    let mut token = None;
    for _ in 0..RUNS {
        let (seconds, answers) = imaplib(&dovecot, FETCH_ITEMS);
        assert_eq!(answers, MESSAGES);
        theirs_full.push(seconds);
        let (seconds, entries, last) = ours(&connector, &account, &states, None).await;
        assert_eq!(entries, MESSAGES);
        ours_full.push(seconds);
        token = Some(last);
    }
    let token = token.unwrap();

    // Another client reads 100, deletes 10; 10 arrive.
    dovecot
        .imap_peer(
            &dovecot.users[0],
            &serde_json::json!([
                ["store", "INBOX", "1:100", "+FLAGS", "(\\Seen)"],
                ["expunge", "INBOX", "200:209"]
            ]),
        )
        .await
        .unwrap();
    fill(&dovecot, MESSAGES, 10);
    let _ = imaplib(&dovecot, "(UID)");
    let mut theirs_recent = Vec::new();
    let mut ours_recent = Vec::new();
    for _ in 0..RUNS {
        let (seconds, answers) = imaplib(&dovecot, "(UID FLAGS)");
        assert_eq!(answers, MESSAGES);
        theirs_recent.push(seconds);
        let (seconds, entries, _) = ours(&connector, &account, &states, Some(&token)).await;
        assert_eq!(entries, 120, "100 changed, 10 removed, 10 added");
        ours_recent.push(seconds);
    }
    let (full, base_full) = (median(ours_full), median(theirs_full));
    let (recent, base_recent) = (median(ours_recent), median(theirs_recent));
    writeln!(
        report,
        "| sync of {MESSAGES} messages from an empty token, windows of {WINDOW} (s) | {full:.3} | imaplib `UID FETCH 1:* {FETCH_ITEMS}` | {base_full:.3} | {:.2} | |",
        full / base_full
    )
    .unwrap();
    writeln!(
        report,
        "| sync from the last token: 100 flags changed, 10 expunged, 10 new (s) | {recent:.3} | imaplib `UID FETCH 1:* (UID FLAGS)` | {base_recent:.3} | {:.2} | |",
        recent / base_recent
    )
    .unwrap();
    (full, recent)
}

/// The platform's own store (PostgreSQL index) holding the same 10,000
/// messages, synced the same way; baseline: ours over IMAP (rows above).
async fn local_rows(report: &mut String, (imap_full, imap_recent): (f64, f64)) {
    use pushmail_mailbox::domain::{FlagUpdate, Flags, Uid};
    use pushmail_mailbox::local::{Arrival, Index, LocalMailbox, Owner, PgIndex};

    let database = pushmail_integration_tests::TestDatabase::create()
        .await
        .unwrap();
    let pool = sqlx::PgPool::connect(&database.url).await.unwrap();
    pushmail_mailbox::sync::PgStates::open(
        pool.clone(),
        pushmail_mailbox::sync::Retention {
            per_folder: 64,
            max_age: Duration::from_secs(3_600),
        },
    )
    .await
    .unwrap();
    let index: std::sync::Arc<dyn Index> = std::sync::Arc::new(PgIndex::new(pool.clone()));
    let owner = Owner {
        tenant: "t".to_owned(),
        account: "a".to_owned(),
    };
    let file = async |n: usize| {
        let raw = message(n);
        let arrival = Arrival::of_message(
            format!("bench-{n}"),
            format!("sha256:bench-{n}"),
            raw.as_bytes(),
            pushmail_common::clock::now_ms(),
            Flags::default(),
        );
        index.file(&owner, "INBOX", &arrival).await.unwrap();
    };
    for n in 0..MESSAGES {
        file(n).await;
    }
    let blobs = tempfile::tempdir().unwrap();
    let store: std::sync::Arc<dyn pushmail_common::blob::BlobStore> =
        std::sync::Arc::new(pushmail_common::blob::LocalBlobStore::new(blobs.path()));
    let states = MemoryStates::new(64, Duration::from_secs(3_600));
    let mut full = Vec::new();
    let mut token = None;
    for _ in 0..RUNS {
        let mut mailbox = LocalMailbox::new(index.clone(), store.clone(), owner.clone());
        let started = Instant::now();
        let (entries, last) = pages(&mut mailbox, &states, None).await;
        full.push(started.elapsed().as_secs_f64());
        assert_eq!(entries, MESSAGES);
        token = Some(last);
    }
    let token = token.unwrap();
    let (uid_validity, _) = index.listing(&owner, "INBOX").await.unwrap();
    let read: Vec<Uid> = (1..=100).map(Uid).collect();
    let seen = FlagUpdate {
        seen: Some(true),
        ..FlagUpdate::default()
    };
    index
        .set_flags(&owner, "INBOX", uid_validity, &read, seen)
        .await
        .unwrap();
    let gone: Vec<Uid> = (200..210).map(Uid).collect();
    index
        .expunge(&owner, "INBOX", uid_validity, &gone)
        .await
        .unwrap();
    for n in MESSAGES..MESSAGES + 10 {
        file(n).await;
    }
    let mut recent = Vec::new();
    for _ in 0..RUNS {
        let mut mailbox = LocalMailbox::new(index.clone(), store.clone(), owner.clone());
        let started = Instant::now();
        let (entries, _) = pages(&mut mailbox, &states, Some(&token)).await;
        recent.push(started.elapsed().as_secs_f64());
        assert_eq!(entries, 120, "100 changed, 10 removed, 10 added");
    }
    let (full, recent) = (median(full), median(recent));
    writeln!(
        report,
        "| local store (PostgreSQL index): sync of {MESSAGES} messages from an empty token, windows of {WINDOW} (s) | {full:.3} | ours over IMAP (first row) | {imap_full:.3} | {:.2} | |",
        full / imap_full
    )
    .unwrap();
    writeln!(
        report,
        "| local store: sync from the last token after the same changes (s) | {recent:.3} | ours over IMAP (second row) | {imap_recent:.3} | {:.2} | |",
        recent / imap_recent
    )
    .unwrap();
    pool.close().await;
    database.drop_database().await.unwrap();
}

async fn send_rows(report: &mut String) {
    let (_dovecot, postfix) = sending_provider(&[ALICE, BOB]).await;
    let submitter = Submitter::new(
        Tls::new(&[postfix.certificate.clone().into()])
            .unwrap()
            .with_egress(EgressConfig::loopback().policy().unwrap()),
        Duration::from_secs(30),
        "pushmail.bench",
    );
    let account = SubmissionAccount {
        host: "localhost".to_owned(),
        port: postfix.submission.port(),
        security: Security::StartTls,
        username: ALICE.to_owned(),
        password: Secret::new(format!("pw-{ALICE}")),
    };
    let raw = |n: usize| {
        format!(
            "From: {ALICE}\r\nTo: {BOB}\r\nSubject: send {n}\r\n\
             Message-ID: <send-{n}@example.net>\r\n\r\n{}\r\n",
            "A line of the message body. ".repeat(60)
        )
    };
    let recipients = vec![BOB.to_owned()];
    let mut ours_one = Vec::new();
    let mut theirs = Vec::new();
    let mut ours_eight = Vec::new();
    for run in 0..RUNS {
        let started = Instant::now();
        for n in 0..SENDS {
            submitter
                .submit(&account, ALICE, &recipients, raw(n).as_bytes())
                .await
                .unwrap();
        }
        ours_one.push(SENDS as f64 / started.elapsed().as_secs_f64());

        let started = Instant::now();
        for n in 0..SENDS {
            pushmail_integration_tests::smtp::swaks_with(
                postfix.submission,
                BOB,
                raw(n).as_bytes(),
                &[
                    "--tls",
                    "--auth",
                    "PLAIN",
                    "--auth-user",
                    ALICE,
                    "--auth-password",
                    &format!("pw-{ALICE}"),
                ],
            )
            .await
            .unwrap();
        }
        theirs.push(SENDS as f64 / started.elapsed().as_secs_f64());

        let started = Instant::now();
        let mut sends = tokio::task::JoinSet::new();
        let lanes = std::sync::Arc::new(tokio::sync::Semaphore::new(8));
        for n in 0..SENDS {
            let (submitter, account, recipients) =
                (submitter.clone(), account.clone(), recipients.clone());
            let permit = lanes.clone().acquire_owned().await.unwrap();
            let message = raw(n);
            sends.spawn(async move {
                submitter
                    .submit(&account, ALICE, &recipients, message.as_bytes())
                    .await
                    .unwrap();
                drop(permit);
            });
        }
        while let Some(done) = sends.join_next().await {
            done.unwrap();
        }
        ours_eight.push(SENDS as f64 / started.elapsed().as_secs_f64());
        eprintln!("send run {run} done");
    }
    postfix
        .wait_queue_empty(Duration::from_secs(120))
        .await
        .unwrap();
    let (one, base, eight) = (median(ours_one), median(theirs), median(ours_eight));
    writeln!(
        report,
        "| sends per second through Postfix submission, one at a time (STARTTLS, AUTH) | {one:.1} | swaks, one process per message, same options | {base:.1} | {:.2} | |",
        one / base
    )
    .unwrap();
    writeln!(
        report,
        "| sends per second, 8 at a time | {eight:.1} | ours one at a time (row above) | {one:.1} | {:.2} | |",
        eight / one
    )
    .unwrap();
}

/// `imaplib`'s fetch of `items` in the INBOX, as the baseline.
fn imaplib(dovecot: &Dovecot, items: &str) -> (f64, usize) {
    dovecot.imaplib_fetch(ALICE, items).unwrap()
}

#[tokio::main]
async fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "bench/reports/mailbox.md".to_owned());
    let mut report = String::new();
    writeln!(report, "# Mailbox: folder sync and sending\n").unwrap();
    writeln!(
        report,
        "Dovecot (CONDSTORE, QRESYNC) and Postfix from Debian on this machine, plain IMAP on loopback; \
         each timing the median of {RUNS}; ratios are ours ÷ baseline (sync: lower is better; sends: higher is better); bench profile.\n"
    )
    .unwrap();
    writeln!(
        report,
        "| metric | this run | baseline (same run) | baseline value | ratio | goal |\n|---|---|---|---|---|---|"
    )
    .unwrap();
    let imap = sync_rows(&mut report).await;
    local_rows(&mut report, imap).await;
    send_rows(&mut report).await;
    std::fs::write(&path, &report).unwrap();
    print!("{report}");
}
