//! The kustomize overlays, rendered by `kubectl kustomize` as an operator
//! would: probes, limits and a non-root, read-only container for every
//! service; each Deployment's settings accepted by the service's binary;
//! container ports where the service listens; every Service port naming a
//! container port; session's grace period covering its drain; no Secret
//! inlined.

use std::collections::BTreeMap;

use serde::Deserialize as _;
use serde_yaml::Value;

use crate::{SERVICES, effective_config, stand_in_public_key, stand_in_secret};

fn render(overlay: &str) -> Vec<Value> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/overlays/");
    let output = std::process::Command::new("kubectl")
        .args(["kustomize", &format!("{dir}{overlay}")])
        .output()
        .expect("kubectl is needed to render the manifests (scripts/provision.sh checks for it)");
    assert!(
        output.status.success(),
        "kubectl kustomize {overlay}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .collect()
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |v, key| &v[*key])
}

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

fn check_overlay(overlay: &str) {
    let docs = render(overlay);
    let of_kind = |kind: &str| -> Vec<&Value> {
        docs.iter()
            .filter(|d| d["kind"].as_str() == Some(kind))
            .collect()
    };
    assert!(
        of_kind("Secret").is_empty(),
        "{overlay}: a Secret is inlined"
    );
    assert!(
        !of_kind("NetworkPolicy").is_empty(),
        "{overlay}: no NetworkPolicy"
    );
    let names = |kind: &str| -> Vec<String> {
        let mut names: Vec<String> = of_kind(kind)
            .iter()
            .map(|d| s(d, &["metadata", "name"]).as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    let deployments = names("Deployment");
    assert_eq!(deployments, SERVICES, "{overlay}");
    for kind in [
        "Service",
        "ServiceAccount",
        "ConfigMap",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    ] {
        assert_eq!(
            names(kind),
            deployments,
            "{overlay}: one {kind} per service"
        );
    }
    let config_maps: BTreeMap<String, &Value> = of_kind("ConfigMap")
        .into_iter()
        .map(|d| (s(d, &["metadata", "name"]).as_str().unwrap().to_owned(), d))
        .collect();
    for deployment in of_kind("Deployment") {
        let name = s(deployment, &["metadata", "name"]).as_str().unwrap();
        let pod = s(deployment, &["spec", "template", "spec"]);
        assert_eq!(
            s(pod, &["securityContext", "runAsNonRoot"]).as_bool(),
            Some(true),
            "{overlay}/{name}: not non-root"
        );
        let containers = pod["containers"].as_sequence().unwrap();
        assert_eq!(containers.len(), 1, "{overlay}/{name}");
        let container = &containers[0];
        for probe in ["livenessProbe", "readinessProbe"] {
            assert_eq!(
                s(container, &[probe, "httpGet", "port"]).as_str(),
                Some("admin"),
                "{overlay}/{name}: {probe} on the admin port"
            );
        }
        for (limit, what) in [
            ("limits", "cpu"),
            ("limits", "memory"),
            ("requests", "cpu"),
            ("requests", "memory"),
        ] {
            assert!(
                !s(container, &["resources", limit, what]).is_null(),
                "{overlay}/{name}: no {limit}.{what}"
            );
        }
        assert_eq!(
            s(container, &["securityContext", "readOnlyRootFilesystem"]).as_bool(),
            Some(true),
            "{overlay}/{name}"
        );
        assert_eq!(
            s(container, &["securityContext", "allowPrivilegeEscalation"]).as_bool(),
            Some(false),
            "{overlay}/{name}"
        );

        // The environment the container gets: its ConfigMap, then env
        // (secrets stand in as well-formed values; $(POD_IP) as an address).
        let mut env = BTreeMap::new();
        let config_map = config_maps[name];
        for (key, value) in config_map["data"].as_mapping().unwrap() {
            env.insert(
                key.as_str().unwrap().to_owned(),
                value.as_str().unwrap().to_owned(),
            );
        }
        let public_key = stand_in_public_key();
        for var in container["env"].as_sequence().unwrap() {
            let key = var["name"].as_str().unwrap().to_owned();
            let value = if let Some(value) = var["value"].as_str() {
                value.replace("$(POD_IP)", "10.1.2.3")
            } else if let Some(secret) = s(var, &["valueFrom", "secretKeyRef", "key"]).as_str() {
                match secret {
                    "PUSHMAIL_DEVICE_TOKEN_PUBLIC_KEY" => public_key.clone(),
                    "PUSHMAIL_DATABASE_URL" => {
                        "postgres://pushmail:pw@postgres:5432/pushmail".to_owned()
                    }
                    _ => stand_in_secret(),
                }
            } else {
                continue;
            };
            env.insert(key, value);
        }
        let config = effective_config(name, &env);

        let mut container_ports = BTreeMap::new();
        for port in container["ports"].as_sequence().unwrap() {
            let port_name = port["name"].as_str().unwrap();
            let number = u16::try_from(port["containerPort"].as_u64().unwrap()).unwrap();
            assert_eq!(
                configured_port(&config, port_name),
                number,
                "{overlay}/{name}: container port {port_name} is not where the service listens"
            );
            container_ports.insert(port_name.to_owned(), number);
        }
        let service = of_kind("Service")
            .into_iter()
            .find(|d| s(d, &["metadata", "name"]).as_str() == Some(name))
            .unwrap();
        for port in s(service, &["spec", "ports"]).as_sequence().unwrap() {
            let target = port["targetPort"].as_str().unwrap();
            assert!(
                container_ports.contains_key(target),
                "{overlay}/{name}: Service port {target} is no container port"
            );
        }
        if name == "session" {
            let grace = pod["terminationGracePeriodSeconds"].as_i64().unwrap();
            let shutdown = config["shutdown"]["grace_seconds"].as_integer().unwrap();
            let drain = config["devices"]["drain_window_seconds"]
                .as_integer()
                .unwrap();
            assert!(
                drain < shutdown && shutdown < grace,
                "{overlay}: session drains over {drain} s, stops within {shutdown} s, is killed after {grace} s"
            );
        }
    }
}

#[test]
fn the_dev_overlay_is_production_shaped() {
    check_overlay("dev");
}

#[test]
fn the_prod_overlay_is_production_shaped() {
    check_overlay("prod");
}
