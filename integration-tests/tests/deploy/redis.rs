//! The Redis a rendering runs (the kustomize base; the chart with
//! `redis.bundled.enabled`) keeps what must not be lost: the Service every
//! service's Redis URL names leads to a StatefulSet whose Redis appends
//! every write to a file fsynced each second (`--appendonly yes
//! --appendfsync everysec`) on a volume claim; a second StatefulSet
//! replicates it (`--replicaof` naming that Service) with its own AOF and
//! claim; and the NetworkPolicies let in the services that use Redis (and
//! the replica) and nothing else. Without it (an external Redis), nothing
//! of Redis is rendered and every Redis URL is the external one.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::Value;

use crate::objects::{Configs, Expect, name_of, s, selects, selects_pods_of, workloads};

/// The services that keep state or caches in Redis: the ones whose
/// settings name a Redis URL (binding's shared cache, session's directory
/// and outbox, dispatch's state and outbox, ingest's marks).
const REDIS_USERS: [&str; 4] = ["binding", "dispatch", "ingest", "session"];

/// Every Redis URL in a service's effective config, by dotted setting.
fn redis_urls(config: &toml::Value) -> Vec<(String, String)> {
    fn walk(path: &str, value: &toml::Value, found: &mut Vec<(String, String)>) {
        match value {
            toml::Value::Table(table) => {
                for (key, value) in table {
                    let path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    walk(&path, value, found);
                }
            }
            toml::Value::String(url)
                if url.starts_with("redis://") || url.starts_with("rediss://") =>
            {
                found.push((path.to_owned(), url.clone()));
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk("", config, &mut found);
    found
}

/// The services whose config names a Redis URL, with those URLs; checked
/// to be [`REDIS_USERS`] (a new user needs the policies to let it in).
fn redis_users(configs: &Configs, label: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let users: BTreeMap<String, Vec<(String, String)>> = configs
        .iter()
        .map(|(service, config)| (service.clone(), redis_urls(config)))
        .filter(|(_, urls)| !urls.is_empty())
        .collect();
    assert_eq!(
        users.keys().map(String::as_str).collect::<Vec<_>>(),
        REDIS_USERS,
        "{label}: the services that use Redis"
    );
    users
}

/// A Redis URL's host and port (6379 when it names none).
fn host_and_port(url: &str) -> (String, u64) {
    let rest = url.split_once("://").unwrap().1;
    let authority = rest.split('/').next().unwrap();
    let authority = authority.rsplit('@').next().unwrap();
    match authority.split_once(':') {
        Some((host, port)) => (host.to_owned(), port.parse().unwrap()),
        None => (authority.to_owned(), 6379),
    }
}

fn container(workload: &Value) -> &Value {
    &s(workload, &["spec", "template", "spec", "containers"])[0]
}

/// The container's command line: command, then args.
fn command_line(workload: &Value) -> Vec<String> {
    let container = container(workload);
    ["command", "args"]
        .iter()
        .flat_map(|key| container[*key].as_sequence().cloned().unwrap_or_default())
        .map(|arg| match arg {
            Value::String(text) => text,
            other => serde_yaml::to_string(&other).unwrap().trim().to_owned(),
        })
        .collect()
}

/// The values following `option` on the command line, if it is there.
fn option<'a>(command: &'a [String], option: &str) -> Option<&'a [String]> {
    let at = command.iter().position(|arg| arg == option)?;
    let end = command[at + 1..]
        .iter()
        .position(|arg| arg.starts_with("--"))
        .map_or(command.len(), |n| at + 1 + n);
    Some(&command[at + 1..end])
}

/// A Redis that loses at most a second of writes on a restart: AOF on,
/// fsynced every second, in a directory on one of its volume claims.
fn check_durable(workload: &Value, label: &str) {
    let name = name_of(workload);
    let command = command_line(workload);
    assert_eq!(
        command.first().map(String::as_str),
        Some("redis-server"),
        "{label}/{name}: runs {command:?}"
    );
    for (flag, value) in [("--appendonly", "yes"), ("--appendfsync", "everysec")] {
        assert_eq!(
            option(&command, flag),
            Some(&[value.to_owned()][..]),
            "{label}/{name}: not {flag} {value} in {command:?}"
        );
    }
    // The image's working directory is /data.
    let dir = option(&command, "--dir").map_or("/data", |v| v[0].as_str());
    let claims: Vec<&str> = s(workload, &["spec", "volumeClaimTemplates"])
        .as_sequence()
        .into_iter()
        .flatten()
        .map(name_of)
        .collect();
    let on_claim = container(workload)["volumeMounts"]
        .as_sequence()
        .into_iter()
        .flatten()
        .any(|m| {
            m["mountPath"].as_str() == Some(dir) && claims.contains(&m["name"].as_str().unwrap())
        });
    assert!(
        on_claim,
        "{label}/{name}: its data directory {dir} is on no volume claim"
    );
}

/// Who may open `port` (a container port's name and number) of the
/// workload's pods under the NetworkPolicies: the workloads admitted, by
/// name; or why anyone else may.
fn admitted(
    docs: &[Value],
    workload: &Value,
    port: (&str, u64),
) -> Result<BTreeSet<String>, String> {
    let labels = s(workload, &["spec", "template", "metadata", "labels"]);
    let policies: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some("NetworkPolicy"))
        .filter(|p| selects(s(p, &["spec", "podSelector"]), labels))
        .filter(|p| {
            s(p, &["spec", "policyTypes"])
                .as_sequence()
                .is_none_or(|types| types.iter().any(|t| t.as_str() == Some("Ingress")))
        })
        .collect();
    if policies.is_empty() {
        return Err("no NetworkPolicy isolates its pods: anyone may connect".to_owned());
    }
    let mut admitted = BTreeSet::new();
    for policy in policies {
        let policy_name = name_of(policy);
        for rule in s(policy, &["spec", "ingress"])
            .as_sequence()
            .into_iter()
            .flatten()
        {
            let opens = rule["ports"]
                .as_sequence()
                .filter(|ports| !ports.is_empty())
                .is_none_or(|ports| {
                    ports.iter().any(|p| {
                        p["port"].as_str() == Some(port.0) || p["port"].as_u64() == Some(port.1)
                    })
                });
            if !opens {
                continue;
            }
            let peers = rule["from"].as_sequence().cloned().unwrap_or_default();
            if peers.is_empty() {
                return Err(format!("NetworkPolicy {policy_name} lets in anyone"));
            }
            for peer in peers {
                if peer.get("namespaceSelector").is_some() || peer.get("ipBlock").is_some() {
                    return Err(format!(
                        "NetworkPolicy {policy_name} lets in {peer:?}, outside the release"
                    ));
                }
                let pods = &peer["podSelector"];
                admitted.extend(
                    workloads(docs)
                        .into_iter()
                        .filter(|w| {
                            selects(pods, s(w, &["spec", "template", "metadata", "labels"]))
                        })
                        .map(|w| name_of(w).to_owned()),
                );
            }
        }
    }
    Ok(admitted)
}

