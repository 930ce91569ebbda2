//! A stock mail app's first Sync of a 500-message inbox through the
//! ActiveSync front door (HTTP, WBXML, the mailbox service, Dovecot),
//! paged as a phone pages it, next to Python's `imaplib` fetching the
//! same messages' summaries from the same Dovecot in one `UID FETCH` in
//! the same run. Both are timed from the first request to the last
//! answer (the phone's logins and provisioning, and Python's start-up,
//! are outside). Each timing is the median of three; items per second is
//! 500 over it. Writes a Markdown report to the path given as the first
//! argument. Run by `make bench`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark that fails should stop loudly

use std::fmt::Write as _;
use std::time::Instant;

use pushmail_integration_tests::activesync::{Front, basic, phone_of_sending, post, provisioned};
use pushmail_integration_tests::dovecot::Dovecot;
use pushmail_integration_tests::mailbox::{Sending, USER};
use pushmail_integration_tests::measure::median;
use pushmail_wbxml::{Element, tag};

const MESSAGES: usize = 500;
const RUNS: usize = 3;
/// What a phone asks per page (iOS and Outlook ask 25–100).
const WINDOW: usize = 100;
/// The summaries a Sync lists, as `imaplib` asks for them.
const FETCH_ITEMS: &str = "(UID FLAGS RFC822.SIZE INTERNALDATE BODYSTRUCTURE \
                           BODY.PEEK[HEADER] BODY.PEEK[TEXT]<0.4096>)";

fn message(n: usize) -> String {
    format!(
        "From: Sender {n} <sender{n}@example.org>\r\nTo: {USER}\r\n\
         Subject: report number {n}\r\nMessage-ID: <eas-bench-{n}@example.org>\r\n\
         Date: Mon, 7 Dec 2026 08:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n\
         {}\r\n",
        "The quarterly numbers are attached and summarised here. ".repeat(8)
    )
}

/// The messages straight into the maildir (Dovecot indexes them at the
/// next access).
fn fill(dovecot: &Dovecot) {
    dovecot
        .drop_into_inbox(
            USER,
            (0..MESSAGES).map(|n| (format!("1765000000.easbench{n}.localhost"), message(n))),
        )
        .unwrap();
}

fn sync_request(key: &str, folder: &str) -> Vec<u8> {
    let mut collection = Element::of(tag("AirSync", "Collection"))
        .with(Element::text_of(tag("AirSync", "SyncKey"), key))
        .with(Element::text_of(tag("AirSync", "CollectionId"), folder));
    if key != "0" {
        collection = collection
            .with(Element::of(tag("AirSync", "GetChanges")))
            .with(Element::text_of(
                tag("AirSync", "WindowSize"),
                WINDOW.to_string(),
            ));
    }
    let root = Element::of(tag("AirSync", "Sync"))
        .with(Element::of(tag("AirSync", "Collections")).with(collection));
    pushmail_wbxml::encode(&root).unwrap()
}

/// The inbox's id from a FolderSync.
async fn inbox(front: &Front, line: &str, auth: &str, key: &str) -> String {
    let root = Element::of(tag("FolderHierarchy", "FolderSync"))
        .with(Element::text_of(tag("FolderHierarchy", "SyncKey"), "0"));
    let answer = post(
        front.addr,
        &line.replace("Cmd=Sync", "Cmd=FolderSync"),
        auth,
        Some(key),
        &pushmail_wbxml::encode(&root).unwrap(),
    )
    .await;
    let tree = pushmail_wbxml::decode(&answer.body).unwrap();
    tree.get(tag("FolderHierarchy", "Changes"))
        .unwrap()
        .all(tag("FolderHierarchy", "Add"))
        .find(|add| {
            add.get(tag("FolderHierarchy", "Type"))
                .is_some_and(|t| t.text() == "2")
        })
        .and_then(|add| add.get(tag("FolderHierarchy", "ServerId")))
        .unwrap()
        .text()
}

