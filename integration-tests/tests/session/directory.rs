//! One behaviour for both directories: Redis and in-process.

use std::sync::Arc;

use pushmail_session::directory::{Directory, MemoryDirectory, RedisDirectory};

use super::*;

async fn behaves(directory: Arc<dyn Directory>) {
    let device = uuid::Uuid::now_v7().to_string();
    let lease = Duration::from_millis(300);
    assert_eq!(directory.lookup(&device).await.unwrap(), None);
    assert_eq!(
        directory.claim(&device, "http://a", lease).await.unwrap(),
        None
    );
    assert_eq!(
        directory.lookup(&device).await.unwrap().as_deref(),
        Some("http://a")
    );
    // B takes over and learns who held it.
    assert_eq!(
        directory
            .claim(&device, "http://b", lease)
            .await
            .unwrap()
            .as_deref(),
        Some("http://a")
    );
    assert!(
        !directory.renew(&device, "http://a", lease).await.unwrap(),
        "A lost it"
    );
    let other = uuid::Uuid::now_v7().to_string();
    directory.claim(&other, "http://a", lease).await.unwrap();
    assert_eq!(
        directory
            .renew_many(
                "http://b",
                &[(&device, lease), (&other, lease), ("never-seen", lease)]
            )
            .await
            .unwrap(),
        vec![true, false, false],
        "one answer per lease, in order"
    );
    assert!(
        directory
            .renew_many("http://b", &[])
            .await
            .unwrap()
            .is_empty()
    );
    directory.release(&other, "http://a").await.unwrap();
    directory.release(&device, "http://a").await.unwrap();
    assert_eq!(
        directory.lookup(&device).await.unwrap().as_deref(),
        Some("http://b"),
        "A cannot release B's lease"
    );
    // Renewed leases live on; expired ones are never routed to.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(directory.renew(&device, "http://b", lease).await.unwrap());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        directory.lookup(&device).await.unwrap().as_deref(),
        Some("http://b")
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(directory.lookup(&device).await.unwrap(), None, "expired");
    assert!(
        !directory.renew(&device, "http://b", lease).await.unwrap(),
        "an expired lease is not revived"
    );
    assert_eq!(
        directory.claim(&device, "http://c", lease).await.unwrap(),
        None,
        "nobody held it"
    );
    directory.release(&device, "http://c").await.unwrap();
    assert_eq!(directory.lookup(&device).await.unwrap(), None);

    // A batch renews each lease for its own length.
    let (short, long) = (
        uuid::Uuid::now_v7().to_string(),
        uuid::Uuid::now_v7().to_string(),
    );
    directory.claim(&short, "http://d", lease).await.unwrap();
    directory.claim(&long, "http://d", lease).await.unwrap();
    let batch = [
        (short.as_str(), Duration::from_millis(100)),
        (long.as_str(), Duration::from_secs(30)),
    ];
    assert_eq!(
        directory.renew_many("http://d", &batch).await.unwrap(),
        vec![true, true]
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        directory.lookup(&short).await.unwrap(),
        None,
        "its own 100 ms"
    );
    assert_eq!(
        directory.lookup(&long).await.unwrap().as_deref(),
        Some("http://d"),
        "its own 30 s, past the claim's 300 ms"
    );
    directory.release(&long, "http://d").await.unwrap();
}

#[tokio::test]
async fn memory_directory_behaves() {
    behaves(Arc::new(MemoryDirectory::default())).await;
}

#[tokio::test]
async fn redis_directory_behaves() {
    let config = pushmail_integration_tests::redis_config();
    let redis = pushmail_common::redis::connect(&config)
        .await
        .expect("redis");
    behaves(Arc::new(RedisDirectory::new(redis, &config.key_prefix))).await;
}
