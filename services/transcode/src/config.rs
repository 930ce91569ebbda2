//! Transcode service configuration (`PUSHMAIL_TRANSCODE__…`).

use std::collections::BTreeMap;

use pushmail_common::blob::BlobConfig;
use pushmail_common::config::{ConfigError, ServerConfig, ServiceConfig, ShutdownConfig};
use pushmail_common::telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

use crate::profile::Profile;

/// The whole transcode config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listen addresses.
    pub server: ServerConfig,
    /// Logs, traces, metrics.
    pub telemetry: TelemetryConfig,
    /// Stop behaviour.
    pub shutdown: ShutdownConfig,
    /// Where raw messages are read from.
    pub blob: BlobConfig,
    /// Who may call.
    pub security: SecurityConfig,
    /// What one conversion may cost.
    pub limits: LimitsConfig,
    /// Converted previews kept in memory.
    pub cache: CacheConfig,
    /// Named device profiles (`profiles.<name>.screen_width`, …).
    pub profiles: BTreeMap<String, ProfileConfig>,
    /// The profile used when a request names none and gives none.
    pub default_profile: String,
}

/// Callers' credentials.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// Public key(s) of the service credential issuer, required
    /// (`PUSHMAIL_SERVICE_KEYS` of `pushmail keys`); only the gateway's
    /// credential is accepted.
    pub service_keys: pushmail_common::service_identity::ServiceKeys,
}

/// Bounds on one job. Sizes in bytes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest stored message read.
    pub max_message_bytes: usize,
    /// Largest part converted.
    pub max_part_bytes: usize,
    /// Most pixels of a source image or a rendered page.
    pub max_pixels: u64,
    /// Largest total a zip (Office file) may unpack to.
    pub max_unpacked_bytes: u64,
    /// Largest expansion ratio of one zip entry.
    pub max_zip_ratio: u64,
    /// Most zip entries.
    pub max_zip_entries: usize,
    /// PDF pages rendered as images (the first ones).
    pub max_rendered_pages: u32,
    /// PDF pages whose text is extracted.
    pub max_text_pages: usize,
    /// Wall-clock limit of one conversion; the caller gets
    /// DEADLINE_EXCEEDED and the job's slot stays taken until it ends.
    pub job_timeout_ms: u64,
    /// Conversions at once (CPU-bound: about the cores available).
    pub concurrent_jobs: usize,
}

/// The preview cache.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Bytes of previews held; the least recently used go first.
    pub max_bytes: usize,
}

/// A device profile as configured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// Screen width, pixels.
    pub screen_width: u32,
    /// MIME types the device renders, comma-separated (`image/*` allowed).
    pub accepts: String,
    /// Largest preview, bytes.
    pub max_bytes: u64,
    /// Keep remote images in HTML bodies.
    #[serde(default)]
    pub allow_remote_images: bool,
}

impl ProfileConfig {
    fn new(screen_width: u32, accepts: &str, max_bytes: u64) -> Self {
        Self {
            screen_width,
            accepts: accepts.to_owned(),
            max_bytes,
            allow_remote_images: false,
        }
    }

    /// The profile this names, checked.
    pub fn profile(&self, name: &str) -> Result<Profile, ConfigError> {
        Profile::new(
            self.screen_width,
            self.accepts.split(',').map(str::trim).map(str::to_owned),
            self.max_bytes,
            self.allow_remote_images,
        )
        .map_err(|e| ConfigError::invalid(format!("profiles.{name}"), e))
    }
}

impl Default for Config {
    fn default() -> Self {
        let profiles = [
            // A feature phone's WAP browser: small JPEGs and text only.
            (
                "feature-phone",
                ProfileConfig::new(240, "image/jpeg,text/plain", 30 * 1024),
            ),
            (
                "smartphone",
                ProfileConfig::new(
                    720,
                    "image/jpeg,image/png,text/html,text/plain,application/json",
                    512 * 1024,
                ),
            ),
            (
                "tablet",
                ProfileConfig::new(
                    1280,
                    "image/jpeg,image/png,text/html,text/plain,application/json",
                    2 * 1024 * 1024,
                ),
            ),
        ];
        Self {
            server: ServerConfig::on_ports(7103, 9103),
            telemetry: TelemetryConfig::default(),
            shutdown: ShutdownConfig::default(),
            blob: BlobConfig::default(),
            security: SecurityConfig::default(),
            limits: LimitsConfig::default(),
            cache: CacheConfig::default(),
            profiles: profiles
                .into_iter()
                .map(|(name, p)| (name.to_owned(), p))
                .collect(),
            default_profile: "smartphone".to_owned(),
        }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_bytes: 256 << 20,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 << 20,
            max_part_bytes: 32 << 20,
            max_pixels: 40_000_000,
            max_unpacked_bytes: 256 << 20,
            max_zip_ratio: 200,
            max_zip_entries: 5_000,
            max_rendered_pages: 10,
            max_text_pages: 200,
            job_timeout_ms: 20_000,
            concurrent_jobs: 2,
        }
    }
}

impl ServiceConfig for Config {
    const NAME: &'static str = "transcode";

    fn validate(&self) -> Result<(), ConfigError> {
        self.telemetry.validate("telemetry.")?;
        self.shutdown.validate("shutdown.")?;
        for (name, profile) in &self.profiles {
            profile.profile(name)?;
        }
        if !self.profiles.contains_key(&self.default_profile) {
            return Err(ConfigError::invalid(
                "default_profile",
                format!("names no profile in `profiles` ({})", self.default_profile),
            ));
        }
        let l = &self.limits;
        if l.job_timeout_ms == 0 || l.concurrent_jobs == 0 || l.max_part_bytes == 0 {
            return Err(ConfigError::invalid(
                "limits",
                "job_timeout_ms, concurrent_jobs and max_part_bytes must be positive",
            ));
        }
        Ok(())
    }
}

pushmail_common::impl_hosted!(Config);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_profiles_are_named() {
        Config::default().validate().unwrap();
        let config = Config {
            default_profile: "watch".into(),
            ..Config::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("default_profile")
        );
        let mut config = Config::default();
        config
            .profiles
            .insert("tiny".into(), ProfileConfig::new(2, "image/jpeg", 1000));
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("profiles.tiny")
        );
    }
}
