use std::path::Path;

use pushmail_common::blob::LocalBlobStore;

use super::*;

struct Fixture {
    _dir: tempfile::TempDir,
    uploads: Uploads,
    ledger: Arc<MemoryLedger>,
    staging: Staging,
    blobs: Arc<LocalBlobStore>,
}

fn limits() -> UploadLimits {
    UploadLimits {
        max_bytes: 1_000,
        max_chunk_bytes: 100,
        max_open: 3,
        ttl: Duration::from_secs(3_600),
    }
}

fn fixture_with(limits: UploadLimits) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Arc::new(LocalBlobStore::new(dir.path()));
    let staging = Staging::new(blobs.staging(), 0);
    let ledger = Arc::new(MemoryLedger::default());
    Fixture {
        uploads: Uploads::new(ledger.clone(), staging.clone(), blobs.clone(), limits),
        _dir: dir,
        ledger,
        staging,
        blobs,
    }
}

fn fixture() -> Fixture {
    fixture_with(limits())
}

fn alice() -> Owner {
    Owner {
        tenant: "t1".into(),
        account: "alice".into(),
    }
}

fn bob() -> Owner {
    Owner {
        tenant: "t1".into(),
        account: "bob".into(),
    }
}

fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

fn staged_files(root: &Path) -> usize {
    walk(root)
}

fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .map(|e| e.unwrap().path())
            .map(|p| if p.is_dir() { walk(&p) } else { 1 })
            .sum()
    })
}

#[tokio::test]
async fn chunks_at_the_held_offset_complete_into_a_granted_blob() {
    let f = fixture();
    let bytes = content(250);
    let begun = f
        .uploads
        .begin(alice(), "C:\\photos\\report.pdf", "Application/PDF", 250)
        .await
        .unwrap();
    assert_eq!(
        begun.file_name, "report.pdf",
        "the phone's path is not kept"
    );
    assert_eq!(begun.content_type, "application/pdf");
    assert_eq!((begun.received, begun.complete()), (0, false));
    let id = begun.id.as_str().to_owned();
    let mut at = 0;
    for piece in bytes.chunks(100) {
        let upload = f
            .uploads
            .chunk(&alice(), &id, at, piece.to_vec())
            .await
            .unwrap();
        at += piece.len() as u64;
        assert_eq!(upload.received, at);
    }
    let done = f.uploads.get(&alice(), &id).await.unwrap();
    assert!(done.complete());
    let blob = BlobRef::parse(done.blob.as_deref().unwrap()).unwrap();
    assert_eq!(f.blobs.get(&blob).await.unwrap().unwrap(), bytes);
    assert!(f.blobs.granted("t1/alice", &blob).await.unwrap());
    assert_eq!(staged_files(&f.blobs.staging()), 0, "chunks unstaged");

    let files = f.uploads.files(&alice(), &[id], 10_000).await.unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].name, "report.pdf");
    assert_eq!(files[0].content_type, "application/pdf");
    assert_eq!(files[0].bytes, bytes, "byte for byte");
}

#[tokio::test]
async fn a_repeated_chunk_is_refused_with_where_to_resume() {
    let f = fixture();
    let bytes = content(150);
    let id = f
        .uploads
        .begin(alice(), "a.bin", "", 150)
        .await
        .unwrap()
        .id
        .as_str()
        .to_owned();
    f.uploads
        .chunk(&alice(), &id, 0, bytes[..100].to_vec())
        .await
        .unwrap();
    // The phone lost the answer and sends the first chunk again.
    let again = f
        .uploads
        .chunk(&alice(), &id, 0, bytes[..100].to_vec())
        .await;
    assert!(
        matches!(
            again,
            Err(UploadError::Offset {
                offset: 0,
                received: 100
            })
        ),
        "{again:?}"
    );
    // A chunk from the future is refused the same way.
    let ahead = f
        .uploads
        .chunk(&alice(), &id, 120, bytes[120..].to_vec())
        .await;
    assert!(matches!(
        ahead,
        Err(UploadError::Offset { received: 100, .. })
    ));
    let done = f
        .uploads
        .chunk(&alice(), &id, 100, bytes[100..].to_vec())
        .await
        .unwrap();
    assert!(done.complete());
    assert_eq!(done.content_type, "application/octet-stream");
    let files = f
        .uploads
        .files(&alice(), std::slice::from_ref(&id), 10_000)
        .await
        .unwrap();
    assert_eq!(files[0].bytes, bytes, "counted once");
    let after = f.uploads.chunk(&alice(), &id, 150, vec![1]).await;
    assert!(matches!(
        after,
        Err(UploadError::BeyondEnd {
            end: 151,
            total: 150
        })
    ));
}

