//! Every `PUSHMAIL_<SERVICE>__…` variable `compose.yaml` sets is given,
//! with the other variables of that service, to the service's own binary;
//! every gRPC peer a service is configured to call (`<peer>.endpoint`)
//! is a service of the file, on the port that service listens on; every
//! service on the bus (`bus.rs`) is given the file's broker, as the broker
//! advertises itself, with one replica per topic, and starts after it; and
//! the mailbox service greets submission servers with a name of the
//! operator's, not its built-in placeholder.

use std::collections::BTreeMap;

use crate::bus::{BUS_USERS, check_bus_users};
use crate::objects::DEFAULT_HELLO_NAME;
use crate::{SERVICES, effective_config, stand_in_public_key, stand_in_secret};

/// `${NAME:?…}` and YAML aliases replaced by values the binaries accept;
/// `${NAME:-default}` by its default, as Compose does when `.env` leaves
/// NAME out.
fn resolve(value: &str, public_key: &str) -> String {
    let value = value.trim().trim_matches('"');
    match value {
        "*kafka" => "kafka:9092".to_owned(),
        "*otlp" => "http://otel-collector:4317".to_owned(),
        "*redis" => "redis://redis:6379/0".to_owned(),
        v if v.starts_with("${PUSHMAIL_DEVICE_TOKEN_PUBLIC_KEY") => public_key.to_owned(),
        v if v.starts_with("${") && v.contains(":-") => v
            .split_once(":-")
            .unwrap()
            .1
            .trim_end_matches('}')
            .to_owned(),
        v if v.starts_with("${") => stand_in_secret(),
        v => v.to_owned(),
    }
}

#[test]
fn every_variable_in_compose_yaml_is_a_setting_of_its_service() {
    let compose =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../compose.yaml")).unwrap();
    let public_key = stand_in_public_key();
    let mut by_service: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for line in compose.lines() {
        let Some((name, value)) = line.trim().split_once(": ") else {
            continue;
        };
        let Some(rest) = name.strip_prefix("PUSHMAIL_") else {
            continue;
        };
        let service = rest.split("__").next().unwrap().to_ascii_lowercase();
        by_service
            .entry(service)
            .or_default()
            .push((name.to_owned(), resolve(value, &public_key)));
    }
    assert_eq!(
        by_service.keys().map(String::as_str).collect::<Vec<_>>(),
        SERVICES,
        "compose.yaml configures every service"
    );
    let mut configs = BTreeMap::new();
    for (service, vars) in &by_service {
        let env: BTreeMap<String, String> = vars.iter().cloned().collect();
        let config = effective_config(service, &env);
        let dumped = toml::to_string(&config).unwrap();
        // A known key with the value given (secrets are masked in the dump).
        for (key, value) in vars {
            let leaf = key.rsplit("__").next().unwrap().to_ascii_lowercase();
            assert!(
                dumped.contains(&format!("{leaf} = ")),
                "{service}: {key} not in its config"
            );
            if !value.contains(stand_in_secret().as_str()) && value != &public_key && leaf != "url"
            {
                assert!(
                    dumped.contains(value.as_str()),
                    "{service}: {key}={value} did not take effect:\n{dumped}"
                );
            }
        }
        configs.insert(service.clone(), config);
    }
    check_endpoints(&compose, &configs);
    check_bus(&compose, &configs);
    assert_ne!(
        configs["mailbox"]["submission"]["hello_name"].as_str(),
        Some(DEFAULT_HELLO_NAME),
        "compose.yaml: mailbox greets submission servers with the built-in placeholder"
    );
}

/// Each service on the bus is given the same broker, a service of
/// `compose.yaml` advertising that address, with one replica per topic
/// (there is one broker), and waits for it to start (`depends_on`, the
/// shared `x-pushmail` one unless the service lists its own).
fn check_bus(compose: &str, configs: &BTreeMap<String, toml::Value>) {
    let mut file: serde_yaml::Value = serde_yaml::from_str(compose).unwrap();
    file.apply_merge().unwrap();
    let services = &file["services"];
    let brokers = check_bus_users(configs, "compose.yaml");
    for (host, port) in &brokers {
        let advertised = services[host.as_str()]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
            .as_str()
            .unwrap_or_else(|| panic!("compose.yaml: the broker {host} is no Kafka service"));
        assert!(
            advertised.contains(&format!("://{host}:{port}")),
            "compose.yaml: the services reach the broker at {host}:{port}; it advertises {advertised}"
        );
    }
    for service in BUS_USERS {
        assert_eq!(
            configs[service]["bus"]["kafka"]["replication_factor"].as_integer(),
            Some(1),
            "compose.yaml/{service}: topics it creates need one replica (one broker)"
        );
        let depends_on = &services[service]["depends_on"];
        for (host, _) in &brokers {
            let waits = depends_on
                .as_mapping()
                .map(|m| m.contains_key(host.as_str()))
                .or_else(|| {
                    depends_on
                        .as_sequence()
                        .map(|l| l.iter().any(|d| d.as_str() == Some(host)))
                })
                .unwrap_or(false);
            assert!(
                waits,
                "compose.yaml/{service}: on the bus but does not depend on {host}"
            );
        }
    }
}

/// Each `<peer>.endpoint` a service's config holds names a service of
/// `compose.yaml` (a default left in place, `127.0.0.1`, names none) —
/// the peer itself when it is one of ours — and the gRPC port that
/// service is configured to listen on.
fn check_endpoints(compose: &str, configs: &BTreeMap<String, toml::Value>) {
    let file: serde_yaml::Value = serde_yaml::from_str(compose).unwrap();
    let services = file["services"].as_mapping().unwrap();
    for (caller, config) in configs {
        for (setting, table) in config.as_table().unwrap() {
            let Some(endpoint) = table.get("endpoint").and_then(toml::Value::as_str) else {
                continue;
            };
            let authority = endpoint.split("://").nth(1).unwrap();
            let (host, port) = authority.split_once(':').unwrap();
            let port = port.trim_end_matches('/');
            assert!(
                services.contains_key(host),
                "{caller}: {setting}.endpoint names {host}, no service of compose.yaml"
            );
            if SERVICES.contains(&setting.as_str()) {
                assert_eq!(
                    host, setting,
                    "{caller}: {setting}.endpoint leads to another service"
                );
            }
            let listens = configs
                .get(host)
                .and_then(|callee| callee["server"]["grpc_addr"].as_str())
                .unwrap_or_else(|| {
                    panic!("{caller}: {setting}.endpoint names {host}, no gRPC service")
                });
            assert_eq!(
                listens.rsplit(':').next(),
                Some(port),
                "{caller}: {setting}.endpoint calls {host} on port {port}; it listens on {listens}"
            );
        }
    }
}
