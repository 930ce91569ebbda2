//! Every `PUSHMAIL_<SERVICE>__…` variable `compose.yaml` sets is given,
//! with the other variables of that service, to the service's own binary;
//! and every gRPC peer a service is configured to call (`<peer>.endpoint`)
//! is a service of the file, on the port that service listens on.

use std::collections::BTreeMap;

use crate::{SERVICES, effective_config, stand_in_public_key, stand_in_secret};

/// `${NAME:?…}` and YAML aliases replaced by values the binaries accept.
fn resolve(value: &str, public_key: &str) -> String {
    let value = value.trim().trim_matches('"');
    match value {
        "*kafka" => "kafka:9092".to_owned(),
        "*otlp" => "http://otel-collector:4317".to_owned(),
        "*redis" => "redis://redis:6379/0".to_owned(),
        v if v.starts_with("${PUSHMAIL_DEVICE_TOKEN_PUBLIC_KEY") => public_key.to_owned(),
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
