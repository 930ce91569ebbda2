//! The platform's own store: its index held to one behaviour in memory,
//! in PostgreSQL and in SQLite (UIDs only grow and are never handed out
//! twice however many writers race, an arrival is filed once, a move
//! renumbers, flags and deletes count as changes, retention and account
//! deletion empty it); and end to end on the test broker, mail forwarded
//! to ingest over SMTP reaching the phone's mailbox through the mailbox
//! service, and leaving it with its account.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::sync::Arc;
use std::time::{Duration, Instant};

use pushmail_common::service_identity::Service;
use pushmail_integration_tests::mailbox::MailboxNode;
use pushmail_integration_tests::nodes::{BindingNode, IngestNode, ingest_config};
use pushmail_integration_tests::smtp::swaks;
use pushmail_integration_tests::{TestDatabase, authed, credential, kafka_bus};
use pushmail_mailbox::domain::{FlagUpdate, Flags, Uid};
use pushmail_mailbox::local::{
    Arrival, Index, IndexError, MemoryIndex, Owner, PgIndex, SqliteIndex,
};
use pushmail_mailbox::sync::{PgStates, Retention, SqliteStates};
use pushmail_proto::binding::v1 as binding;
use pushmail_proto::mailbox::v1 as pb;

fn owner(tenant: &str, account: &str) -> Owner {
    Owner {
        tenant: tenant.to_owned(),
        account: account.to_owned(),
    }
}

fn arrival(key: &str, received_ms: i64) -> Arrival {
    Arrival {
        key: key.to_owned(),
        blob: format!("sha256:{key}"),
        size_bytes: 10,
        received_ms,
        flags: Flags::default(),
        summary: format!("{{\"subject\":\"{key}\"}}"),
    }
}

fn version(rows: &[pushmail_mailbox::local::FolderRow], name: &str) -> (u64, u32, u32) {
    let row = rows.iter().find(|r| r.name == name).unwrap();
    (row.modseq, row.total, row.unread)
}

async fn behaves(index: Arc<dyn Index>) {
    let me = owner("t1", "a1");
    let now = pushmail_common::clock::now_ms();
    let folders = index.folders(&me).await.unwrap();
    let mut names: Vec<_> = folders.iter().map(|f| f.name.clone()).collect();
    names.sort();
    assert_eq!(
        names,
        ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"]
    );
    let (before, _, _) = version(&folders, "INBOX");

    let (validity, first) = index
        .file(&me, "INBOX", &arrival("k1", now))
        .await
        .unwrap()
        .unwrap();
    let (_, second) = index
        .file(&me, "INBOX", &arrival("k2", now))
        .await
        .unwrap()
        .unwrap();
    assert!(second > first);
    // The same arrival again: nothing.
    assert_eq!(
        index.file(&me, "INBOX", &arrival("k1", now)).await.unwrap(),
        None
    );
    assert!(matches!(
        index.file(&me, "Nope", &arrival("k9", now)).await,
        Err(IndexError::NoFolder(_))
    ));
    let folders = index.folders(&me).await.unwrap();
    let (after, total, unread) = version(&folders, "INBOX");
    assert!(after > before);
    assert_eq!((total, unread), (2, 2));

    sees_and_changes(index.as_ref(), now, (validity, first, second)).await;
    moves_expires_and_forgets(index.as_ref(), now, (validity, first, second)).await;
    edits_folders(index.as_ref(), now).await;
}

