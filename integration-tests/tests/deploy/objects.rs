//! What every rendered deployment must hold, whether kustomize or the Helm
//! chart rendered it: one Deployment per service with probes, limits and a
//! non-root, read-only container; its settings accepted by the service's
//! binary; container ports where the service listens; every Service port
//! naming a container port; session's grace period covering its drain; a
//! ServiceAccount, ConfigMap, Service and PodDisruptionBudget each; no
//! Secret inlined; NetworkPolicies present. Every service on the bus is
//! given the deployment's Kafka as the others are, and no policy cuts its
//! pods off the brokers (`bus.rs`); the mailbox service is given an EHLO
//! name of the deployment's and only the gateway reaches its gRPC. A store
//! the rendering runs itself (a StatefulSet: Redis) is non-root,
//! read-only, probed and limited, keeps its data on a volume claim and has
//! a Service.

use std::collections::BTreeMap;

use serde_yaml::Value;

use crate::bus::{Broker, check_bus_users, egress_allows};
use crate::{SERVICES, effective_config, stand_in_public_key, stand_in_secret};

/// The mailbox service's built-in EHLO name, which no deployment may
/// leave in place (`submission.hello_name`).
pub(crate) const DEFAULT_HELLO_NAME: &str = "pushmail.invalid";

pub(crate) fn s<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |v, key| &v[*key])
}

pub(crate) fn name_of(object: &Value) -> &str {
    s(object, &["metadata", "name"]).as_str().unwrap()
}

/// How a rendering names things and scales them.
pub(crate) struct Expect<'a> {
    /// What the report calls this rendering.
    pub(crate) label: &'a str,
    /// What precedes the service's name in its objects' names.
    pub(crate) prefix: &'a str,
    /// Every Deployment has an autoscaler (kustomize); else each has either
    /// one or a fixed replica count (the chart: an HPA owns the count).
    pub(crate) autoscaler_for_all: bool,
}

/// The effective config of each service, by service name, for the
/// caller's further checks.
pub(crate) type Configs = BTreeMap<String, toml::Value>;

