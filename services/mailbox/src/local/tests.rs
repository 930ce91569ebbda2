//! The platform's own store through the one `Mailbox` trait and the sync
//! every backend shares, fed by the events ingest publishes.
#![allow(clippy::unwrap_used)] // a panic is the test failure report

use std::sync::Arc;

use prost::Message as _;
use pushmail_common::blob::{BlobStore, LocalBlobStore};
use pushmail_common::bus::{Handler, Headers, InboundRecord, header};
use pushmail_proto::events::v1 as events;
use pushmail_proto::topics::{BINDING_CHANGED, MAIL_ARRIVED};

use super::feed::Feed;
use super::*;
use crate::backend::{BackendError, Mailbox};
use crate::domain::{FolderId, MessageKey};
use crate::sync::{FolderState, MemoryStates, Scope, States, sync};

const TENANT: &str = "t1";
const ACCOUNT: &str = "a1";

fn owner() -> Owner {
    Owner {
        tenant: TENANT.into(),
        account: ACCOUNT.into(),
    }
}

struct World {
    _dir: tempfile::TempDir,
    blobs: Arc<dyn BlobStore>,
    index: Arc<dyn Index>,
    states: Arc<dyn States>,
    feed: Feed,
    offset: i64,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let blobs: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::new(dir.path()));
        let index: Arc<dyn Index> = Arc::new(MemoryIndex::new());
        let states: Arc<dyn States> =
            Arc::new(MemoryStates::new(16, std::time::Duration::from_secs(3600)));
        let feed = Feed {
            index: index.clone(),
            blobs: blobs.clone(),
            states: states.clone(),
        };
        Self {
            _dir: dir,
            blobs,
            index,
            states,
            feed,
            offset: 0,
        }
    }

    fn mailbox(&self) -> LocalMailbox {
        LocalMailbox::new(self.index.clone(), self.blobs.clone(), owner())
    }

    fn record(&mut self, topic: &str, tenant: &str, payload: Vec<u8>) -> InboundRecord {
        self.offset += 1;
        let mut headers = Headers::new();
        headers.insert(header::TENANT_ID.to_owned(), tenant.to_owned());
        InboundRecord {
            topic: topic.to_owned(),
            partition: 0,
            offset: self.offset,
            key: ACCOUNT.as_bytes().to_vec(),
            payload,
            headers,
            timestamp_ms: None,
        }
    }

    /// Ingest's part: the bytes in the blob store, then the event.
    async fn arrives(
        &mut self,
        raw: &[u8],
        key: &str,
        source: events::IngestSource,
    ) -> InboundRecord {
        let blob = self.blobs.put(raw).await.unwrap();
        let mail = events::MailArrived {
            meta: Some(pushmail_proto::common::v1::EventMeta {
                tenant_id: TENANT.into(),
                event_id: key.into(),
                ..Default::default()
            }),
            account_id: ACCOUNT.into(),
            idempotency_key: key.into(),
            blob_ref: blob.as_str().into(),
            size_bytes: raw.len() as u64,
            source: source.into(),
            received_at: Some(pushmail_common::clock::timestamp(1_700_000_000_000)),
            ..Default::default()
        };
        let record = self.record(MAIL_ARRIVED.name(), TENANT, mail.encode_to_vec());
        self.feed.handle(&record).await.unwrap();
        record
    }
}

fn mail(n: usize) -> Vec<u8> {
    format!(
        "From: =?GB2312?B?1cXI/Q==?= <zhang@example.com>\r\nTo: me@corp.example\r\n\
         Subject: note {n}\r\nMessage-ID: <n{n}@example.com>\r\n\
         Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\r\nbody of note {n}\r\n"
    )
    .into_bytes()
}

fn scope(folder: &str) -> Scope {
    Scope {
        tenant: TENANT.into(),
        account: ACCOUNT.into(),
        folder: FolderId::new(folder),
    }
}

/// Two forwarded mails filed (one of them twice), an IMAP one not; the
/// first sync of the inbox.
async fn two_filed(world: &mut World) -> (LocalMailbox, crate::sync::Synced, InboundRecord) {
    let first = world
        .arrives(&mail(1), "k1", events::IngestSource::Smtp)
        .await;
    world
        .arrives(&mail(2), "k2", events::IngestSource::Webhook)
        .await;
    // Redelivered: nothing new.
    world.feed.handle(&first).await.unwrap();
    // An IMAP account's mail stays upstream.
    world
        .arrives(&mail(3), "k3", events::IngestSource::Imap)
        .await;
    let mut mailbox = world.mailbox();
    let synced = sync(
        &mut mailbox,
        world.states.as_ref(),
        &scope("INBOX"),
        None,
        10,
    )
    .await
    .unwrap();
    (mailbox, synced, first)
}