/// Folders a phone makes: a name is taken once; a rename takes the
/// folders under it and their messages along (a `%` or `_` in a name is
/// only itself); a delete takes the folder's messages.
async fn edits_folders(index: &dyn Index, now: i64) {
    let me = owner("t1", "folders");
    let names = |rows: Vec<pushmail_mailbox::local::FolderRow>| {
        let mut names: Vec<String> = rows
            .into_iter()
            .filter(|r| {
                !pushmail_mailbox::local::STANDARD
                    .iter()
                    .any(|(s, _)| *s == r.name)
            })
            .map(|r| format!("{}:{}", r.name, r.total))
            .collect();
        names.sort();
        names
    };
    for name in ["Work", "Work/2024", "Work%", "Workshop", "W_rk/2024"] {
        if let Some((parent, _)) = name.rsplit_once('/')
            && parent == "W_rk"
        {
            index.create_folder(&me, parent).await.unwrap();
        }
        index.create_folder(&me, name).await.unwrap();
    }
    assert!(matches!(
        index.create_folder(&me, "Work").await,
        Err(IndexError::FolderExists(_))
    ));
    index
        .file(&me, "Work/2024", &arrival("folders-1", now))
        .await
        .unwrap()
        .unwrap();
    index
        .file(&me, "Work%", &arrival("folders-2", now))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        index.rename_folder(&me, "Work", "Workshop").await,
        Err(IndexError::FolderExists(_))
    ));
    assert!(matches!(
        index.rename_folder(&me, "Nope", "Elsewhere").await,
        Err(IndexError::NoFolder(_))
    ));
    index.rename_folder(&me, "Work", "Projects").await.unwrap();
    assert_eq!(
        names(index.folders(&me).await.unwrap()),
        [
            "Projects/2024:1",
            "Projects:0",
            "W_rk/2024:0",
            "W_rk:0",
            "Work%:1",
            "Workshop:0"
        ]
    );
    let (_, listed) = index.listing(&me, "Projects/2024").await.unwrap();
    assert_eq!(listed.len(), 1, "the message went with its folder");
    index.delete_folder(&me, "Work%").await.unwrap();
    assert!(matches!(
        index.delete_folder(&me, "Work%").await,
        Err(IndexError::NoFolder(_))
    ));
    assert!(matches!(
        index.listing(&me, "Work%").await,
        Err(IndexError::NoFolder(_))
    ));
    // A folder made again under a deleted name starts empty.
    index.create_folder(&me, "Work%").await.unwrap();
    let (_, listed) = index.listing(&me, "Work%").await.unwrap();
    assert!(listed.is_empty());
}

async fn sees_and_changes(index: &dyn Index, now: i64, (validity, first, second): (u32, Uid, Uid)) {
    let me = owner("t1", "a1");
    // Only the owner sees it.
    for other in [owner("t1", "a2"), owner("t2", "a1")] {
        assert!(index.listing(&other, "INBOX").await.unwrap().1.is_empty());
    }

    let entries = index
        .entries(&me, "INBOX", validity, &[second, Uid(999), first])
        .await
        .unwrap();
    assert_eq!(
        entries.iter().map(|e| e.uid).collect::<Vec<_>>(),
        [first, second]
    );
    assert_eq!(entries[0].summary, "{\"subject\":\"k1\"}");
    assert_eq!(entries[0].received_ms, now);
    assert!(matches!(
        index.entries(&me, "INBOX", validity + 1, &[first]).await,
        Err(IndexError::Renumbered { .. })
    ));

    // Flags: a change counts; the same change again does not.
    let seen = FlagUpdate {
        seen: Some(true),
        forwarded: Some(true),
        ..FlagUpdate::default()
    };
    index
        .set_flags(&me, "INBOX", validity, &[first], seen)
        .await
        .unwrap();
    let (modseq, _, unread) = version(&index.folders(&me).await.unwrap(), "INBOX");
    assert_eq!(unread, 1);
    index
        .set_flags(&me, "INBOX", validity, &[first], seen)
        .await
        .unwrap();
    assert_eq!(
        version(&index.folders(&me).await.unwrap(), "INBOX").0,
        modseq
    );
    let unseen = FlagUpdate {
        seen: Some(false),
        ..FlagUpdate::default()
    };
    index
        .set_flags(&me, "INBOX", validity, &[first], unseen)
        .await
        .unwrap();
    let flags = index.listing(&me, "INBOX").await.unwrap().1[&first];
    assert!(!flags.seen && flags.forwarded, "{flags:?}");
}

