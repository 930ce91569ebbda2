//! The kustomize overlays, rendered by `kubectl kustomize` as an operator
//! would, hold what every deployment must (`objects.rs`).

use serde::Deserialize as _;
use serde_yaml::Value;

use crate::objects::{Expect, check_objects};

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

fn check_overlay(overlay: &str) {
    check_objects(
        &render(overlay),
        &Expect {
            label: overlay,
            prefix: "",
            autoscaler_for_all: true,
        },
    );
}

#[test]
fn the_dev_overlay_is_production_shaped() {
    check_overlay("dev");
}

#[test]
fn the_prod_overlay_is_production_shaped() {
    check_overlay("prod");
}
