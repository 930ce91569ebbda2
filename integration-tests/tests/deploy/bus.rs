//! The event bus, as every rendering gives it: each service on the bus
//! (the mailbox service too, which consumes arrived mail and binding
//! changes) is handed the deployment's Kafka, not its built-in loopback
//! default, with the same connection settings (brokers, TLS, SASL) and
//! topic settings as the other services on the bus; and no NetworkPolicy
//! cuts a bus service's pods off the brokers.

use std::collections::BTreeMap;

use serde_yaml::Value;

use crate::objects::{s, selects, workloads};

/// The services on the Kafka bus: the ones whose config has a `bus`
/// section. A service that joins the bus joins this list, and every
/// rendering must then give it the brokers.
pub(crate) const BUS_USERS: [&str; 5] = ["binding", "dispatch", "ingest", "mailbox", "session"];

/// The settings every service on the bus must share: where the brokers
/// are and how it talks to them, and how the topics it may create are
/// made (the mailbox service creates the topics it reads, as the others
/// do).
const SHARED: [&str; 8] = [
    "brokers",
    "security_protocol",
    "sasl_mechanism",
    "sasl_username",
    "sasl_password",
    "ssl_ca_location",
    "default_partitions",
    "replication_factor",
];

/// A broker address: host and port.
pub(crate) type Broker = (String, u16);

/// Checks the services on the bus in `configs` (effective configs by
/// service) are [`BUS_USERS`], each on Kafka at the same non-loopback
/// brokers with the same [`SHARED`] settings; those brokers.
pub(crate) fn check_bus_users(configs: &BTreeMap<String, toml::Value>, label: &str) -> Vec<Broker> {
    let on_bus: Vec<&str> = configs
        .iter()
        .filter(|(_, config)| config.get("bus").is_some())
        .map(|(service, _)| service.as_str())
        .collect();
    assert_eq!(on_bus, BUS_USERS, "{label}: the services on the bus");
    let shared = |service: &str| -> Vec<(&str, String)> {
        let bus = &configs[service]["bus"];
        assert_eq!(
            bus["kind"].as_str(),
            Some("kafka"),
            "{label}/{service}: the bus is Kafka"
        );
        SHARED
            .iter()
            .map(|key| (*key, bus["kafka"][key].to_string()))
            .collect()
    };
    let first = shared(BUS_USERS[0]);
    for service in &BUS_USERS[1..] {
        assert_eq!(
            shared(service),
            first,
            "{label}/{service}: not given Kafka as {} is",
            BUS_USERS[0]
        );
    }
    let brokers = configs[BUS_USERS[0]]["bus"]["kafka"]["brokers"]
        .as_str()
        .unwrap();
    let brokers: Vec<Broker> = brokers
        .split(',')
        .map(|broker| {
            let (host, port) = broker
                .trim()
                .rsplit_once(':')
                .unwrap_or_else(|| panic!("{label}: broker {broker} has no port"));
            (host.to_owned(), port.parse().unwrap())
        })
        .collect();
    for (host, _) in &brokers {
        assert!(
            !matches!(host.as_str(), "127.0.0.1" | "localhost" | "::1" | "[::1]"),
            "{label}: the bus services are left on the built-in loopback broker {host}"
        );
    }
    brokers
}

/// Whether a NetworkPolicy limits the egress of the pods it selects
/// (Kubernetes: an `Egress` policy type, or, with no types listed, an
/// `egress` section).
fn limits_egress(policy: &Value) -> bool {
    let spec = &policy["spec"];
    match spec["policyTypes"].as_sequence() {
        Some(types) => types.iter().any(|t| t.as_str() == Some("Egress")),
        None => !spec["egress"].is_null(),
    }
}

/// Whether the NetworkPolicies in `docs` let pods labelled `labels`
/// connect to TCP `port` of a peer outside the rendering (the brokers are
/// never one of its workloads): yes when no policy selecting the pods
/// limits their egress, else when an egress rule of one of them opens the
/// port to any destination, an address block, another namespace or pods
/// the rendering does not run.
pub(crate) fn egress_allows(docs: &[Value], labels: &Value, port: u16) -> bool {
    let ours = workloads(docs);
    let pod_labels = |d: &Value| s(d, &["spec", "template", "metadata", "labels"]).clone();
    let limiting: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some("NetworkPolicy"))
        .filter(|p| selects(s(p, &["spec", "podSelector"]), labels) && limits_egress(p))
        .collect();
    if limiting.is_empty() {
        return true;
    }
    let opens_port = |rule: &Value| {
        rule["ports"].as_sequence().is_none_or(|ports| {
            ports.is_empty()
                || ports.iter().any(|p| {
                    let protocol_ok = p["protocol"].as_str().is_none_or(|proto| proto == "TCP");
                    let start = p["port"].as_u64();
                    let end = p["endPort"].as_u64().or(start);
                    protocol_ok
                        && (p["port"].is_null()
                            || start.zip(end).is_some_and(|(start, end)| {
                                (start..=end).contains(&u64::from(port))
                            }))
                })
        })
    };
    let reaches_outside = |rule: &Value| {
        rule["to"].as_sequence().is_none_or(|to| {
            to.is_empty()
                || to.iter().any(|peer| {
                    !peer["ipBlock"].is_null()
                        || !peer["namespaceSelector"].is_null()
                        || peer.get("podSelector").is_some_and(|pods| {
                            // `{}`: every pod of the namespace, a broker
                            // run there included.
                            pods.as_mapping().is_none_or(serde_yaml::Mapping::is_empty)
                                || !ours.iter().any(|w| selects(pods, &pod_labels(w)))
                        })
                })
        })
    };
    limiting.iter().any(|policy| {
        s(policy, &["spec", "egress"])
            .as_sequence()
            .into_iter()
            .flatten()
            .any(|rule| opens_port(rule) && reaches_outside(rule))
    })
}