async fn moves_expires_and_forgets(
    index: &dyn Index,
    now: i64,
    (validity, first, second): (u32, Uid, Uid),
) {
    let me = owner("t1", "a1");
    // A move renumbers in the target and leaves a gap behind.
    let moved = index
        .move_to(&me, "INBOX", validity, &[first, Uid(999)], "Trash")
        .await
        .unwrap();
    assert_eq!(moved.len(), 1);
    let (was, trash_validity, now_uid) = moved[0];
    assert_eq!(was, first);
    let trash = index.listing(&me, "Trash").await.unwrap();
    assert_eq!(trash.0, trash_validity);
    assert!(trash.1[&now_uid].forwarded);
    assert_eq!(
        index
            .listing(&me, "INBOX")
            .await
            .unwrap()
            .1
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        [second]
    );
    index
        .expunge(&me, "Trash", trash_validity, &[now_uid])
        .await
        .unwrap();
    assert!(index.listing(&me, "Trash").await.unwrap().1.is_empty());
    // UIDs are never handed out again.
    let (_, third) = index
        .file(&me, "Trash", &arrival("k3", now))
        .await
        .unwrap()
        .unwrap();
    assert!(third > now_uid);

    // Retention: only what arrived before the cut, only the tenant's.
    let day = 86_400_000;
    index
        .file(&me, "INBOX", &arrival("old", now - 10 * day))
        .await
        .unwrap()
        .unwrap();
    let theirs = owner("t2", "b1");
    index
        .file(&theirs, "INBOX", &arrival("old", now - 10 * day))
        .await
        .unwrap()
        .unwrap();
    let mut tenants = index.tenants().await.unwrap();
    tenants.sort();
    assert_eq!(tenants, ["t1", "t2"]);
    assert_eq!(index.expire("t1", now - day).await.unwrap(), 1);
    assert_eq!(index.listing(&me, "INBOX").await.unwrap().1.len(), 1);
    assert_eq!(index.listing(&theirs, "INBOX").await.unwrap().1.len(), 1);

    // Forgotten with the account: made anew, empty, on next use.
    index.forget(&me).await.unwrap();
    let folders = index.folders(&me).await.unwrap();
    assert!(folders.iter().all(|f| f.total == 0));
    assert!(
        index
            .file(&me, "INBOX", &arrival("k1", now))
            .await
            .unwrap()
            .is_some()
    );
}

/// Many writers filing into one folder at once, and moving into it.
async fn races(index: Arc<dyn Index>) {
    let me = owner("t3", "racer");
    let now = pushmail_common::clock::now_ms();
    let mut tasks = Vec::new();
    for n in 0..16 {
        let index = index.clone();
        let me = me.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("r{}", n % 8);
            index.file(&me, "INBOX", &arrival(&key, now)).await.unwrap()
        }));
    }
    let mut uids = Vec::new();
    for task in tasks {
        if let Some((_, uid)) = task.await.unwrap() {
            uids.push(uid);
        }
    }
    // Eight keys, each filed once, under eight different UIDs.
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), 8);
    let (validity, listed) = index.listing(&me, "INBOX").await.unwrap();
    assert_eq!(listed.len(), 8);
    let mut movers = Vec::new();
    for uid in uids {
        let index = index.clone();
        let me = me.clone();
        movers.push(tokio::spawn(async move {
            index
                .move_to(&me, "INBOX", validity, &[uid], "Archive")
                .await
                .unwrap()
        }));
    }
    let mut targets = Vec::new();
    for mover in movers {
        targets.extend(mover.await.unwrap().into_iter().map(|(_, _, uid)| uid));
    }
    targets.sort();
    targets.dedup();
    assert_eq!(targets.len(), 8);
    let (archive, listed) = index.listing(&me, "Archive").await.unwrap();
    assert_eq!(listed.len(), 8);
    opposed(index, &me, (validity, archive), &targets).await;
}

