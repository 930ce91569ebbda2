//! The kustomize overlays, rendered by `kubectl kustomize` as an operator
//! would, hold what every deployment must (`objects.rs`) and run the
//! base's Redis durably, reached only by its users (`redis.rs`).

use serde::Deserialize as _;
use serde_yaml::Value;

use crate::objects::{Expect, check_objects};
use crate::redis::check_bundled_redis;

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
    let docs = render(overlay);
    let expect = Expect {
        label: overlay,
        prefix: "",
        autoscaler_for_all: true,
    };
    let configs = check_objects(&docs, &expect);
    let primary = check_bundled_redis(&docs, &configs, &expect);
    assert_eq!(
        primary, "redis",
        "{overlay}: the ConfigMaps name the base's Redis"
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
