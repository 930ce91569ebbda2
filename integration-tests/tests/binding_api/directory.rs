//! The tenant's directory, which phones' mail apps complete addresses
//! from: the activesync service alone may read it; it lists the tenant's
//! accounts in the domains the operator gave it, never another tenant's,
//! never a subscriber's own mailbox elsewhere; an empty query is refused
//! rather than answered with everyone.

use super::*;

async fn search(
    client: &mut BindingServiceClient<Channel>,
    caller: Service,
    tenant: &TestTenant,
    query: &str,
    limit: u32,
) -> Result<tonic::Response<pb::SearchDirectoryResponse>, Status> {
    client
        .search_directory(as_service(
            caller,
            pb::SearchDirectoryRequest {
                tenant_id: tenant.id.clone(),
                query: query.to_owned(),
                limit,
            },
        ))
        .await
}

fn addresses(found: tonic::Response<pb::SearchDirectoryResponse>) -> Vec<String> {
    found
        .into_inner()
        .entries
        .into_iter()
        .map(|e| e.address)
        .collect()
}

#[tokio::test]
async fn the_directory_lists_a_tenants_own_domains_to_activesync_only() {
    let platform = Platform::new().await;
    let replica = platform.replica().await;
    let mut admin = replica.admin().await;
    let mut internal = replica.internal().await;
    let alice = tenant(&mut admin, 10).await;
    let mallory = tenant(&mut admin, 10).await;
    let domain = format!("{}.example", unique("dir"));
    admin
        .set_tenant_domains(operator(pb::SetTenantDomainsRequest {
            tenant_id: alice.id.clone(),
            domains: vec![domain.clone()],
        }))
        .await
        .unwrap();
    for address in [
        format!("zoe@{domain}"),
        format!("adam@sales.{domain}"),
        "alice.private@public-mail.example".to_owned(),
    ] {
        account(&mut admin, &alice, &address).await;
    }
    account(&mut admin, &mallory, &format!("mole@{domain}")).await;

    let found = search(&mut internal, Service::ActiveSync, &alice, " DIR ", 0)
        .await
        .unwrap();
    assert_eq!(
        addresses(found),
        [format!("adam@sales.{domain}"), format!("zoe@{domain}")]
    );
    // "example" is in every address; the private mailbox stays out.
    let all = search(&mut internal, Service::ActiveSync, &alice, "example", 0)
        .await
        .unwrap();
    assert_eq!(addresses(all).len(), 2);
    let one = search(&mut internal, Service::ActiveSync, &alice, "example", 1)
        .await
        .unwrap();
    assert_eq!(addresses(one).len(), 1);
    assert!(
        addresses(
            search(&mut internal, Service::ActiveSync, &mallory, &domain, 0)
                .await
                .unwrap()
        )
        .is_empty(),
        "mallory owns no domain"
    );

    refused(
        search(&mut internal, Service::ActiveSync, &alice, "  ", 0).await,
        Code::InvalidArgument,
        "query",
    );
    refused(
        search(
            &mut internal,
            Service::ActiveSync,
            &alice,
            &"a".repeat(257),
            0,
        )
        .await,
        Code::InvalidArgument,
        "query",
    );
    for other in [Service::Ingest, Service::Dispatch, Service::Gateway] {
        refused(
            search(&mut internal, other, &alice, "dir", 0).await,
            Code::PermissionDenied,
            "",
        );
    }
}
