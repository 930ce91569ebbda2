//! The mailbox service's upstream IMAP backend against Dovecot, in both of
//! the configurations providers run: with CONDSTORE/QRESYNC, MOVE,
//! LIST-STATUS and special-use folders, and without any of them (roles
//! from names, a UID diff, COPY and UID EXPUNGE). Another IMAP client
//! (Python's imaplib) changes the mailbox while the phone syncs.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::collections::BTreeSet;
use std::time::Duration;

use pushmail_common::egress::EgressConfig;
use pushmail_common::redact::Secret;
use pushmail_common::upstream::{Security, Tls};
use pushmail_integration_tests::dovecot::{Dovecot, ImapProfile};
use pushmail_mailbox::backend::{BackendError, Mailbox};
use pushmail_mailbox::domain::{FlagUpdate, Flags, FolderId, FolderRole, Uid};
use pushmail_mailbox::imap::{ImapAccount, ImapConnector, ImapMailbox};
use pushmail_mailbox::sync::{
    Entries, MemoryStates, Scope, States as _, SyncError, Synced, Token, sync,
};

const USER: &str = "phone@example.net";

fn connector() -> ImapConnector {
    let tls = Tls::new(&[])
        .unwrap()
        .with_egress(EgressConfig::loopback().policy().unwrap());
    ImapConnector::new(tls, Duration::from_secs(10))
}

fn account(dovecot: &Dovecot) -> ImapAccount {
    ImapAccount {
        host: "127.0.0.1".to_owned(),
        port: dovecot.imap.port(),
        security: Security::None,
        username: USER.to_owned(),
        password: Secret::new(format!("pw-{USER}")),
    }
}

async fn open(dovecot: &Dovecot) -> ImapMailbox {
    connector().open(&account(dovecot)).await.unwrap()
}

/// Runs Python's imaplib against the same mailbox; its printed lines.
async fn peer(dovecot: &Dovecot, ops: serde_json::Value) -> Vec<serde_json::Value> {
    dovecot.imap_peer(&dovecot.users[0], &ops).await.unwrap()
}