#[tokio::test]
async fn forwarded_mail_is_filed_once_and_lists_with_its_summary() {
    let mut world = World::new();
    let (mut mailbox, synced, _) = two_filed(&mut world).await;
    let folders = mailbox.folders().await.unwrap();
    assert_eq!(
        folders.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
        ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"]
    );
    assert_eq!((folders[0].total, folders[0].unread), (2, 2));
    assert_eq!(synced.added.len(), 2);
    let newest = &synced.added[0].summary;
    assert_eq!(newest.subject, "note 2");
    assert_eq!(newest.from.as_ref().unwrap().name, "张三");
    assert_eq!(newest.rfc_message_id.as_deref(), Some("n2@example.com"));
    assert_eq!(newest.received_ms, Some(1_700_000_000_000));
    assert!(newest.snippet.contains("body of note 2"), "{newest:?}");
    assert_eq!(mailbox.raw(&synced.added[1].key).await.unwrap(), mail(1));
}

#[tokio::test]
async fn flags_and_moves_show_in_the_next_sync() {
    let mut world = World::new();
    let (mut mailbox, synced, first) = two_filed(&mut world).await;
    // Read and starred.
    let key = synced.added[1].key.clone();
    mailbox
        .set_flags(
            &key.folder,
            key.uid_validity,
            &[key.uid],
            FlagUpdate {
                seen: Some(true),
                flagged: Some(true),
                ..FlagUpdate::default()
            },
        )
        .await
        .unwrap();
    let next = sync(
        &mut mailbox,
        world.states.as_ref(),
        &scope("INBOX"),
        Some(&synced.token),
        10,
    )
    .await
    .unwrap();
    assert_eq!(next.changed.len(), 1);
    assert!(next.changed[0].1.seen && next.changed[0].1.flagged);
    // Filed away.
    let moved = mailbox
        .move_to(
            &key.folder,
            key.uid_validity,
            &[key.uid],
            &FolderId::new("Archive"),
        )
        .await
        .unwrap();
    let archived = moved[0].1.clone().unwrap();
    assert_eq!(archived.folder, FolderId::new("Archive"));
    let after = sync(
        &mut mailbox,
        world.states.as_ref(),
        &scope("INBOX"),
        Some(&next.token),
        10,
    )
    .await
    .unwrap();
    assert_eq!(after.removed, vec![key.clone()]);
    // It keeps its flags and bytes where it went; the old id names
    // nothing.
    let listed = mailbox
        .summaries(&archived.folder, archived.uid_validity, &[archived.uid])
        .await
        .unwrap();
    assert!(listed[0].summary.flags.flagged);
    assert_eq!(mailbox.raw(&archived).await.unwrap(), mail(1));
    assert!(matches!(
        mailbox.raw(&key).await,
        Err(BackendError::NoMessage(_))
    ));
    // Moved away and redelivered: still not filed again.
    world.feed.handle(&first).await.unwrap();
    let folders = world.mailbox().folders().await.unwrap();
    assert_eq!((folders[0].total, folders[0].unread), (1, 1));
}