/// One first sync of the inbox, paged as a phone pages it: the seconds
/// and the messages added.
async fn first_sync(
    front: &Front,
    line: &str,
    auth: &str,
    key: &str,
    folder: &str,
) -> (f64, usize) {
    let started = Instant::now();
    let mut sync_key = "0".to_owned();
    let mut added = 0;
    loop {
        let answer = post(
            front.addr,
            line,
            auth,
            Some(key),
            &sync_request(&sync_key, folder),
        )
        .await;
        assert_eq!(answer.status, 200);
        let tree = pushmail_wbxml::decode(&answer.body).unwrap();
        let collection = tree
            .get(tag("AirSync", "Collections"))
            .and_then(|c| c.get(tag("AirSync", "Collection")))
            .unwrap();
        sync_key = collection.get(tag("AirSync", "SyncKey")).unwrap().text();
        let commands = collection.get(tag("AirSync", "Commands"));
        added += commands.map_or(0, |c| c.all(tag("AirSync", "Add")).count());
        let more = collection.get(tag("AirSync", "MoreAvailable")).is_some();
        // The first answer (key 0) only primes the key.
        if !more && added > 0 {
            return (started.elapsed().as_secs_f64(), added);
        }
    }
}

/// `imaplib`'s fetch of `items` in the INBOX, as the baseline.
fn imaplib(dovecot: &Dovecot, items: &str) -> (f64, usize) {
    dovecot.imaplib_fetch(USER, items).unwrap()
}

#[tokio::main]
async fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "bench/reports/activesync.md".to_owned());
    let mut sending = Sending::start().await;
    fill(&sending.dovecot);
    // Dovecot indexes the new files at the first access: not measured.
    let (_, listed) = imaplib(&sending.dovecot, "(UID)");
    assert_eq!(listed, MESSAGES);
    let phone = phone_of_sending(&mut sending).await;
    let front = Front::with_mailbox(sending.binding.addr, sending.node.addr, None).await;
    let auth = basic(&phone.address, &phone.password);
    let line = format!(
        "Cmd=Sync&User={}&DeviceId=benchphone01&DeviceType=iPhone",
        phone.address
    );
    let key = provisioned(&front, &line.replace("Cmd=Sync", "Cmd=Provision"), &auth).await;
    let folder = inbox(&front, &line, &auth, &key).await;

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..RUNS {
        let (seconds, read) = imaplib(&sending.dovecot, FETCH_ITEMS);
        assert_eq!(read, MESSAGES);
        theirs.push(seconds);
        let (seconds, added) = first_sync(&front, &line, &auth, &key, &folder).await;
        assert_eq!(added, MESSAGES);
        ours.push(seconds);
    }
    let (ours, theirs) = (median(ours), median(theirs));
    let per_second = |seconds: f64| MESSAGES as f64 / seconds;
    let mut report = String::new();
    writeln!(report, "# ActiveSync: a phone's first Sync\n").unwrap();
    writeln!(
        report,
        "Dovecot and the mailbox service (PostgreSQL states) on this machine, the activesync front door over plain HTTP on loopback, \
         our WBXML client paging with WindowSize {WINDOW} and no BodyPreference (plain bodies, as a Sync brings them unasked); \
         each timing the median of {RUNS}; ratio is ours ÷ baseline in items per second (higher is better); bench profile.\n"
    )
    .unwrap();
    writeln!(
        report,
        "| metric | this run | baseline (same run) | baseline value | ratio | goal |\n|---|---|---|---|---|---|"
    )
    .unwrap();
    writeln!(
        report,
        "| first Sync of a {MESSAGES}-message inbox, items/s ({ours:.3} s) | {:.0} | imaplib `UID FETCH 1:* {FETCH_ITEMS}` ({theirs:.3} s) | {:.0} | {:.2} | |",
        per_second(ours),
        per_second(theirs),
        theirs / ours
    )
    .unwrap();
    std::fs::write(&path, &report).unwrap();
    print!("{report}");
    front.stop().await;
    sending.stop().await;
}