/// Where the service listens for each named container port.
fn configured_port(config: &toml::Value, port_name: &str) -> u16 {
    let path: &[&str] = match port_name {
        "grpc" => &["server", "grpc_addr"],
        "admin" => &["server", "admin_addr"],
        "http" => &["server", "http_addr"],
        "devices" => &["devices", "addr"],
        "smtp" => &["smtp", "listen"],
        "lmtp" => &["smtp", "lmtp_listen"],
        "webhook" => &["webhook", "listen"],
        other => panic!("unknown port name {other}"),
    };
    let addr = path
        .iter()
        .fold(config, |v, k| &v[*k])
        .as_str()
        .unwrap()
        .to_owned();
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// A well-formed stand-in for the secret a setting reads.
fn stand_in_for(setting: &str) -> String {
    if setting.ends_with("DATABASE__URL") {
        "postgres://pushmail:pw@postgres:5432/pushmail?sslmode=verify-full".to_owned()
    } else if setting.ends_with("REDIS__URL") {
        "rediss://:pw@redis:6380/0".to_owned()
    } else if setting.ends_with("PUBLIC_KEY") {
        stand_in_public_key()
    } else {
        stand_in_secret()
    }
}

/// The environment a Deployment's container gets: its ConfigMaps, then
/// env (secrets stand in as well-formed values; $(POD_IP) as an address).
pub(crate) fn container_env(docs: &[Value], deployment: &Value) -> BTreeMap<String, String> {
    let container = s(deployment, &["spec", "template", "spec", "containers"])[0].clone();
    let mut env = BTreeMap::new();
    for source in container["envFrom"].as_sequence().unwrap() {
        let map = s(source, &["configMapRef", "name"]).as_str().unwrap();
        let config_map = docs
            .iter()
            .find(|d| d["kind"].as_str() == Some("ConfigMap") && name_of(d) == map)
            .unwrap_or_else(|| panic!("no ConfigMap {map}"));
        for (key, value) in config_map["data"].as_mapping().unwrap() {
            env.insert(
                key.as_str().unwrap().to_owned(),
                value.as_str().unwrap().to_owned(),
            );
        }
    }
    for var in container["env"].as_sequence().unwrap() {
        let key = var["name"].as_str().unwrap().to_owned();
        let value = if let Some(value) = var["value"].as_str() {
            value.replace("$(POD_IP)", "10.1.2.3")
        } else if !s(var, &["valueFrom", "secretKeyRef", "key"]).is_null() {
            stand_in_for(&key)
        } else {
            continue;
        };
        env.insert(key, value);
    }
    env
}

pub(crate) fn check_objects(docs: &[Value], expect: &Expect) -> Configs {
    let label = expect.label;
    let of_kind = |kind: &str| -> Vec<&Value> {
        docs.iter()
            .filter(|d| d["kind"].as_str() == Some(kind))
            .collect()
    };
    assert!(of_kind("Secret").is_empty(), "{label}: a Secret is inlined");
    assert!(
        !of_kind("NetworkPolicy").is_empty(),
        "{label}: no NetworkPolicy"
    );
    let names = |kind: &str| -> Vec<String> {
        let mut names: Vec<String> = of_kind(kind)
            .iter()
            .map(|d| name_of(d).to_owned())
            .collect();
        names.sort();
        names
    };
    let deployments = names("Deployment");
    let services: Vec<String> = deployments
        .iter()
        .map(|n| {
            n.strip_prefix(expect.prefix)
                .unwrap_or_else(|| {
                    panic!("{label}: Deployment {n} is not named {}…", expect.prefix)
                })
                .to_owned()
        })
        .collect();
    assert_eq!(services, SERVICES, "{label}");
    for kind in ["ServiceAccount", "ConfigMap", "PodDisruptionBudget"] {
        assert_eq!(names(kind), deployments, "{label}: one {kind} per service");
    }
    // The Services of the stores the rendering runs (a StatefulSet's
    // pods) are checked with them; the rest are one per service.
    let stateful_sets = of_kind("StatefulSet");
    let mut service_names: Vec<String> = of_kind("Service")
        .into_iter()
        .filter(|service| {
            !stateful_sets
                .iter()
                .any(|set| selects_pods_of(service, set))
        })
        .map(|d| name_of(d).to_owned())
        .collect();
    service_names.sort();
    assert_eq!(
        service_names, deployments,
        "{label}: one Service per service"
    );
    for set in &stateful_sets {
        check_stateful_set(docs, set, label);
    }
    let autoscaled: Vec<&str> = of_kind("HorizontalPodAutoscaler")
        .iter()
        .map(|h| s(h, &["spec", "scaleTargetRef", "name"]).as_str().unwrap())
        .collect();
    for target in &autoscaled {
        assert!(
            deployments.iter().any(|d| d == target),
            "{label}: an autoscaler targets {target}, no Deployment"
        );
    }
    let by_name = |kind: &str, name: &str| -> &Value {
        of_kind(kind)
            .into_iter()
            .find(|d| name_of(d) == name)
            .unwrap_or_else(|| panic!("{label}: no {kind} {name}"))
    };

    let mut configs = Configs::new();
    for deployment in of_kind("Deployment") {
        let name = name_of(deployment);
        let service = name.strip_prefix(expect.prefix).unwrap();
        let has_autoscaler = autoscaled.contains(&name);
        if expect.autoscaler_for_all {
            assert!(has_autoscaler, "{label}/{name}: no HorizontalPodAutoscaler");
        } else {
            assert_ne!(
                has_autoscaler,
                s(deployment, &["spec", "replicas"]).as_u64().is_some(),
                "{label}/{name}: either an autoscaler or a replica count sets the pods"
            );
        }
        let pod = s(deployment, &["spec", "template", "spec"]);
        assert_eq!(
            pod["serviceAccountName"].as_str(),
            Some(name),
            "{label}/{name}: its own ServiceAccount"
        );
        let container = check_pod(deployment, label);
        assert_eq!(
            container["command"][0].as_str(),
            Some(format!("pushmail-{service}").as_str()),
            "{label}/{name}: runs its service's binary"
        );
        for probe in ["livenessProbe", "readinessProbe"] {
            assert_eq!(
                s(container, &[probe, "httpGet", "port"]).as_str(),
                Some("admin"),
                "{label}/{name}: {probe} on the admin port"
            );
        }

        let config = effective_config(service, &container_env(docs, deployment));

        let mut container_ports = BTreeMap::new();
        for port in container["ports"].as_sequence().unwrap() {
            let port_name = port["name"].as_str().unwrap();
            let number = u16::try_from(port["containerPort"].as_u64().unwrap()).unwrap();
            assert_eq!(
                configured_port(&config, port_name),
                number,
                "{label}/{name}: container port {port_name} is not where the service listens"
            );
            container_ports.insert(port_name.to_owned(), number);
        }
        for port in s(by_name("Service", name), &["spec", "ports"])
            .as_sequence()
            .unwrap()
        {
            let target = port["targetPort"].as_str().unwrap();
            assert!(
                container_ports.contains_key(target),
                "{label}/{name}: Service port {target} is no container port"
            );
        }

        // Every file a setting names is mounted.
        let mounts = each(&container["volumeMounts"], "mountPath");
        if let Some(dir) = config.get("blob").and_then(|b| b["dir"].as_str()) {
            assert!(
                mounts.iter().any(|m| dir.starts_with(m)),
                "{label}/{name}: the blob directory {dir} is on no volume (the root is read-only)"
            );
        }
        if let Some(ca) = config
            .get("bus")
            .and_then(|b| b["kafka"]["ssl_ca_location"].as_str())
            .filter(|ca| !ca.is_empty())
        {
            assert!(
                mounts.iter().any(|m| ca.starts_with(m)),
                "{label}/{name}: the Kafka CA {ca} is on no volume"
            );
        }

        if service == "session" {
            let grace = pod["terminationGracePeriodSeconds"].as_i64().unwrap();
            let shutdown = config["shutdown"]["grace_seconds"].as_integer().unwrap();
            let drain = config["devices"]["drain_window_seconds"]
                .as_integer()
                .unwrap();
            assert!(
                drain < shutdown && shutdown < grace,
                "{label}: session drains over {drain} s, stops within {shutdown} s, is killed after {grace} s"
            );
        }
        if service == "mailbox" {
            // A Send in progress must finish (and be recorded) before the
            // kubelet kills the pod, or its key stays claimed.
            let grace = pod["terminationGracePeriodSeconds"].as_i64().unwrap();
            let shutdown = config["shutdown"]["grace_seconds"].as_integer().unwrap();
            assert!(
                shutdown < grace,
                "{label}: mailbox stops within {shutdown} s but is killed after {grace} s"
            );
            let hello = config["submission"]["hello_name"].as_str().unwrap();
            assert_ne!(
                hello, DEFAULT_HELLO_NAME,
                "{label}: mailbox greets submission servers with the built-in placeholder"
            );
        }
        configs.insert(service.to_owned(), config);
    }
    let brokers = check_bus_users(&configs, label);
    check_network_policies(docs, &configs, &brokers, expect);
    configs
}

/// Whether a Service's selector picks the pods of a workload.
pub(crate) fn selects_pods_of(service: &Value, workload: &Value) -> bool {
    let labels = s(workload, &["spec", "template", "metadata", "labels"]);
    s(service, &["spec", "selector"])
        .as_mapping()
        .is_some_and(|m| {
            m.iter()
                .all(|(k, v)| labels[k.as_str().unwrap()].as_str() == v.as_str())
        })
}

/// The string `key` of each item of a list (none when there is no list).
fn each<'a>(list: &'a Value, key: &str) -> Vec<&'a str> {
    list.as_sequence()
        .into_iter()
        .flatten()
        .map(|item| item[key].as_str().unwrap())
        .collect()
}