/// Moves both ways between two folders, flags and arrivals, all at once:
/// every one succeeds (no writer waits for another that waits for it).
async fn opposed(index: Arc<dyn Index>, me: &Owner, validities: (u32, u32), archived: &[Uid]) {
    let (inbox, archive) = validities;
    let now = pushmail_common::clock::now_ms();
    let mut tasks = Vec::new();
    for (n, uid) in archived.iter().copied().enumerate() {
        let (mover, owner) = (index.clone(), me.clone());
        tasks.push(tokio::spawn(async move {
            let (index, me) = (mover, owner);
            if n % 2 == 0 {
                index
                    .move_to(&me, "Archive", archive, &[uid], "INBOX")
                    .await
                    .map(|_| ())
            } else {
                let flag = FlagUpdate {
                    flagged: Some(true),
                    ..FlagUpdate::default()
                };
                index.set_flags(&me, "Archive", archive, &[uid], flag).await
            }
        }));
        let (filer, owner) = (index.clone(), me.clone());
        tasks.push(tokio::spawn(async move {
            let (index, me) = (filer, owner);
            let key = format!("again{n}");
            let (_, new) = index
                .file(&me, "INBOX", &arrival(&key, now))
                .await?
                .unwrap();
            index
                .move_to(&me, "INBOX", inbox, &[new], "Archive")
                .await
                .map(|_| ())
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let (_, inbox_now) = index.listing(me, "INBOX").await.unwrap();
    let (_, archive_now) = index.listing(me, "Archive").await.unwrap();
    assert_eq!((inbox_now.len(), archive_now.len()), (4, 12));
    assert_eq!(archive_now.values().filter(|f| f.flagged).count(), 4);
}

const KEEP: Retention = Retention {
    per_folder: 16,
    max_age: Duration::from_secs(3_600),
};

#[tokio::test]
async fn index_in_memory() {
    behaves(Arc::new(MemoryIndex::new())).await;
    races(Arc::new(MemoryIndex::new())).await;
}

#[tokio::test]
async fn index_in_postgres() {
    let database = TestDatabase::create().await.unwrap();
    let pool = sqlx::PgPool::connect(&database.url).await.unwrap();
    PgStates::open(pool.clone(), KEEP).await.unwrap();
    behaves(Arc::new(PgIndex::new(pool.clone()))).await;
    races(Arc::new(PgIndex::new(pool.clone()))).await;
    pool.close().await;
    database.drop_database().await.unwrap();
}

#[tokio::test]
async fn index_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pushmail_common::sqlite::open(&dir.path().join("mailbox.db"), &[])
        .await
        .unwrap();
    SqliteStates::open(pool.clone(), KEEP).await.unwrap();
    behaves(Arc::new(SqliteIndex::new(pool.clone()))).await;
    races(Arc::new(SqliteIndex::new(pool))).await;
}

fn gateway<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", credential(Service::Gateway))
            .parse()
            .unwrap(),
    );
    request
}

/// Polls `check` until it answers `Some`, for at most 60 s (a fresh
/// consumer group joins, then reads the topic from its start).
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn forwarded_mail_reaches_the_phones_mailbox_and_goes_with_its_account() {
    let mut node = BindingNode::start().await.unwrap();
    let tenant = node.tenant().await.unwrap();
    let account = node.forwarded(&tenant, "li@corp.example.cn").await.unwrap();
    let blobs = tempfile::tempdir().unwrap();
    let ingest = IngestNode::on_test_broker(ingest_config(node.addr, blobs.path()))
        .await
        .unwrap();
    // The mailbox service reads the volume ingest writes.
    let mailbox =
        MailboxNode::start_on_volume(node.addr, blobs.path(), kafka_bus().await.unwrap(), None)
            .await;
    let mut client = mailbox.client().await;

    let raw = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../services/ingest/tests/corpus/gb2312-subject.eml"
    ))
    .unwrap();
    swaks(ingest.smtp, "li@corp.example.cn", &raw)
        .await
        .unwrap();

    let (t, a) = (tenant.tenant_id.clone(), account.account_id.clone());
    let folders = folders_of(&mut client, &t, &a).await;
    let inbox = folders
        .iter()
        .find(|f| f.role() == pb::FolderRole::Inbox)
        .unwrap()
        .clone();
    assert!(folders.iter().any(|f| f.role() == pb::FolderRole::Sent));
    let synced = inbox_holding(&client, &t, &a, &inbox, 1).await;
    assert_eq!(synced.added.len(), 1);
    let summary = &synced.added[0];
    assert_eq!(summary.subject, "季度报告：请审阅");
    assert_eq!(summary.from.as_ref().unwrap().name, "张伟");
    assert_eq!(summary.rfc_message_id, "gb2312-1@example.cn");
    // The bytes as they were forwarded (after ingest's trace header).
    let fetched = raw_of(&mut client, &t, &a, &summary.message_id).await;
    assert!(
        String::from_utf8_lossy(&fetched).contains("gb2312-1@example.cn"),
        "{} bytes",
        fetched.len()
    );

    searched(&mut client, &t, &a, &summary.message_id).await;
    read_then_deleted(&mut client, &t, &a, &summary.message_id).await;
    told_to_other_phones(&a).await;

    // The account deleted in binding: its mailbox goes with it.
    node.admin
        .delete_account(authed(
            &tenant.api_key,
            binding::DeleteAccountRequest {
                tenant_id: t.clone(),
                account_id: a.clone(),
            },
        ))
        .await
        .unwrap();
    forgotten(&mailbox, &a).await;
    ingest.stop().await.unwrap();
    mailbox.stop().await;
    node.stop().await.unwrap();
}