#[tokio::test]
async fn another_account_neither_sees_nor_uses_an_upload() {
    let f = fixture();
    let id = f
        .uploads
        .begin(alice(), "a.txt", "text/plain", 3)
        .await
        .unwrap()
        .id
        .as_str()
        .to_owned();
    assert!(matches!(
        f.uploads.chunk(&bob(), &id, 0, b"abc".to_vec()).await,
        Err(UploadError::NotFound)
    ));
    f.uploads
        .chunk(&alice(), &id, 0, b"abc".to_vec())
        .await
        .unwrap();
    assert!(matches!(
        f.uploads.get(&bob(), &id).await,
        Err(UploadError::NotFound)
    ));
    assert!(matches!(
        f.uploads.files(&bob(), &[id], 100).await,
        Err(UploadError::NotFound)
    ));
    assert!(matches!(
        f.uploads.get(&alice(), "../../etc/passwd").await,
        Err(UploadError::NotFound)
    ));
}

#[tokio::test]
async fn bounds_and_bad_input_get_clear_refusals() {
    let f = fixture();
    assert!(matches!(
        f.uploads.begin(alice(), "big", "", 1_001).await,
        Err(UploadError::TooLarge {
            total: 1_001,
            max: 1_000
        })
    ));
    assert!(matches!(
        f.uploads.begin(alice(), "a\r\nBcc: x", "", 1).await,
        Err(UploadError::BadName(_))
    ));
    assert!(matches!(
        f.uploads.begin(alice(), &"n".repeat(300), "", 1).await,
        Err(UploadError::BadName(_))
    ));
    for bad in ["text", "text/", "text/plain; charset=x", "te xt/plain"] {
        assert!(
            matches!(
                f.uploads.begin(alice(), "a", bad, 1).await,
                Err(UploadError::BadContentType(_))
            ),
            "{bad}"
        );
    }
    let upload = f.uploads.begin(alice(), "..", "", 150).await.unwrap();
    assert_eq!(upload.file_name, "attachment");
    let id = upload.id.as_str();
    assert!(matches!(
        f.uploads.chunk(&alice(), id, 0, vec![]).await,
        Err(UploadError::EmptyChunk)
    ));
    assert!(matches!(
        f.uploads.chunk(&alice(), id, 0, vec![0; 101]).await,
        Err(UploadError::ChunkTooLarge { len: 101, max: 100 })
    ));
    f.uploads
        .chunk(&alice(), id, 0, vec![0; 100])
        .await
        .unwrap();
    assert!(matches!(
        f.uploads.chunk(&alice(), id, 100, vec![0; 51]).await,
        Err(UploadError::BeyondEnd {
            end: 151,
            total: 150
        })
    ));
    assert_eq!(f.uploads.get(&alice(), id).await.unwrap().received, 100);
}

#[tokio::test]
async fn an_account_has_a_bounded_number_of_uploads_in_progress() {
    let f = fixture();
    for _ in 0..3 {
        f.uploads.begin(alice(), "a", "", 10).await.unwrap();
    }
    assert!(matches!(
        f.uploads.begin(alice(), "a", "", 10).await,
        Err(UploadError::TooManyOpen { max: 3 })
    ));
    // Others are not held back, and complete uploads do not count.
    f.uploads.begin(bob(), "b", "", 10).await.unwrap();
    let empty = f.uploads.begin(bob(), "empty", "", 0).await.unwrap();
    assert!(empty.complete(), "nothing to wait for");
    for _ in 0..2 {
        f.uploads.begin(bob(), "b", "", 10).await.unwrap();
    }
}

#[tokio::test]
async fn a_send_takes_only_complete_uploads_within_bounds() {
    let f = fixture();
    let partial = f.uploads.begin(alice(), "p", "", 200).await.unwrap();
    f.uploads
        .chunk(&alice(), partial.id.as_str(), 0, vec![1; 100])
        .await
        .unwrap();
    let refused = f
        .uploads
        .files(&alice(), &[partial.id.as_str().to_owned()], 10_000)
        .await;
    assert!(
        matches!(
            refused,
            Err(UploadError::Incomplete {
                received: 100,
                total: 200,
                ..
            })
        ),
        "{refused:?}"
    );
    let whole = f.uploads.begin(alice(), "w", "", 60).await.unwrap();
    f.uploads
        .chunk(&alice(), whole.id.as_str(), 0, vec![2; 60])
        .await
        .unwrap();
    let too_much = f
        .uploads
        .files(&alice(), &[whole.id.as_str().to_owned()], 59)
        .await;
    assert!(matches!(
        too_much,
        Err(UploadError::TooMuchToSend { bytes: 60, .. })
    ));
}

