//! Every `PUSHMAIL_<SERVICE>__…` variable `compose.yaml` sets is given,
//! with the other variables of that service, to the service's own binary.

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
    for (service, vars) in &by_service {
        let env: BTreeMap<String, String> = vars.iter().cloned().collect();
        let dumped = toml::to_string(&effective_config(service, &env)).unwrap();
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
    }
}