#[tokio::test]
async fn sent_copies_deletes_and_bad_ids_behave_as_upstream() {
    let world = World::new();
    let mut mailbox = world.mailbox();
    let sent = FolderId::new("Sent");
    let copy = mailbox
        .append(
            &sent,
            &mail(9),
            crate::domain::Flags {
                seen: true,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(copy.folder, sent);
    assert_eq!(mailbox.raw(&copy).await.unwrap(), mail(9));
    // Its bytes are granted to the account like arrived mail.
    let blob = pushmail_common::blob::BlobRef::of(&mail(9));
    assert!(world.blobs.granted("t1/a1", &blob).await.unwrap());
    let listed = mailbox
        .summaries(&sent, copy.uid_validity, &[copy.uid])
        .await
        .unwrap();
    assert_eq!(listed[0].summary.subject, "note 9");
    assert!(listed[0].summary.flags.seen);

    // A renumbered id, an unknown folder.
    let stale = MessageKey {
        uid_validity: copy.uid_validity + 1,
        ..copy.clone()
    };
    assert!(matches!(
        mailbox.raw(&stale).await,
        Err(BackendError::NoMessage(_))
    ));
    assert!(matches!(
        mailbox.listing(&FolderId::new("Nope"), None).await,
        Err(BackendError::NoFolder(_))
    ));
    mailbox
        .expunge(&sent, copy.uid_validity, &[copy.uid])
        .await
        .unwrap();
    assert!(matches!(
        mailbox.raw(&copy).await,
        Err(BackendError::NoMessage(_))
    ));
    // UIDs are never reused.
    let again = mailbox
        .append(&sent, &mail(10), crate::domain::Flags::default())
        .await
        .unwrap()
        .unwrap();
    assert!(again.uid > copy.uid);
}

#[tokio::test]
async fn a_deleted_account_is_forgotten_with_its_tokens() {
    let mut world = World::new();
    world
        .arrives(&mail(1), "k1", events::IngestSource::Lmtp)
        .await;
    let token = world
        .states
        .save(&scope("INBOX"), &FolderState::empty(1))
        .await
        .unwrap();
    let change = events::BindingChanged {
        meta: Some(pushmail_proto::common::v1::EventMeta {
            tenant_id: TENANT.into(),
            ..Default::default()
        }),
        account_id: ACCOUNT.into(),
        kind: events::BindingChangeKind::AccountDeleted.into(),
        ..Default::default()
    };
    let record = world.record(BINDING_CHANGED.name(), TENANT, change.encode_to_vec());
    world.feed.handle(&record).await.unwrap();
    assert!(
        world
            .states
            .load(&scope("INBOX"), &token)
            .await
            .unwrap()
            .is_none()
    );
    let folders = world.mailbox().folders().await.unwrap();
    assert_eq!(folders[0].total, 0);
}

#[tokio::test]
async fn what_cannot_be_filed_is_skipped_not_retried() {
    let mut world = World::new();
    // Garbage, and an arrival whose bytes were swept before it was read.
    let garbage = world.record(MAIL_ARRIVED.name(), TENANT, b"\xff\x00garbage".to_vec());
    world.feed.handle(&garbage).await.unwrap();
    let gone = events::MailArrived {
        meta: Some(pushmail_proto::common::v1::EventMeta {
            tenant_id: TENANT.into(),
            ..Default::default()
        }),
        account_id: ACCOUNT.into(),
        idempotency_key: "gone".into(),
        blob_ref: pushmail_common::blob::BlobRef::of(b"never stored")
            .as_str()
            .into(),
        source: events::IngestSource::Smtp.into(),
        ..Default::default()
    };
    let record = world.record(MAIL_ARRIVED.name(), TENANT, gone.encode_to_vec());
    world.feed.handle(&record).await.unwrap();
    let folders = world.mailbox().folders().await.unwrap();
    assert_eq!(folders[0].total, 0);
}

#[tokio::test]
async fn retention_is_per_tenant() {
    let index = MemoryIndex::new();
    let now = pushmail_common::clock::now_ms();
    let day = 86_400_000;
    for (tenant, age_days) in [("t1", 5), ("t1", 1), ("t2", 5)] {
        let owner = Owner {
            tenant: tenant.into(),
            account: "a".into(),
        };
        index
            .file(
                &owner,
                "INBOX",
                &Arrival {
                    key: format!("{tenant}-{age_days}"),
                    blob: "sha256:00".into(),
                    size_bytes: 1,
                    received_ms: now - age_days * day,
                    flags: crate::domain::Flags::default(),
                    summary: "{}".into(),
                },
            )
            .await
            .unwrap();
    }
    let retention = Retention {
        days: 30,
        tenants: [("t1".to_owned(), 3)].into_iter().collect(),
    };
    assert_eq!(retention.sweep(&index).await.unwrap(), 1);
    let count = |tenant: &str| {
        let owner = Owner {
            tenant: tenant.into(),
            account: "a".into(),
        };
        let index = &index;
        async move { index.listing(&owner, "INBOX").await.unwrap().1.len() }
    };
    assert_eq!((count("t1").await, count("t2").await), (1, 1));
    // Keeping everything keeps everything.
    let keep = Retention::default();
    assert_eq!(keep.sweep(&index).await.unwrap(), 0);
}