type Client = pushmail_proto::mailbox::v1::mailbox_service_client::MailboxServiceClient<
    tonic::transport::Channel,
>;

/// A full sync of `inbox` once it lists at least `count` messages (the
/// mail goes through the broker first).
/// The store's search matches what the summary holds (here the sender's
/// Chinese name and the subject), in every folder when none is named,
/// within the received dates.
async fn searched(client: &mut Client, t: &str, a: &str, id: &str) {
    let mut search = async |text: &str, after: Option<i64>| {
        client
            .search(gateway(pb::SearchRequest {
                tenant_id: t.to_owned(),
                account_id: a.to_owned(),
                text: text.to_owned(),
                received_after: after.map(pushmail_common::clock::timestamp),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
    };
    for words in ["张伟", "季度报告", "ZHANGWEI@"] {
        let found = search(words, None).await;
        let ids: Vec<&str> = found.found.iter().map(|s| s.message_id.as_str()).collect();
        assert_eq!(ids, [id], "{words}");
    }
    assert!(search("no-such-words", None).await.found.is_empty());
    let tomorrow = pushmail_common::clock::now_ms() + 86_400_000;
    assert!(search("季度", Some(tomorrow)).await.found.is_empty());
}

async fn inbox_holding(
    client: &Client,
    t: &str,
    a: &str,
    inbox: &pb::Folder,
    count: usize,
) -> pb::SyncResponse {
    eventually("the mail in the inbox", || {
        let mut client = client.clone();
        let request = pb::SyncRequest {
            tenant_id: t.to_owned(),
            account_id: a.to_owned(),
            folder_id: inbox.folder_id.clone(),
            since_token: String::new(),
            window: 0,
        };
        async move {
            let synced = client.sync(gateway(request)).await.unwrap().into_inner();
            (synced.added.len() >= count).then_some(synced)
        }
    })
    .await
}

async fn folders_of(client: &mut Client, t: &str, a: &str) -> Vec<pb::Folder> {
    client
        .list_folders(gateway(pb::ListFoldersRequest {
            tenant_id: t.to_owned(),
            account_id: a.to_owned(),
        }))
        .await
        .unwrap()
        .into_inner()
        .folders
}

async fn raw_of(client: &mut Client, t: &str, a: &str, message_id: &str) -> Vec<u8> {
    use futures::StreamExt as _;
    let chunks: Vec<pb::RawChunk> = client
        .fetch_raw(gateway(pb::FetchRawRequest {
            tenant_id: t.to_owned(),
            account_id: a.to_owned(),
            message_id: message_id.to_owned(),
        }))
        .await
        .unwrap()
        .into_inner()
        .map(|c| c.unwrap())
        .collect()
        .await;
    chunks.into_iter().flat_map(|c| c.data).collect()
}

/// Read on the phone, then deleted: it goes to Trash.
async fn read_then_deleted(client: &mut Client, t: &str, a: &str, message_id: &str) {
    let (t, a) = (t.to_owned(), a.to_owned());
    client
        .set_flags(gateway(pb::SetFlagsRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
            message_ids: vec![message_id.to_owned()],
            update: Some(pb::FlagUpdate {
                seen: Some(true),
                ..Default::default()
            }),
            device_id: PHONE.to_owned(),
        }))
        .await
        .unwrap();
    client
        .delete(gateway(pb::DeleteRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
            message_ids: vec![message_id.to_owned()],
            permanent: false,
            device_id: PHONE.to_owned(),
        }))
        .await
        .unwrap();
    let folders = folders_of(client, &t, &a).await;
    let trash = folders
        .iter()
        .find(|f| f.role() == pb::FolderRole::Trash)
        .unwrap();
    assert_eq!((trash.total, trash.unread), (1, 0));
    let inbox_now = folders
        .iter()
        .find(|f| f.role() == pb::FolderRole::Inbox)
        .unwrap();
    assert_eq!(inbox_now.total, 0);
}

/// The phone the test's changes come from.
const PHONE: &str = "0193a4f0-0000-7000-8000-00000000d0d0";

/// The read and the delete, each told on `pushmail.mailbox.changed.v1`
/// with the folders they touched and the phone that made them.
async fn told_to_other_phones(account: &str) {
    use pushmail_common::bus::SubscribeOptions;
    use pushmail_proto::common::v1::MailboxChange;
    use pushmail_proto::topics::MAILBOX_CHANGED;
    let bus = kafka_bus().await.unwrap();
    let mut subscription = bus
        .subscribe(SubscribeOptions {
            group: pushmail_integration_tests::unique("changes"),
            topics: vec![MAILBOX_CHANGED.name().to_owned()],
        })
        .await
        .unwrap();
    let mut told = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while told.len() < 2 {
        let record = tokio::time::timeout_at(deadline.into(), subscription.next())
            .await
            .expect("two changes told within 60 s")
            .unwrap();
        let event = pushmail_common::bus::decode(MAILBOX_CHANGED, &record).unwrap();
        if event.account_id == account {
            told.push((event.change(), event.folders, event.origin_device_id));
        }
    }
    let phone = PHONE.to_owned();
    assert_eq!(
        told,
        [
            (
                MailboxChange::Flags,
                vec!["INBOX".to_owned()],
                phone.clone()
            ),
            (
                MailboxChange::Deleted,
                vec!["INBOX".to_owned(), "Trash".to_owned()],
                phone
            ),
        ]
    );
}

async fn forgotten(mailbox: &MailboxNode, account: &str) {
    let pool = sqlx::PgPool::connect(&mailbox.database.url).await.unwrap();
    eventually("the deleted account's mailbox forgotten", || {
        let (pool, account) = (pool.clone(), account.to_owned());
        async move {
            let (left,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM mailbox_local_folders WHERE account_id = $1")
                    .bind(&account)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            (left == 0).then_some(())
        }
    })
    .await;
    pool.close().await;
}

/// A POP3 account added with mail already on the server: ingest's first
/// poll files the newest of it (`backfill`), and the phone's inbox lists
/// it from the platform's store.
#[tokio::test]
async fn a_pop3_accounts_earlier_mail_is_in_the_phones_inbox() {
    let dovecot = pushmail_integration_tests::dovecot::Dovecot::start(&["earlier@example.net"])
        .await
        .unwrap();
    let user = dovecot.users[0].clone();
    for n in 0..2 {
        let raw = format!(
            "From: a@example.net\r\nTo: {}\r\nSubject: before {n}\r\n\
             Message-ID: <before-{n}-{}@example.net>\r\n\r\nbody {n}\r\n",
            user.address,
            uuid::Uuid::now_v7()
        );
        dovecot
            .deliver(&user.address, raw.as_bytes())
            .await
            .unwrap();
    }
    let mut node = BindingNode::start().await.unwrap();
    let tenant = node.tenant().await.unwrap();
    let account = node
        .mailbox_account(
            &tenant,
            &user,
            dovecot.pop3.port(),
            binding::AccountKind::ExternalPop3,
        )
        .await
        .unwrap();
    let blobs = tempfile::tempdir().unwrap();
    let ingest = IngestNode::on_test_broker(ingest_config(node.addr, blobs.path()))
        .await
        .unwrap();
    let mailbox =
        MailboxNode::start_on_volume(node.addr, blobs.path(), kafka_bus().await.unwrap(), None)
            .await;
    let mut client = mailbox.client().await;

    let (t, a) = (tenant.tenant_id.clone(), account.account_id.clone());
    let inbox = folders_of(&mut client, &t, &a)
        .await
        .into_iter()
        .find(|f| f.role() == pb::FolderRole::Inbox)
        .unwrap();
    let synced = inbox_holding(&client, &t, &a, &inbox, 2).await;
    let mut subjects: Vec<_> = synced.added.iter().map(|m| m.subject.clone()).collect();
    subjects.sort();
    assert_eq!(subjects, ["before 0", "before 1"]);
    ingest.stop().await.unwrap();
    mailbox.stop().await;
    node.stop().await.unwrap();
}
