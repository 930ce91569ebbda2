//! The deployment files name only settings the services know: every
//! `PUSHMAIL_<SERVICE>__…` variable `compose.yaml` sets is given, with the
//! other variables of that service, to the service's own binary, whose
//! `--dump-config` refuses unknown keys and invalid values (exit 2).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::collections::BTreeMap;

/// `${NAME:?…}` and YAML aliases replaced by values the binaries accept.
fn resolve(value: &str, public_key: &str) -> String {
    let value = value.trim().trim_matches('"');
    match value {
        "*kafka" => "kafka:9092".to_owned(),
        "*otlp" => "http://otel-collector:4317".to_owned(),
        "*redis" => "redis://redis:6379/0".to_owned(),
        v if v.starts_with("${PUSHMAIL_DEVICE_TOKEN_PUBLIC_KEY") => public_key.to_owned(),
        v if v.starts_with("${") => "ab".repeat(32),
        v => v.to_owned(),
    }
}

#[test]
fn every_variable_in_compose_yaml_is_a_setting_of_its_service() {
    let compose =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../compose.yaml")).unwrap();
    let public_key = pushmail_common::device_token::TokenSigner::from_seed_hex(&"ab".repeat(32))
        .unwrap()
        .public_key_hex();
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
    let binaries = BTreeMap::from([
        ("binding", env!("CARGO_BIN_EXE_binding-node")),
        ("session", env!("CARGO_BIN_EXE_session-node")),
        ("dispatch", env!("CARGO_BIN_EXE_dispatch-node")),
        ("ingest", env!("CARGO_BIN_EXE_ingest-node")),
        ("transcode", env!("CARGO_BIN_EXE_transcode-node")),
        ("gateway", env!("CARGO_BIN_EXE_gateway-node")),
    ]);
    assert_eq!(
        by_service.keys().map(String::as_str).collect::<Vec<_>>(),
        binaries.keys().copied().collect::<Vec<_>>(),
        "compose.yaml configures every service"
    );
    for (service, vars) in &by_service {
        let mut command = std::process::Command::new(binaries[service.as_str()]);
        command.arg("--dump-config");
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("PUSHMAIL_")) {
            command.env_remove(key);
        }
        command.envs(vars.iter().map(|(k, v)| (k, v)));
        let output = command.output().unwrap();
        let dumped = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{service} refused compose.yaml's settings: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // A known key with the value given (secrets are masked in the dump).
        for (key, value) in vars {
            let leaf = key.rsplit("__").next().unwrap().to_ascii_lowercase();
            assert!(
                dumped.contains(&format!("{leaf} = ")),
                "{service}: {key} not in its config"
            );
            if !value.contains("ab".repeat(32).as_str()) && value != &public_key && leaf != "url" {
                assert!(
                    dumped.contains(value.as_str()),
                    "{service}: {key}={value} did not take effect:\n{dumped}"
                );
            }
        }
    }
}
