//! The deployment files name only settings the services know and agree
//! with where the services listen: `compose.yaml`'s variables and the
//! kustomize overlays' Deployments are each handed to the service's own
//! binary, whose `--dump-config` refuses unknown keys and invalid values;
//! the Helm chart, rendered here without Helm, is held to the same checks.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

mod bus;
mod chart;
mod compose;
mod helm;
mod manifests;
mod objects;
mod redis;

use std::collections::BTreeMap;

/// The service's binary (its `main`, built with the tests).
fn binary(service: &str) -> &'static str {
    match service {
        "binding" => env!("CARGO_BIN_EXE_binding-node"),
        "session" => env!("CARGO_BIN_EXE_session-node"),
        "dispatch" => env!("CARGO_BIN_EXE_dispatch-node"),
        "ingest" => env!("CARGO_BIN_EXE_ingest-node"),
        "transcode" => env!("CARGO_BIN_EXE_transcode-node"),
        "gateway" => env!("CARGO_BIN_EXE_gateway-node"),
        "mailbox" => env!("CARGO_BIN_EXE_mailbox-node"),
        "activesync" => env!("CARGO_BIN_EXE_activesync-node"),
        other => panic!("no binary for {other}"),
    }
}

/// The services a deployment must configure.
const SERVICES: [&str; 8] = [
    "activesync",
    "binding",
    "dispatch",
    "gateway",
    "ingest",
    "mailbox",
    "session",
    "transcode",
];

/// A stand-in for every secret, well-formed for whatever key it fills.
fn stand_in_secret() -> String {
    "ab".repeat(32)
}

/// The device-token public key matching [`stand_in_secret`] as a seed.
fn stand_in_public_key() -> String {
    pushmail_device_token::TokenSigner::from_seed_hex(&stand_in_secret())
        .unwrap()
        .public_key_hex()
}

/// The config `service` runs with under `env` (and no other PUSHMAIL_
/// variable), as its binary dumps it; fails the test when it refuses.
fn effective_config(service: &str, env: &BTreeMap<String, String>) -> toml::Value {
    try_effective_config(service, env)
        .unwrap_or_else(|e| panic!("{service} refuses the deployment's settings: {e}"))
}

/// As [`effective_config`], with the binary's refusal as the error.
fn try_effective_config(
    service: &str,
    env: &BTreeMap<String, String>,
) -> Result<toml::Value, String> {
    let mut command = std::process::Command::new(binary(service));
    command.arg("--dump-config");
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("PUSHMAIL_")) {
        command.env_remove(key);
    }
    command.envs(env);
    let output = command.output().unwrap();
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(toml::from_str(&String::from_utf8_lossy(&output.stdout)).unwrap())
}