/// A workload's pod runs non-root, one container with requests and
/// limits, a read-only root and no privilege escalation; that container.
fn check_pod<'a>(workload: &'a Value, label: &str) -> &'a Value {
    let name = name_of(workload);
    let pod = s(workload, &["spec", "template", "spec"]);
    assert_eq!(
        s(pod, &["securityContext", "runAsNonRoot"]).as_bool(),
        Some(true),
        "{label}/{name}: not non-root"
    );
    let containers = pod["containers"].as_sequence().unwrap();
    assert_eq!(containers.len(), 1, "{label}/{name}");
    let container = &containers[0];
    for (limit, what) in [
        ("limits", "cpu"),
        ("limits", "memory"),
        ("requests", "cpu"),
        ("requests", "memory"),
    ] {
        assert!(
            !s(container, &["resources", limit, what]).is_null(),
            "{label}/{name}: no {limit}.{what}"
        );
    }
    assert_eq!(
        s(container, &["securityContext", "readOnlyRootFilesystem"]).as_bool(),
        Some(true),
        "{label}/{name}"
    );
    assert_eq!(
        s(container, &["securityContext", "allowPrivilegeEscalation"]).as_bool(),
        Some(false),
        "{label}/{name}"
    );
    container
}

/// A store the rendering runs itself (Redis): its pods non-root with a
/// read-only root, probed, with requests and limits; every mount of its
/// container either a volume claim template (what it keeps) or a pod
/// volume; a Service whose ports name its container's ports.
fn check_stateful_set(docs: &[Value], set: &Value, label: &str) {
    let name = name_of(set);
    let pod = s(set, &["spec", "template", "spec"]);
    assert_eq!(
        pod["automountServiceAccountToken"].as_bool(),
        Some(false),
        "{label}/{name}: no store talks to the Kubernetes API"
    );
    let container = check_pod(set, label);
    for probe in ["livenessProbe", "readinessProbe"] {
        assert!(container[probe].is_mapping(), "{label}/{name}: no {probe}");
    }
    let claims: Vec<&str> = s(set, &["spec", "volumeClaimTemplates"])
        .as_sequence()
        .into_iter()
        .flatten()
        .map(name_of)
        .collect();
    assert!(
        !claims.is_empty(),
        "{label}/{name}: keeps nothing on a volume"
    );
    let volumes = each(&pod["volumes"], "name");
    let mounts = each(&container["volumeMounts"], "name");
    for claim in &claims {
        assert!(
            mounts.contains(claim),
            "{label}/{name}: its volume claim {claim} is not mounted"
        );
    }
    for mount in &mounts {
        assert!(
            claims.contains(mount) || volumes.contains(mount),
            "{label}/{name}: mounts {mount}, which is no volume"
        );
    }
    let ports = each(&container["ports"], "name");
    let services: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some("Service") && selects_pods_of(d, set))
        .collect();
    assert!(!services.is_empty(), "{label}/{name}: no Service");
    for service in services {
        for port in s(service, &["spec", "ports"]).as_sequence().unwrap() {
            let target = port["targetPort"].as_str().unwrap();
            assert!(
                ports.contains(&target),
                "{label}/{}: Service port {target} is no container port of {name}",
                name_of(service)
            );
        }
    }
}

