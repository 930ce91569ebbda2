//! Parse → blob → `MailArrived` on the bus, and what each failure means to
//! the caller (retry or refuse).

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::sync::Arc;

use prost::Message as _;
use pushmail_common::blob::{BlobRef, BlobStore, LocalBlobStore};
use pushmail_common::bus::{EventBus, MemoryBus, MemoryBusConfig, SubscribeOptions, header};
use pushmail_ingest::arrival::{AnnounceError, Announcer, Arrival, Source};
use pushmail_ingest::mail::Limits;
use pushmail_proto::events::v1::{IngestSource, MailArrived};
use pushmail_proto::topics::MAIL_ARRIVED;

fn bus(capacity: usize, timeout_ms: u64) -> Arc<dyn EventBus> {
    Arc::new(MemoryBus::new(&MemoryBusConfig {
        partition_capacity: capacity,
        partitions: 3,
        publish_timeout_ms: timeout_ms,
    }))
}

fn arrival(uid: u32) -> Arrival {
    Arrival {
        tenant: "tenant-1".into(),
        account: "account-1".into(),
        mailbox: "INBOX".into(),
        uid_validity: 9,
        uid,
        source: Source::Imap,
        received_at_ms: 1_764_000_000_000,
        full_size: None,
        origin: None,
    }
}

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/corpus/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[tokio::test]
async fn a_message_becomes_a_durable_event_with_its_raw_bytes_stored() {
    let dir = tempfile::tempdir().unwrap();
    let blobs: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::new(dir.path()));
    let bus = bus(1_000, 1_000);
    bus.ensure_topic(MAIL_ARRIVED.name(), 3).await.unwrap();
    let mut subscription = bus
        .subscribe(SubscribeOptions {
            group: "test".into(),
            topics: vec![MAIL_ARRIVED.name().into()],
        })
        .await
        .unwrap();
    let announcer = Announcer::new(bus.clone(), blobs.clone(), Limits::default());
    let raw = corpus("nested-attachments.eml");
    let event = announcer.announce(&arrival(42), &raw).await.unwrap();

    let record = subscription.next().await.unwrap();
    assert_eq!(
        record.key, b"account-1",
        "keyed by account: per-account order"
    );
    assert_eq!(record.headers[header::TENANT_ID], "tenant-1");
    let received = MailArrived::decode(record.payload.as_slice()).unwrap();
    assert_eq!(received, event);
    assert_eq!(received.idempotency_key, "imap:account-1:INBOX:9:42");
    assert_eq!((received.uid_validity, received.uid), (9, 42));
    assert_eq!(received.source(), IngestSource::Imap);
    assert_eq!(received.message_id, "nested-1@example.net");
    let summary = received.summary.unwrap();
    assert_eq!(summary.subject, "Q3 numbers");
    assert_eq!(summary.from.unwrap().address, "boss@example.net");
    assert_eq!(received.attachments.len(), 2);
    assert_eq!(received.size_bytes, raw.len() as u64);
    let stored = blobs
        .get(&BlobRef::parse(&received.blob_ref).unwrap())
        .await
        .unwrap();
    assert_eq!(
        stored.as_deref(),
        Some(raw.as_slice()),
        "the raw message is kept by its hash"
    );
}

#[tokio::test]
async fn garbage_is_refused_for_good_and_a_full_bus_asks_for_a_retry() {
    let dir = tempfile::tempdir().unwrap();
    let blobs: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::new(dir.path()));
    let bus = bus(1, 50);
    bus.ensure_topic(MAIL_ARRIVED.name(), 3).await.unwrap();
    // A group that never reads: the partition fills up.
    let _slow = bus
        .subscribe(SubscribeOptions {
            group: "slow".into(),
            topics: vec![MAIL_ARRIVED.name().into()],
        })
        .await
        .unwrap();
    let announcer = Announcer::new(bus, blobs, Limits::default());

    let err = announcer
        .announce(&arrival(1), b"this is not mail")
        .await
        .unwrap_err();
    assert!(
        matches!(err, AnnounceError::Parse(_)) && !err.is_transient(),
        "{err}"
    );

    announcer
        .announce(&arrival(1), &corpus("big5-subject.eml"))
        .await
        .unwrap();
    let err = announcer
        .announce(&arrival(2), &corpus("big5-subject.eml"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AnnounceError::Bus(_)) && err.is_transient(),
        "{err}"
    );
}
