//! Address completion on a stock mail app: pyactivesync (PyPI) searches
//! the global address list of its tenant through the front door, which
//! asks binding (PostgreSQL) for the tenant's directory. Colleagues in the
//! tenant's domains are found, sorted and paged by the phone's range; a
//! colleague's private mailbox elsewhere and another tenant's accounts are
//! not; a hostile range is refused with the store's status, which libwbxml
//! reads.

#![allow(
    clippy::too_many_lines,
    reason = "a test reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use pushmail_integration_tests::activesync::{
    Front, basic, phone_of, post, provisioned, pyactivesync, wbxml2xml,
};
use pushmail_integration_tests::nodes::BindingNode;
use pushmail_integration_tests::{OPERATOR_TOKEN, authed, unique};
use pushmail_proto::binding::v1 as pb;
use pushmail_wbxml::{Element, tag};
use serde_json::Value;

const DEVICE: &str = "galsearch01";

/// Searches the GAL for each query given, printing the addresses found
/// per query.
const SEARCH: &str = r#"
import sys, json
from pyactivesync import Client
server, user, password, device, limit = sys.argv[1:6]
out = {}
with Client(server=server, username=user, password=password, device_id=device) as c:
    c.provision()
    for query in sys.argv[6:]:
        found = c.search_gal(query, max_results=int(limit))
        out[query] = [e.email_address for e in found if e.email_address]
        out[query + "/names"] = [e.display_name for e in found if e.display_name]
print(json.dumps(out))
"#;

fn gal_search(query: &str, range: &str) -> Vec<u8> {
    let store = Element::of(tag("Search", "Store"))
        .with(Element::text_of(tag("Search", "Name"), "GAL"))
        .with(Element::text_of(tag("Search", "Query"), query))
        .with(
            Element::of(tag("Search", "Options"))
                .with(Element::text_of(tag("Search", "Range"), range)),
        );
    pushmail_wbxml::encode(&Element::of(tag("Search", "Search")).with(store)).unwrap()
}

#[tokio::test]
async fn a_stock_mail_app_completes_addresses_from_its_tenants_directory() {
    let mut binding = BindingNode::start().await.unwrap();
    let tenant = binding.tenant().await.unwrap();
    let other = binding.tenant().await.unwrap();
    let domain = format!("{}.example", unique("gal"));
    binding
        .admin
        .set_tenant_domains(authed(
            OPERATOR_TOKEN,
            pb::SetTenantDomainsRequest {
                tenant_id: tenant.tenant_id.clone(),
                domains: vec![domain.clone()],
            },
        ))
        .await
        .unwrap();
    let me = format!("me@{domain}");
    let account = binding.forwarded(&tenant, &me).await.unwrap();
    for colleague in ["anna.li", "andrew", "bob"] {
        binding
            .forwarded(&tenant, &format!("{colleague}@{domain}"))
            .await
            .unwrap();
    }
    // A subscriber's own mailbox elsewhere, and another tenant's account
    // at a name that matches: neither is anyone's to complete.
    binding
        .account(
            &tenant,
            "anne.private@public-mail.example",
            pb::AccountKind::EnterpriseForwarded,
            None,
        )
        .await
        .unwrap();
    binding
        .forwarded(&other, &format!("{}@rival.example", unique("anders")))
        .await
        .unwrap();
    let phone = phone_of(&mut binding.api, tenant, account, me.clone()).await;
    let certs = tempfile::tempdir().unwrap();
    let front = Front::start(binding.addr, Some(certs.path())).await;
    // Plain HTTP, for the requests written by hand.
    let replica = Front::start(binding.addr, None).await;

    let out = pyactivesync(
        &front,
        certs.path(),
        &phone,
        SEARCH,
        &[DEVICE, "10", "an", "AND", "zz-nobody"],
    )
    .await;
    let out: Value = serde_json::from_str(&out).unwrap();
    let an = [format!("andrew@{domain}"), format!("anna.li@{domain}")];
    assert_eq!(out["an"], serde_json::json!(an), "{out}");
    assert_eq!(out["AND"], serde_json::json!([&an[0]]), "any case: {out}");
    assert_eq!(out["an/names"], serde_json::json!(an), "{out}");
    assert_eq!(out["zz-nobody"], serde_json::json!([]), "{out}");
    // The phone's range pages: one result asked, one given.
    let first = pyactivesync(&front, certs.path(), &phone, SEARCH, &[DEVICE, "1", "an"]).await;
    let first: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["an"], serde_json::json!([&an[0]]), "{first}");

    // By hand, read by libwbxml: the second page, and a window of a
    // million refused by the store's status, the request understood.
    let auth = basic(&phone.address, &phone.password);
    let line = format!(
        "Cmd=Search&User={}&DeviceId={DEVICE}&DeviceType=iPhone",
        phone.address
    );
    let key = provisioned(&replica, &line.replace("Search", "Provision"), &auth).await;
    let second = post(
        replica.addr,
        &line,
        &auth,
        Some(&key),
        &gal_search("an", "1-1"),
    )
    .await;
    assert_eq!(second.status, 200);
    let xml = wbxml2xml(&second.body);
    assert!(
        xml.contains(&format!(">anna.li@{domain}</EmailAddress>")),
        "{xml}"
    );
    assert!(xml.contains("<Range>1-1</Range>"), "{xml}");
    assert!(xml.contains("<Total>2</Total>"), "{xml}");
    assert!(!xml.contains("andrew"), "{xml}");
    let hostile = post(
        replica.addr,
        &line,
        &auth,
        Some(&key),
        &gal_search("an", "0-999999"),
    )
    .await;
    let xml = wbxml2xml(&hostile.body);
    let tree = pushmail_wbxml::decode(&hostile.body).unwrap();
    let store_status = tree
        .get(tag("Search", "Response"))
        .and_then(|r| r.get(tag("Search", "Store")))
        .and_then(|s| s.get(tag("Search", "Status")))
        .map(Element::text);
    assert_eq!(store_status.as_deref(), Some("2"), "{xml}");
    assert_eq!(
        tree.get(tag("Search", "Status"))
            .map(Element::text)
            .as_deref(),
        Some("1"),
        "{xml}"
    );

    front.stop().await;
    replica.stop().await;
    binding.stop().await.unwrap();
}
