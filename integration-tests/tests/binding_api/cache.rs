//! The delivery-target cache: a change is seen at once by the replica that
//! made it, and by every other replica within the staleness bound.

use super::*;

#[tokio::test]
async fn changes_reach_every_replica_within_the_staleness_bound() {
    let platform = Platform::new().await;
    let mut config = platform.config();
    config.cache.local_ttl_ms = 300;
    config.cache.max_staleness_ms = 600;
    let first = platform.replica_with(config.clone()).await;
    let second = platform.replica_with(config.clone()).await;
    let mut admin = first.admin().await;
    let tenant = tenant(&mut admin, 100).await;
    let mut events = platform.events(&tenant.id).await;
    let account = account(&mut admin, &tenant, "cache@example.net").await;
    let msisdn = number();
    let binding = bind(&mut admin, &mut events, &tenant, &account, &msisdn).await;

    // Both replicas warm (the second from Redis or the database).
    for replica in [&first, &second] {
        for _ in 0..3 {
            assert_eq!(targets(replica, &tenant, &account).await.len(), 1);
        }
    }
    // A new device through the first replica: it sees it at once.
    admin
        .register_device(authed(
            &tenant.key,
            pb::RegisterDeviceRequest {
                tenant_id: tenant.id.clone(),
                msisdn: msisdn.clone(),
                label: "p".to_owned(),
                has_push_client: true,
            },
        ))
        .await
        .unwrap();
    assert!(
        !targets(&first, &tenant, &account).await[0]
            .device_id
            .is_empty(),
        "the changing replica is never stale"
    );
    // Revoke the binding through the first replica.
    admin
        .revoke_binding(authed(
            &tenant.key,
            pb::RevokeBindingRequest {
                tenant_id: tenant.id.clone(),
                binding_id: binding.binding_id.clone(),
            },
        ))
        .await
        .unwrap();
    assert!(targets(&first, &tenant, &account).await.is_empty());
    // The second may answer from its own layer until that expires; past
    // the bound it must not.
    tokio::time::sleep(Duration::from_millis(config.cache.max_staleness_ms)).await;
    assert!(
        targets(&second, &tenant, &account).await.is_empty(),
        "stale past max_staleness_ms"
    );

    // Cold replicas read a changed account from Redis only if current:
    // a third replica, started after the change, agrees.
    let third = platform.replica_with(config.clone()).await;
    assert!(targets(&third, &tenant, &account).await.is_empty());
    platform.finish(vec![first, second, third]).await;
}

#[tokio::test]
async fn without_the_cache_every_lookup_reads_the_database() {
    let platform = Platform::new().await;
    let mut config = platform.config();
    config.cache.enabled = false;
    let replica = platform.replica_with(config).await;
    let mut admin = replica.admin().await;
    let tenant = tenant(&mut admin, 100).await;
    let mut events = platform.events(&tenant.id).await;
    let account = account(&mut admin, &tenant, "nocache@example.net").await;
    let msisdn = number();
    bind(&mut admin, &mut events, &tenant, &account, &msisdn).await;
    assert_eq!(targets(&replica, &tenant, &account).await.len(), 1);
    platform.finish(vec![replica]).await;
}