/// The flags the other client sees on INBOX's `uid`.
async fn peer_flags(dovecot: &Dovecot, uid: u32) -> BTreeSet<String> {
    let seen = peer(
        dovecot,
        serde_json::json!([["flags", "INBOX", uid.to_string()]]),
    )
    .await;
    seen[0]["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect()
}

fn mail(n: usize, extra_headers: &str) -> Vec<u8> {
    format!(
        "From: Sender {n} <sender{n}@example.org>\r\nTo: {USER}\r\nCc: Other <other@example.org>\r\n\
         Subject: message {n}\r\nMessage-ID: <m{n}@example.org>\r\n{extra_headers}\
         Date: Mon, 7 Dec 2026 08:00:{:02} +0800\r\n\r\nbody of message {n}\r\n",
        n % 60
    )
    .into_bytes()
}

fn scope(folder: &FolderId) -> Scope {
    Scope {
        tenant: "t1".to_owned(),
        account: "a1".to_owned(),
        folder: folder.clone(),
    }
}

/// Syncs until nothing more is waiting, in pages of `window`.
async fn sync_all(
    mailbox: &mut ImapMailbox,
    states: &MemoryStates,
    folder: &FolderId,
    since: Option<Token>,
    window: usize,
) -> (Vec<Synced>, Token) {
    let mut token = since;
    let mut pages = Vec::new();
    loop {
        let page = sync(mailbox, states, &scope(folder), token.as_ref(), window)
            .await
            .unwrap();
        token = Some(page.token.clone());
        let more = page.more;
        pages.push(page);
        if !more {
            return (pages, token.unwrap());
        }
    }
}

fn inbox() -> FolderId {
    FolderId::new("INBOX")
}

async fn folders_have_roles(dovecot: &Dovecot, profile: ImapProfile) {
    if profile == ImapProfile::Plain {
        for name in [
            "Sent Messages",
            "Drafts",
            "Deleted Messages",
            "Junk",
            "Archive",
        ] {
            peer(dovecot, serde_json::json!([["create", name]])).await;
        }
    }
    // A user folder with a Chinese name, nested under another.
    peer(
        dovecot,
        serde_json::json!([["create", "Projects"], ["create", "Projects/&UWxT+A-"]]),
    )
    .await;
    let mut mailbox = open(dovecot).await;
    assert_eq!(mailbox.incremental(), profile == ImapProfile::Modern);
    let folders = mailbox.folders().await.unwrap();
    let role = |role| {
        folders
            .iter()
            .filter(|f| f.role == role)
            .map(|f| f.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(role(FolderRole::Inbox), ["INBOX"]);
    let sent = if profile == ImapProfile::Plain {
        "Sent Messages"
    } else {
        "Sent"
    };
    assert_eq!(role(FolderRole::Sent), [sent]);
    assert_eq!(role(FolderRole::Drafts), ["Drafts"]);
    let trash = if profile == ImapProfile::Plain {
        "Deleted Messages"
    } else {
        "Trash"
    };
    assert_eq!(role(FolderRole::Trash), [trash]);
    assert_eq!(role(FolderRole::Junk), ["Junk"]);
    assert_eq!(role(FolderRole::Archive), ["Archive"]);
    let nested = folders
        .iter()
        .find(|f| f.name == "\u{516c}\u{53f8}")
        .expect("the nested folder");
    assert_eq!(nested.parent, Some(FolderId::new("Projects")));
    assert_eq!(nested.role, FolderRole::User);
    // The same roles found with one LIST and no counts.
    let trash_id = mailbox.folder_with_role(FolderRole::Trash).await.unwrap();
    assert_eq!(trash_id, Some(FolderId::new(trash)));
    assert_eq!(
        mailbox.folder_with_role(FolderRole::Sent).await.unwrap(),
        Some(FolderId::new(sent))
    );
    Box::new(mailbox).close().await;
}

async fn sync_follows_another_client(dovecot: &Dovecot, profile: ImapProfile) {
    for n in 1..=7 {
        dovecot.deliver(USER, &mail(n, "")).await.unwrap();
    }
    let states = MemoryStates::new(16, Duration::from_secs(3_600));
    let mut mailbox = open(dovecot).await;

    // A first sync in windows of 3: every message once, newest first.
    let (pages, token) = sync_all(&mut mailbox, &states, &inbox(), None, 3).await;
    assert_eq!(pages.len(), 3);
    let subjects: Vec<String> = pages
        .iter()
        .flat_map(|p| p.added.iter().map(|l| l.summary.subject.clone()))
        .collect();
    let expected: Vec<String> = (1..=7).rev().map(|n| format!("message {n}")).collect();
    assert_eq!(subjects, expected);
    let first = &pages[0].added[0].summary;
    assert_eq!(first.from.as_ref().unwrap().address, "sender7@example.org");
    assert_eq!(first.cc[0].address, "other@example.org");
    assert_eq!(first.rfc_message_id.as_deref(), Some("m7@example.org"));
    assert!(
        first.snippet.contains("body of message 7"),
        "{}",
        first.snippet
    );
    assert!(first.received_ms.is_some() && first.date_ms.is_some() && first.size_bytes > 100);

    // Nothing changed: an empty answer.
    let quiet = sync(&mut mailbox, &states, &scope(&inbox()), Some(&token), 50)
        .await
        .unwrap();
    assert!(quiet.added.is_empty() && quiet.changed.is_empty() && quiet.removed.is_empty());

    // The desktop reads 2, flags 3, deletes 4; new mail arrives.
    peer(
        dovecot,
        serde_json::json!([
            ["store", "INBOX", "2", "+FLAGS", "(\\Seen)"],
            ["store", "INBOX", "3", "+FLAGS", "(\\Flagged)"],
            ["expunge", "INBOX", "4"],
        ]),
    )
    .await;
    dovecot.deliver(USER, &mail(8, "")).await.unwrap();
    let changes = sync(
        &mut mailbox,
        &states,
        &scope(&inbox()),
        Some(&quiet.token),
        50,
    )
    .await
    .unwrap();
    let changed: Vec<(u32, Flags)> = changes.changed.iter().map(|(k, f)| (k.uid.0, *f)).collect();
    assert_eq!(
        changed,
        [
            (
                2,
                Flags {
                    seen: true,
                    ..Flags::default()
                }
            ),
            (
                3,
                Flags {
                    flagged: true,
                    ..Flags::default()
                }
            ),
        ]
    );
    assert_eq!(
        changes.removed.iter().map(|k| k.uid.0).collect::<Vec<_>>(),
        [4]
    );
    assert_eq!(changes.added.len(), 1);
    assert_eq!(changes.added[0].summary.subject, "message 8");

    // A phone whose answer was lost asks again with the same token and
    // hears the same changes.
    let again = sync(
        &mut mailbox,
        &states,
        &scope(&inbox()),
        Some(&quiet.token),
        50,
    )
    .await
    .unwrap();
    assert_eq!(again.changed, changes.changed);
    assert_eq!(again.removed, changes.removed);
    assert_eq!(again.added, changes.added);

    // With QRESYNC the server itself said what changed (the expunge as a
    // VANISHED range); without it the whole folder was listed and diffed.
    let held = states
        .load(&scope(&inbox()), &quiet.token)
        .await
        .unwrap()
        .unwrap();
    let since = held.modseq.map(|modseq| (held.uid_validity, modseq));
    assert_eq!(since.is_some(), profile == ImapProfile::Modern);
    let listing = mailbox.listing(&inbox(), since).await.unwrap();
    match (profile, &listing.entries) {
        (ImapProfile::Modern, Entries::Since { changed, vanished }) => {
            assert_eq!(changed.keys().map(|u| u.0).collect::<Vec<_>>(), [2, 3, 8]);
            assert!(
                vanished.iter().any(|range| range.contains(&4)),
                "{vanished:?}"
            );
        }
        (ImapProfile::Plain, Entries::Full(all)) => assert_eq!(all.len(), 7),
        (profile, entries) => panic!("{profile:?} listed {entries:?}"),
    }

    // A token never issued is refused, not treated as empty.
    let forged = Token::parse("0123456789abcdef0123456789abcdef").unwrap();
    assert!(matches!(
        sync(&mut mailbox, &states, &scope(&inbox()), Some(&forged), 50).await,
        Err(SyncError::UnknownToken)
    ));
    Box::new(mailbox).close().await;
}

async fn writes_reach_the_server(dovecot: &Dovecot, trash: &str) {
    for n in 1..=4 {
        dovecot.deliver(USER, &mail(n, "")).await.unwrap();
    }
    peer(
        dovecot,
        serde_json::json!([["create", "Work"], ["create", trash]]),
    )
    .await;
    let states = MemoryStates::new(16, Duration::from_secs(3_600));
    let mut mailbox = open(dovecot).await;
    let (pages, _) = sync_all(&mut mailbox, &states, &inbox(), None, 50).await;
    let uv = pages[0].added[0].key.uid_validity;

    // Read and starred, seen by the other client.
    mailbox
        .set_flags(
            &inbox(),
            uv,
            &[Uid(1)],
            FlagUpdate {
                seen: Some(true),
                flagged: Some(true),
                forwarded: Some(true),
                ..FlagUpdate::default()
            },
        )
        .await
        .unwrap();
    let flags = peer_flags(dovecot, 1).await;
    assert!(
        flags.contains("\\Seen") && flags.contains("\\Flagged") && flags.contains("$Forwarded"),
        "{flags:?}"
    );
    mailbox
        .set_flags(
            &inbox(),
            uv,
            &[Uid(1)],
            FlagUpdate {
                flagged: Some(false),
                ..FlagUpdate::default()
            },
        )
        .await
        .unwrap();
    assert!(!peer_flags(dovecot, 1).await.contains("\\Flagged"));

    // Moved to Work: gone from INBOX, there under the id the move gave.
    let moved = mailbox
        .move_to(&inbox(), uv, &[Uid(2), Uid(3)], &FolderId::new("Work"))
        .await
        .unwrap();
    assert_eq!(moved.len(), 2);
    let work_uids = peer(dovecot, serde_json::json!([["uids", "Work"]])).await;
    assert_eq!(work_uids[0], serde_json::json!([1, 2]));
    assert_eq!(moved[0].1.as_ref().map(|k| k.uid), Some(Uid(1)));
    let inbox_uids = peer(dovecot, serde_json::json!([["uids", "INBOX"]])).await;
    assert_eq!(inbox_uids[0], serde_json::json!([1, 4]));
    let raw = mailbox.raw(moved[1].1.as_ref().unwrap()).await.unwrap();
    assert!(String::from_utf8_lossy(&raw).contains("Subject: message 3"));

    // Expunged for good; a stale id is a clear error.
    mailbox.expunge(&inbox(), uv, &[Uid(4)]).await.unwrap();
    let inbox_uids = peer(dovecot, serde_json::json!([["uids", "INBOX"]])).await;
    assert_eq!(inbox_uids[0], serde_json::json!([1]));
    let stale = mailbox
        .raw(&pushmail_mailbox::domain::MessageKey {
            folder: inbox(),
            uid_validity: uv,
            uid: Uid(4),
        })
        .await;
    assert!(
        matches!(stale, Err(BackendError::NoMessage(_))),
        "{stale:?}"
    );

    // A sent copy, stored seen, under the id the server gave.
    let sent = mailbox
        .append(
            &FolderId::new("Work"),
            &mail(9, ""),
            Flags {
                seen: true,
                ..Flags::default()
            },
        )
        .await
        .unwrap()
        .expect("APPENDUID");
    assert_eq!(sent.uid, Uid(3));
    let raw = mailbox.raw(&sent).await.unwrap();
    assert!(String::from_utf8_lossy(&raw).contains("Subject: message 9"));

    // A move to a folder that is not there leaves the message where it was.
    let missing = mailbox
        .move_to(&inbox(), uv, &[Uid(1)], &FolderId::new("Nowhere"))
        .await;
    assert!(missing.is_err(), "{missing:?}");
    let inbox_uids = peer(dovecot, serde_json::json!([["uids", "INBOX"]])).await;
    assert_eq!(inbox_uids[0], serde_json::json!([1]));
    Box::new(mailbox).close().await;
}

async fn failures_are_clear(dovecot: &Dovecot) {
    dovecot.deliver(USER, &mail(1, "")).await.unwrap();
    peer(dovecot, serde_json::json!([["create", "Short-lived"]])).await;
    let states = MemoryStates::new(16, Duration::from_secs(3_600));
    let mut mailbox = open(dovecot).await;
    let short = FolderId::new("Short-lived");
    let (_, token) = sync_all(&mut mailbox, &states, &short, None, 10).await;

    // The folder disappears upstream between two syncs.
    peer(dovecot, serde_json::json!([["delete", "Short-lived"]])).await;
    let gone = sync(&mut mailbox, &states, &scope(&short), Some(&token), 10).await;
    assert!(
        matches!(gone, Err(SyncError::Backend(BackendError::NoFolder(_)))),
        "{gone:?}"
    );

    // INBOX renumbered (an index rebuild): the token no longer holds.
    let (_, token) = sync_all(&mut mailbox, &states, &inbox(), None, 10).await;
    Box::new(mailbox).close().await;
    dovecot.change_uid_validity(USER, 4_242).await.unwrap();
    let mut mailbox = open(dovecot).await;
    let renumbered = sync(&mut mailbox, &states, &scope(&inbox()), Some(&token), 10).await;
    assert!(
        matches!(renumbered, Err(SyncError::Renumbered(_))),
        "{renumbered:?}"
    );
    let fresh = sync(&mut mailbox, &states, &scope(&inbox()), None, 10)
        .await
        .unwrap();
    assert_eq!(fresh.added.len(), 1);
    assert_eq!(fresh.added[0].key.uid_validity, 4_242);
    Box::new(mailbox).close().await;

    // A message over the bound read whole is refused before it is read.
    let key = fresh.added[0].key.clone();
    let mut small = connector()
        .with_max_message_bytes(16)
        .open(&account(dovecot))
        .await
        .unwrap();
    let refused = small.raw(&key).await;
    assert!(
        matches!(refused, Err(BackendError::TooLarge { max: 16, .. })),
        "{refused:?}"
    );
    Box::new(small).close().await;

    // A wrong password is the account's problem, said so.
    let mut wrong = account(dovecot);
    wrong.password = Secret::new("not-it");
    let refused = connector().open(&wrong).await;
    assert!(
        matches!(refused, Err(BackendError::Credentials(_))),
        "{refused:?}"
    );
}

/// A first sync lists once and pages from its state: what another client
/// does meanwhile (flags a message not given yet, expunges one, delivers
/// one) is right on the later pages or comes with the next sync, and
/// nothing twice.
async fn changes_while_paging_come_next(dovecot: &Dovecot) {
    for n in 1..=6 {
        dovecot.deliver(USER, &mail(n, "")).await.unwrap();
    }
    let states = MemoryStates::new(16, Duration::from_secs(3_600));
    let mut mailbox = open(dovecot).await;
    let first = sync(&mut mailbox, &states, &scope(&inbox()), None, 2)
        .await
        .unwrap();
    assert!(first.more);
    peer(
        dovecot,
        serde_json::json!([
            ["store", "INBOX", "1", "+FLAGS", "(\\Flagged)"],
            ["expunge", "INBOX", "3"],
        ]),
    )
    .await;
    dovecot.deliver(USER, &mail(7, "")).await.unwrap();
    let (rest, token) = sync_all(
        &mut mailbox,
        &states,
        &inbox(),
        Some(first.token.clone()),
        2,
    )
    .await;
    let mut given: Vec<(u32, bool)> = std::iter::once(&first)
        .chain(&rest)
        .flat_map(|page| page.added.iter())
        .map(|l| (l.key.uid.0, l.summary.flags.flagged))
        .collect();
    // 3 was expunged before its page: a session that has not yet been
    // told of the expunge may still fetch it (RFC 3501 lets a server
    // answer so), and then the next sync removes it.
    let three_given = given.iter().any(|(uid, _)| *uid == 3);
    given.retain(|(uid, _)| *uid != 3);
    assert_eq!(
        given,
        [(6, false), (5, false), (4, false), (2, false), (1, true)],
        "1 with its flag as it is now"
    );
    let next = sync(&mut mailbox, &states, &scope(&inbox()), Some(&token), 50)
        .await
        .unwrap();
    assert_eq!(
        next.added.iter().map(|l| l.key.uid.0).collect::<Vec<_>>(),
        [7],
        "the mail that came while paging"
    );
    assert!(next.changed.is_empty(), "{next:?}");
    assert_eq!(
        next.removed.iter().map(|k| k.uid.0).collect::<Vec<_>>(),
        if three_given { vec![3] } else { vec![] },
        "{next:?}"
    );
    Box::new(mailbox).close().await;
}

async fn suite(profile: ImapProfile) {
    let trash = if profile == ImapProfile::Plain {
        "Deleted Messages"
    } else {
        "Trash"
    };
    let dovecot = Dovecot::start_provider(&[USER], profile).await.unwrap();
    folders_have_roles(&dovecot, profile).await;
    drop(dovecot);
    let dovecot = Dovecot::start_provider(&[USER], profile).await.unwrap();
    sync_follows_another_client(&dovecot, profile).await;
    drop(dovecot);
    let dovecot = Dovecot::start_provider(&[USER], profile).await.unwrap();
    changes_while_paging_come_next(&dovecot).await;
    drop(dovecot);
    let dovecot = Dovecot::start_provider(&[USER], profile).await.unwrap();
    writes_reach_the_server(&dovecot, trash).await;
    drop(dovecot);
    let dovecot = Dovecot::start_provider(&[USER], profile).await.unwrap();
    failures_are_clear(&dovecot).await;
}

#[tokio::test]
async fn against_a_server_with_condstore_qresync_and_special_use() {
    suite(ImapProfile::Modern).await;
}

#[tokio::test]
async fn against_a_server_without_them() {
    suite(ImapProfile::Plain).await;
}

#[tokio::test]
async fn a_provider_that_drops_the_connection_is_unavailable() {
    let dovecot = Dovecot::start_provider(&[USER], ImapProfile::Modern)
        .await
        .unwrap();
    dovecot.deliver(USER, &mail(1, "")).await.unwrap();
    let mut mailbox = open(&dovecot).await;
    let states = MemoryStates::new(16, Duration::from_secs(3_600));
    let (_, token) = sync_all(&mut mailbox, &states, &inbox(), None, 10).await;
    assert!(dovecot.kill_imap_sessions(USER) >= 1);
    let dropped = sync(&mut mailbox, &states, &scope(&inbox()), Some(&token), 10).await;
    assert!(
        matches!(
            dropped,
            Err(SyncError::Backend(BackendError::Unavailable(_)))
        ),
        "{dropped:?}"
    );
    // The token still holds once the provider is back.
    let mut mailbox = open(&dovecot).await;
    let after = sync(&mut mailbox, &states, &scope(&inbox()), Some(&token), 10)
        .await
        .unwrap();
    assert!(after.added.is_empty() && after.removed.is_empty());
}

#[tokio::test]
async fn sessions_are_kept_between_requests_and_replaced_when_dropped() {
    use pushmail_mailbox::imap::PoolLimits;
    let dovecot = Dovecot::start_provider(&[USER], ImapProfile::Modern)
        .await
        .unwrap();
    dovecot.deliver(USER, &mail(1, "")).await.unwrap();
    let tls = Tls::new(&[])
        .unwrap()
        .with_egress(EgressConfig::loopback().policy().unwrap());
    let connector = ImapConnector::pooled(
        tls,
        Duration::from_secs(10),
        PoolLimits {
            per_account: 1,
            total: 10,
            idle: Duration::from_secs(60),
        },
    );
    let states = MemoryStates::new(16, Duration::from_secs(3_600));

    // Five requests in a row: one login.
    for _ in 0..5 {
        let mut mailbox = connector.open(&account(&dovecot)).await.unwrap();
        let page = sync(&mut mailbox, &states, &scope(&inbox()), None, 10)
            .await
            .unwrap();
        assert_eq!(page.added.len(), 1);
        Box::new(mailbox).close().await;
        assert_eq!(connector.kept(), 1);
    }
    assert_eq!(dovecot.imap_logins(USER), 1, "{}", dovecot.log());

    // The provider drops the kept session: the next request does not
    // notice, it gets a new one.
    assert!(dovecot.kill_imap_sessions(USER) >= 1);
    let mut mailbox = connector.open(&account(&dovecot)).await.unwrap();
    assert_eq!(mailbox.folders().await.unwrap().len(), 6);
    Box::new(mailbox).close().await;
    assert_eq!(dovecot.imap_logins(USER), 2);

    // Two at once: the second gets its own session; only one is kept.
    let first = connector.open(&account(&dovecot)).await.unwrap();
    let second = connector.open(&account(&dovecot)).await.unwrap();
    Box::new(first).close().await;
    Box::new(second).close().await;
    assert_eq!(connector.kept(), 1);

    // A new password never reuses a session of the old one.
    let mut changed = account(&dovecot);
    changed.password = Secret::new("not-it");
    assert!(matches!(
        connector.open(&changed).await,
        Err(BackendError::Credentials(_))
    ));
}
