//! The keys of the embedded services' configs that standalone does not
//! use: one process has one bus, one telemetry setup, one stop, one
//! runtime, one outbox, and makes its own credentials and token keys. Set,
//! they would change nothing, so a start with one of them stops like any
//! bad key (one line naming it, exit code 2), and `--dump-config` leaves
//! them out and says so. Every other key of the sections is honoured
//! (PostgreSQL for binding, Redis for the directory, state, marks and the
//! binding cache included); see `docs/architecture.md`, "Standalone mode".

use std::process::ExitCode;

use pushmail_common::cli::ServiceArgs;
use pushmail_common::config::{self, ConfigError};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::config::StandaloneConfig;

const ONE_BUS: &str = "every service shares the process's one in-process bus; \
     a single-box install on Kafka runs the service binaries, see compose.yaml";
const ONE_TELEMETRY: &str = "the process has one telemetry setup: set the top-level `telemetry`";
const ONE_STOP: &str = "the process stops as one: set the top-level `shutdown`";
const OWN_CREDENTIALS: &str = "standalone makes its own service credentials";
const DERIVED_KEY: &str = "standalone derives it from `binding.security.device_token_seed`";

/// Each refused key (dotted, a section or a leaf) with why.
pub(crate) const REFUSED: &[(&str, &str)] = &[
    ("binding.bus", ONE_BUS),
    ("session.bus", ONE_BUS),
    ("ingest.bus", ONE_BUS),
    ("dispatch.bus", ONE_BUS),
    ("mailbox.bus", ONE_BUS),
    ("binding.telemetry", ONE_TELEMETRY),
    ("session.telemetry", ONE_TELEMETRY),
    ("transcode.telemetry", ONE_TELEMETRY),
    ("ingest.telemetry", ONE_TELEMETRY),
    ("dispatch.telemetry", ONE_TELEMETRY),
    ("gateway.telemetry", ONE_TELEMETRY),
    ("mailbox.telemetry", ONE_TELEMETRY),
    ("binding.shutdown", ONE_STOP),
    ("session.shutdown", ONE_STOP),
    ("transcode.shutdown", ONE_STOP),
    ("ingest.shutdown", ONE_STOP),
    ("dispatch.shutdown", ONE_STOP),
    ("gateway.shutdown", ONE_STOP),
    ("mailbox.shutdown", ONE_STOP),
    (
        "session.runtime",
        "standalone sizes its one runtime to the machine",
    ),
    (
        "dispatch.outbox",
        "dispatch and session share one outbox here: set `session.outbox`",
    ),
    ("session.tokens", DERIVED_KEY),
    ("gateway.tokens", DERIVED_KEY),
    ("binding.security.service_keys", OWN_CREDENTIALS),
    ("session.security.service_keys", OWN_CREDENTIALS),
    ("session.security.credential", OWN_CREDENTIALS),
    ("transcode.security.service_keys", OWN_CREDENTIALS),
    ("ingest.binding.token", OWN_CREDENTIALS),
    ("dispatch.binding.token", OWN_CREDENTIALS),
    ("dispatch.session.token", OWN_CREDENTIALS),
    ("gateway.binding.token", OWN_CREDENTIALS),
    ("gateway.transcode.token", OWN_CREDENTIALS),
    ("gateway.session.token", OWN_CREDENTIALS),
    ("gateway.mailbox.token", OWN_CREDENTIALS),
    ("mailbox.security.service_keys", OWN_CREDENTIALS),
    ("mailbox.binding.token", OWN_CREDENTIALS),
];

fn at<'a>(value: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(value, |v, key| v.get(key))
}

/// The first leaf under `dotted` where `set` differs from `default`.
fn first_difference(set: &Value, default: &Value, dotted: &str) -> Option<String> {
    match (set, default) {
        (Value::Object(s), Value::Object(d)) => s.iter().find_map(|(key, value)| {
            first_difference(
                value,
                d.get(key).unwrap_or(&Value::Null),
                &format!("{dotted}.{key}"),
            )
        }),
        _ if set == default => None,
        _ => Some(dotted.to_owned()),
    }
}

/// A refused key set to anything but standalone's own value, as the
/// error a bad key gives (with the environment variable when it came
/// from one).
pub(crate) fn check(config: &StandaloneConfig) -> Result<(), ConfigError> {
    let set =
        serde_json::to_value(config).map_err(|e| ConfigError::invalid("<root>", e.to_string()))?;
    let default = serde_json::to_value(StandaloneConfig::default())
        .map_err(|e| ConfigError::invalid("<root>", e.to_string()))?;
    for (key, why) in REFUSED {
        let (Some(s), Some(d)) = (at(&set, key), at(&default, key)) else {
            continue;
        };
        if let Some(leaf) = first_difference(s, d, key) {
            let variable = format!(
                "{}{}",
                config::env_prefix("standalone"),
                leaf.to_ascii_uppercase().replace('.', "__")
            );
            return Err(ConfigError::Invalid {
                reason: format!("standalone does not use this key: {why}; leave it unset"),
                key: leaf,
                origin: std::env::var_os(&variable)
                    .map(|_| format!("environment variable {variable}")),
            });
        }
    }
    Ok(())
}