#[tokio::test]
async fn an_upload_never_completed_is_swept_with_its_files() {
    let f = fixture_with(UploadLimits {
        ttl: Duration::ZERO,
        ..limits()
    });
    let stalled = Upload {
        id: UploadId::new(),
        owner: alice(),
        file_name: "s".into(),
        content_type: "application/octet-stream".into(),
        total: 100,
        received: 0,
        blob: None,
        created_ms: now_ms(),
        expires_ms: now_ms() + 3_600_000,
    };
    f.ledger.create(&stalled, 10).await.unwrap();
    f.uploads
        .chunk(&alice(), stalled.id.as_str(), 0, vec![3; 40])
        .await
        .unwrap();
    assert_eq!(staged_files(&f.blobs.staging()), 1);
    // Its time runs out.
    f.ledger.expire_for_tests(&stalled.id);
    // And a crash once left files of an upload the ledger forgot.
    let forgotten = UploadId::new();
    f.staging.write(&forgotten, 0, vec![9; 5]).await.unwrap();

    let swept = f.uploads.sweep().await.unwrap();
    assert_eq!(
        swept,
        Swept {
            expired: 1,
            orphans: 1
        }
    );
    assert_eq!(staged_files(&f.blobs.staging()), 0);
    assert!(matches!(
        f.uploads.get(&alice(), stalled.id.as_str()).await,
        Err(UploadError::NotFound)
    ));
    assert_eq!(f.uploads.sweep().await.unwrap(), Swept::default());
}

#[tokio::test]
async fn an_upload_a_crash_left_unassembled_is_finished_when_asked() {
    let f = fixture();
    let upload = f.uploads.begin(alice(), "c", "", 5).await.unwrap();
    // The last chunk was recorded, then the process died before assembly.
    let file = f
        .staging
        .write(&upload.id, 0, b"hello".to_vec())
        .await
        .unwrap();
    let chunk = Chunk {
        offset: 0,
        len: 5,
        file,
    };
    let appended = f
        .ledger
        .append(&alice(), &upload.id, &chunk, now_ms())
        .await
        .unwrap();
    assert!(matches!(appended, Appended::Accepted(ref u) if !u.complete()));
    let files = f
        .uploads
        .files(&alice(), &[upload.id.as_str().to_owned()], 100)
        .await
        .unwrap();
    assert_eq!(files[0].bytes, b"hello");
}

#[test]
fn ids_are_checked_before_they_name_a_path() {
    assert!(UploadId::parse(UploadId::new().as_str()).is_some());
    for bad in [
        "",
        "../x",
        &"A".repeat(32),
        &"0".repeat(31),
        &"0".repeat(33),
    ] {
        assert!(UploadId::parse(bad).is_none(), "{bad}");
    }
}

#[tokio::test]
async fn an_upload_whose_staged_bytes_are_lost_is_forgotten_not_retried_for_ever() {
    let f = fixture();
    let upload = f.uploads.begin(alice(), "d", "", 150).await.unwrap();
    let id = upload.id.as_str().to_owned();
    f.uploads
        .chunk(&alice(), &id, 0, vec![1; 100])
        .await
        .unwrap();
    // The volume lost the first chunk's file.
    std::fs::remove_dir_all(f.blobs.staging().join(&id)).unwrap();
    let last = f.uploads.chunk(&alice(), &id, 100, vec![2; 50]).await;
    assert!(matches!(last, Err(UploadError::Damaged { .. })), "{last:?}");
    assert!(matches!(
        f.uploads.get(&alice(), &id).await,
        Err(UploadError::NotFound)
    ));
    assert_eq!(staged_files(&f.blobs.staging()), 0);
}

#[tokio::test]
async fn a_send_naming_too_many_uploads_is_refused_before_any_is_read() {
    let f = fixture();
    let ids: Vec<String> = (0..=MAX_PER_SEND)
        .map(|_| UploadId::new().as_str().to_owned())
        .collect();
    let refused = f.uploads.files(&alice(), &ids, 10_000).await;
    assert!(
        matches!(refused, Err(UploadError::TooMuchToSend { count, .. }) if count == MAX_PER_SEND + 1),
        "{refused:?}"
    );
}