/// The rendering runs Redis durably for the services that use it, and
/// only they (and the replica) reach it. Returns the primary's Service.
pub(crate) fn check_bundled_redis(docs: &[Value], configs: &Configs, expect: &Expect) -> String {
    let label = expect.label;
    let users = redis_users(configs, label);
    let mut hosts = BTreeSet::new();
    for (service, urls) in &users {
        for (setting, url) in urls {
            let (host, port) = host_and_port(url);
            assert_eq!(port, 6379, "{label}/{service}: {setting} = {url}");
            hosts.insert(host);
        }
    }
    assert_eq!(
        hosts.len(),
        1,
        "{label}: one Redis for every service, not {hosts:?}"
    );
    let host = hosts.pop_first().unwrap();
    let service = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("Service") && name_of(d) == host)
        .unwrap_or_else(|| panic!("{label}: the Redis URLs name {host}, no Service"));
    let target = s(service, &["spec", "ports"])
        .as_sequence()
        .unwrap()
        .iter()
        .find(|p| p["port"].as_u64() == Some(6379))
        .unwrap_or_else(|| panic!("{label}: Service {host} does not serve 6379"))["targetPort"]
        .as_str()
        .unwrap()
        .to_owned();
    let stateful_sets: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some("StatefulSet"))
        .collect();
    let primaries: Vec<&&Value> = stateful_sets
        .iter()
        .filter(|set| selects_pods_of(service, set))
        .collect();
    assert_eq!(
        primaries.len(),
        1,
        "{label}: Service {host} selects the pods of {} StatefulSets",
        primaries.len()
    );
    let primary = *primaries[0];
    check_durable(primary, label);
    assert!(
        option(&command_line(primary), "--replicaof").is_none(),
        "{label}/{}: the primary replicates another",
        name_of(primary)
    );
    let redis_port = |set: &Value| -> (String, u64) {
        let port = container(set)["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|p| p["name"].as_str() == Some(target.as_str()))
            .unwrap_or_else(|| panic!("{label}/{}: no container port {target}", name_of(set)))
            .clone();
        (target.clone(), port["containerPort"].as_u64().unwrap())
    };
    assert_eq!(redis_port(primary).1, 6379, "{label}/{}", name_of(primary));

    let replicas: Vec<&&Value> = stateful_sets
        .iter()
        .filter(|set| option(&command_line(set), "--replicaof").is_some())
        .collect();
    assert_eq!(replicas.len(), 1, "{label}: one Redis replica");
    let replica = *replicas[0];
    check_durable(replica, label);
    assert_eq!(
        option(&command_line(replica), "--replicaof"),
        Some(&[host.clone(), "6379".to_owned()][..]),
        "{label}/{}: does not follow the primary's Service",
        name_of(replica)
    );
    assert!(
        docs.iter()
            .any(|d| d["kind"].as_str() == Some("Service") && selects_pods_of(d, replica)),
        "{label}/{}: no Service of its own",
        name_of(replica)
    );

    let users: BTreeSet<String> = users
        .keys()
        .map(|service| format!("{}{service}", expect.prefix))
        .collect();
    let mut expected = users.clone();
    expected.insert(name_of(replica).to_owned());
    let (port_name, port_number) = redis_port(primary);
    let admitted_primary = admitted(docs, primary, (&port_name, port_number))
        .unwrap_or_else(|why| panic!("{label}/{}: {why}", name_of(primary)));
    assert_eq!(
        admitted_primary,
        expected,
        "{label}/{}: who may reach Redis",
        name_of(primary)
    );
    let (port_name, port_number) = redis_port(replica);
    let admitted_replica = admitted(docs, replica, (&port_name, port_number))
        .unwrap_or_else(|why| panic!("{label}/{}: {why}", name_of(replica)));
    assert!(
        admitted_replica.is_subset(&expected),
        "{label}/{}: {admitted_replica:?} may reach the replica",
        name_of(replica)
    );
    host
}

/// Nothing of Redis is rendered, and every service's Redis URL is `url`.
pub(crate) fn check_external_redis(docs: &[Value], configs: &Configs, url: &str, label: &str) {
    for object in docs {
        let kind = object["kind"].as_str().unwrap();
        assert!(
            kind != "StatefulSet" && !name_of(object).contains("redis"),
            "{label}: {kind} {} is rendered with an external Redis",
            name_of(object)
        );
    }
    for (service, urls) in redis_users(configs, label) {
        for (setting, found) in urls {
            assert_eq!(found, url, "{label}/{service}: {setting}");
        }
    }
}