/// The Deployments and StatefulSets: everything that runs pods.
pub(crate) fn workloads(docs: &[Value]) -> Vec<&Value> {
    docs.iter()
        .filter(|d| matches!(d["kind"].as_str(), Some("Deployment" | "StatefulSet")))
        .collect()
}

/// Whether a label selector selects these labels.
pub(crate) fn selects(selector: &Value, labels: &Value) -> bool {
    let label = |key: &Value| labels[key.as_str().unwrap()].as_str();
    let by_labels = selector["matchLabels"]
        .as_mapping()
        .is_none_or(|m| m.iter().all(|(k, v)| label(k) == v.as_str()));
    let by_expressions = selector["matchExpressions"]
        .as_sequence()
        .is_none_or(|expressions| {
            expressions.iter().all(|e| {
                let value = label(&e["key"]);
                let values: Vec<&str> = e["values"]
                    .as_sequence()
                    .map(|v| v.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                match e["operator"].as_str().unwrap() {
                    "In" => value.is_some_and(|v| values.contains(&v)),
                    "NotIn" => value.is_none_or(|v| !values.contains(&v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    other => panic!("unknown selector operator {other}"),
                }
            })
        });
    by_labels && by_expressions
}

/// Every NetworkPolicy selects pods and names ports they have; every
/// gRPC call a service is configured to make (`<peer>.endpoint`) reaches
/// that peer's pods (when the peer is one of ours) and is let through by a
/// policy of the called pods; every service on the bus may reach each
/// broker; and the mailbox service's pods admit, but for scrapes of their
/// admin port, the gateway's only.
fn check_network_policies(docs: &[Value], configs: &Configs, brokers: &[Broker], expect: &Expect) {
    let label = expect.label;
    let deployments: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some("Deployment"))
        .collect();
    let workloads = workloads(docs);
    let pod_labels = |d: &Value| s(d, &["spec", "template", "metadata", "labels"]).clone();
    let port_names = |d: &Value| -> Vec<String> {
        s(d, &["spec", "template", "spec", "containers"])[0]["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let policies: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some("NetworkPolicy"))
        .collect();
    for policy in &policies {
        let name = name_of(policy);
        let selected: Vec<&&Value> = workloads
            .iter()
            .filter(|d| selects(s(policy, &["spec", "podSelector"]), &pod_labels(d)))
            .collect();
        assert!(
            !selected.is_empty(),
            "{label}: NetworkPolicy {name} selects no pod"
        );
        for rule in s(policy, &["spec", "ingress"])
            .as_sequence()
            .into_iter()
            .flatten()
        {
            for port in rule["ports"].as_sequence().into_iter().flatten() {
                let port = port["port"].as_str().unwrap();
                assert!(
                    selected
                        .iter()
                        .any(|d| port_names(d).iter().any(|p| p == port)),
                    "{label}: NetworkPolicy {name} opens port {port}, which none of its pods has"
                );
            }
            for from in rule["from"].as_sequence().into_iter().flatten() {
                if let Some(pods) = from.get("podSelector") {
                    assert!(
                        workloads.iter().any(|d| selects(pods, &pod_labels(d))),
                        "{label}: NetworkPolicy {name} lets in pods that do not exist"
                    );
                }
            }
        }
    }

    for (caller, config) in configs {
        let caller_deployment = deployments
            .iter()
            .find(|d| name_of(d) == format!("{}{caller}", expect.prefix))
            .unwrap();
        for (setting, table) in config.as_table().unwrap() {
            let Some(endpoint) = table.get("endpoint").and_then(toml::Value::as_str) else {
                continue;
            };
            let authority = endpoint.split("://").nth(1).unwrap();
            let (host, port) = authority.split_once(':').unwrap();
            let port: u64 = port.trim_end_matches('/').parse().unwrap();
            let service = docs
                .iter()
                .find(|d| d["kind"].as_str() == Some("Service") && name_of(d) == host)
                .unwrap_or_else(|| {
                    panic!("{label}/{caller}: {setting}.endpoint names {host}, no Service")
                });
            assert!(
                s(service, &["spec", "ports"])
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .any(|p| p["port"].as_u64() == Some(port)),
                "{label}/{caller}: {setting}.endpoint calls {host} on port {port}, which it does not serve"
            );
            let callee = deployments
                .iter()
                .find(|d| {
                    s(service, &["spec", "selector"])
                        .as_mapping()
                        .unwrap()
                        .iter()
                        .all(|(k, v)| pod_labels(d)[k.as_str().unwrap()].as_str() == v.as_str())
                })
                .unwrap_or_else(|| panic!("{label}: Service {host} selects no Deployment"));
            if SERVICES.contains(&setting.as_str()) {
                assert_eq!(
                    name_of(callee),
                    format!("{}{setting}", expect.prefix),
                    "{label}/{caller}: {setting}.endpoint leads to another service"
                );
            }
            let allowed = policies.iter().any(|policy| {
                selects(s(policy, &["spec", "podSelector"]), &pod_labels(callee))
                    && s(policy, &["spec", "ingress"])
                        .as_sequence()
                        .into_iter()
                        .flatten()
                        .any(|rule| {
                            let from_caller = rule["from"].as_sequence().is_none_or(|from| {
                                from.iter().any(|f| {
                                    f.get("podSelector")
                                        .is_some_and(|p| selects(p, &pod_labels(caller_deployment)))
                                })
                            });
                            let to_grpc = rule["ports"].as_sequence().is_none_or(|ports| {
                                ports.iter().any(|p| p["port"].as_str() == Some("grpc"))
                            });
                            from_caller && to_grpc
                        })
            });
            assert!(
                allowed,
                "{label}: {caller} calls {host} ({setting}.endpoint) but no NetworkPolicy lets it"
            );
        }
    }

    // The bus: each service on it reaches every broker.
    for service in configs.keys().filter(|c| configs[*c].get("bus").is_some()) {
        let deployment = deployments
            .iter()
            .find(|d| name_of(d) == format!("{}{service}", expect.prefix))
            .unwrap();
        for (host, port) in brokers {
            assert!(
                egress_allows(docs, &pod_labels(deployment), *port),
                "{label}: {service} is on the bus but no NetworkPolicy lets it reach the broker {host}:{port}"
            );
        }
    }

    // The mailbox service: the gateway and activesync only (and the
    // scrapers, on the admin port), behind a policy that denies the rest.
    let mailbox = deployments
        .iter()
        .find(|d| name_of(d) == format!("{}mailbox", expect.prefix))
        .unwrap();
    let callers: Vec<String> = ["gateway", "activesync"]
        .iter()
        .map(|c| format!("{}{c}", expect.prefix))
        .collect();
    let guarding: Vec<&&Value> = policies
        .iter()
        .filter(|p| selects(s(p, &["spec", "podSelector"]), &pod_labels(mailbox)))
        .collect();
    assert!(
        guarding.iter().any(|p| {
            s(p, &["spec", "policyTypes"]).as_sequence().map_or_else(
                || !s(p, &["spec", "ingress"]).is_null(),
                |types| types.iter().any(|t| t.as_str() == Some("Ingress")),
            )
        }),
        "{label}: no NetworkPolicy limits who reaches the mailbox service"
    );
    for policy in &guarding {
        let name = name_of(policy);
        for rule in s(policy, &["spec", "ingress"])
            .as_sequence()
            .into_iter()
            .flatten()
        {
            let admin_only = rule["ports"].as_sequence().is_some_and(|ports| {
                !ports.is_empty() && ports.iter().all(|p| p["port"].as_str() == Some("admin"))
            });
            if admin_only {
                continue;
            }
            let from = rule["from"]
                .as_sequence()
                .map(Vec::as_slice)
                .unwrap_or_default();
            assert!(
                !from.is_empty(),
                "{label}: NetworkPolicy {name} lets anyone reach the mailbox service"
            );
            for peer in from {
                let pods = peer.get("podSelector");
                let callers_only = peer["namespaceSelector"].is_null()
                    && peer["ipBlock"].is_null()
                    && pods.is_some_and(|pods| {
                        workloads
                            .iter()
                            .filter(|w| selects(pods, &pod_labels(w)))
                            .all(|w| callers.contains(&name_of(w).to_owned()))
                    });
                assert!(
                    callers_only,
                    "{label}: NetworkPolicy {name} lets more than the gateway and activesync reach the mailbox service"
                );
            }
        }
    }
}