/// The config without the refused keys (nulls dropped: TOML has none).
struct Honoured<'a>(&'a StandaloneConfig);

fn strip_nulls(value: &mut Value) {
    if let Value::Object(map) = value {
        map.retain(|_, v| !v.is_null());
        map.values_mut().for_each(strip_nulls);
    }
}

impl Serialize for Honoured<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Runs inside `config::dump`'s redaction: secrets are masked here.
        let mut value = serde_json::to_value(self.0).map_err(serde::ser::Error::custom)?;
        for (key, _) in REFUSED {
            let (parent, leaf) = key.rsplit_once('.').unwrap_or(("", key));
            let parent = parent
                .split('.')
                .filter(|k| !k.is_empty())
                .try_fold(&mut value, |v, k| v.get_mut(k));
            if let Some(Value::Object(map)) = parent {
                map.remove(leaf);
            }
        }
        strip_nulls(&mut value);
        value.serialize(serializer)
    }
}

/// `--dump-config`: the keys standalone honours, and a header naming the
/// ones it refuses.
pub(crate) fn dump(config: &StandaloneConfig) -> String {
    let mut out = String::from(
        "# pushmail standalone: every service in one process. These keys of the\n\
         # services' own configs would do nothing here and are refused at start:\n",
    );
    let mut reasons: Vec<&str> = Vec::new();
    for (_, why) in REFUSED {
        if !reasons.contains(why) {
            reasons.push(why);
        }
    }
    for why in reasons {
        let keys: Vec<&str> = REFUSED
            .iter()
            .filter(|(_, w)| *w == why)
            .map(|(k, _)| *k)
            .collect();
        out.push_str(&format!("#   {}\n#     ({why})\n", keys.join(", ")));
    }
    out.push('\n');
    out.push_str(&config::dump(&Honoured(config)));
    out
}

/// Before the shared start-up: refuses a config that sets a refused key
/// (exit code 2) and answers `--dump-config`. `None`: carry on (a config
/// that does not load is reported by the shared start-up, the same way).
pub(crate) fn intercept(args: &ServiceArgs) -> Option<ExitCode> {
    let loaded = config::load::<StandaloneConfig>(args.config.as_deref()).ok()?;
    if let Err(e) = check(&loaded) {
        eprintln!("{e}");
        return Some(ExitCode::from(2));
    }
    if args.dump_config {
        print!("{}", dump(&loaded));
        return Some(ExitCode::SUCCESS);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standalone_s_own_values_pass_and_each_refused_key_is_named() {
        check(&StandaloneConfig::default()).unwrap();
        let mut config = StandaloneConfig::default();
        config.dispatch.bus.kind = pushmail_common::bus::BusKind::Kafka;
        let error = check(&config).unwrap_err().to_string();
        assert!(error.contains("key `dispatch.bus.kind`"), "{error}");
        let mut config = StandaloneConfig::default();
        config.gateway.binding.token = pushmail_common::redact::Secret::new("pms1.x");
        let error = check(&config).unwrap_err().to_string();
        assert!(error.contains("key `gateway.binding.token`"), "{error}");
        let mut config = StandaloneConfig::default();
        config.session.runtime.worker_threads = 4;
        assert!(check(&config).is_err());
    }

    #[test]
    fn the_dump_leaves_refused_keys_out_and_names_them() {
        let mut config = StandaloneConfig::default();
        config.binding.security.operator_token =
            pushmail_common::redact::Secret::new("ab".repeat(32));
        let text = dump(&config);
        let (header, body) = text.split_once("\n\n").unwrap();
        assert!(header.contains("#   dispatch.outbox\n"), "{header}");
        let parsed: toml::Value = toml::from_str(body).unwrap();
        for (key, _) in REFUSED {
            assert!(
                key.split('.').try_fold(&parsed, |v, k| v.get(k)).is_none(),
                "{key} is still in the dump"
            );
        }
        assert!(at_toml(&parsed, "binding.database.url").is_some());
        assert!(at_toml(&parsed, "session.outbox.kind").is_some());
        assert!(!body.contains(&"ab".repeat(32)), "secrets stay masked");
    }

    fn at_toml<'a>(value: &'a toml::Value, dotted: &str) -> Option<&'a toml::Value> {
        dotted.split('.').try_fold(value, |v, k| v.get(k))
    }
}
