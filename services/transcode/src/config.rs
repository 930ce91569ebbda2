//! Transcode service configuration (`PUSHMAIL_TRANSCODE__…`).

use std::collections::BTreeMap;
use std::path::PathBuf;

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
    /// Bounds of the gRPC server (`listeners.grpc.*`).
    pub listeners: pushmail_common::listen::GrpcListenersConfig,
    /// What one conversion may cost.
    pub limits: LimitsConfig,
    /// The converter worker processes and their OS-enforced limits.
    pub workers: WorkersConfig,
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
    /// Largest one PDF stream may inflate to (checked before the PDF
    /// libraries, which cap nothing, read the file).
    pub max_pdf_stream_bytes: u64,
    /// Largest all of a PDF's streams may inflate to together.
    pub max_pdf_inflated_bytes: u64,
    /// Largest spreadsheet grid, rows × columns of one sheet (checked from
    /// its `<dimension>` and cell references before any grid exists).
    pub max_sheet_cells: u64,
    /// Deepest HTML element nesting, counted as an HTML5 parser nests
    /// (`<div/>` nests).
    pub max_html_depth: usize,
    /// Wall-clock limit of one request's conversion work (waiting for a
    /// worker, finding the part, converting): past it the worker is
    /// killed and the caller told the file cannot be converted. Keep it
    /// under the gateway's `transcode.timeout_ms` (5 s), so the device
    /// hears 422, not 504.
    pub job_timeout_ms: u64,
}

/// The converter workers: every parse of a stored message or attachment
/// runs in one, a subprocess the kernel holds to these limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WorkersConfig {
    /// Workers at once, each one job (CPU-bound: about the cores available).
    pub count: usize,
    /// Address space of a worker (`RLIMIT_AS`), bytes; an allocation past
    /// it fails and ends that worker.
    pub memory_limit_bytes: u64,
    /// CPU time of a worker (`RLIMIT_CPU`), seconds.
    pub cpu_seconds: u64,
    /// The binary started as `<program> transcode-worker`; empty: this
    /// process's own executable (`pushmail-transcode` or `pushmail`).
    pub program: Option<PathBuf>,
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
    pub(crate) fn profile(&self, name: &str) -> Result<Profile, ConfigError> {
        Profile::new(
            self.screen_width,
            self.accepts.split(',').map(str::trim).map(str::to_owned),
            self.max_bytes,
            self.allow_remote_images,
        )
        .map_err(|e| ConfigError::invalid(format!("profiles.{name}"), e.to_string()))
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
            listeners: pushmail_common::listen::GrpcListenersConfig::default(),
            limits: LimitsConfig::default(),
            workers: WorkersConfig::default(),
            cache: CacheConfig::default(),
            profiles: profiles
                .into_iter()
                .map(|(name, p)| (name.to_owned(), p))
                .collect(),
            default_profile: "smartphone".to_owned(),
        }
    }
}

impl Default for WorkersConfig {
    fn default() -> Self {
        Self {
            count: 2,
            memory_limit_bytes: 1 << 30,
            cpu_seconds: 10,
            program: None,
        }
    }
}

impl WorkersConfig {
    /// The worker binary: the configured one, else this executable —
    /// through `/proc/self/exe` where there is one, which still runs this
    /// very build after an upgrade replaced the file on disk, so a worker
    /// always speaks its service's protocol.
    pub(crate) fn program(&self) -> std::io::Result<PathBuf> {
        let own = PathBuf::from("/proc/self/exe");
        match &self.program {
            Some(program) => Ok(program.clone()),
            None if own.exists() => Ok(own),
            None => std::env::current_exe(),
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
            max_pdf_stream_bytes: 64 << 20,
            max_pdf_inflated_bytes: 256 << 20,
            max_sheet_cells: 2_000_000,
            max_html_depth: crate::convert::html::MAX_DEPTH,
            job_timeout_ms: 4_000,
        }
    }
}

impl ServiceConfig for Config {
    const NAME: &'static str = "transcode";

    fn validate(&self) -> Result<(), ConfigError> {
        self.telemetry.validate("telemetry.")?;
        self.shutdown.validate("shutdown.")?;
        self.listeners.grpc.validate("listeners.grpc.")?;
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
        if l.job_timeout_ms == 0 || l.max_part_bytes == 0 {
            return Err(ConfigError::invalid(
                "limits",
                "job_timeout_ms and max_part_bytes must be positive",
            ));
        }
        let most = crate::frame::MAX_BODY;
        if l.max_message_bytes as u64 > most || l.max_part_bytes as u64 > most {
            return Err(ConfigError::invalid(
                "limits",
                format!("max_message_bytes and max_part_bytes must be at most {most}"),
            ));
        }
        let w = &self.workers;
        if w.count == 0 || w.count > 256 {
            return Err(ConfigError::invalid("workers.count", "must be 1–256"));
        }
        // Below this the worker binary cannot even map itself.
        if w.memory_limit_bytes < 64 << 20 {
            return Err(ConfigError::invalid(
                "workers.memory_limit_bytes",
                "must be at least 64 MiB",
            ));
        }
        if w.cpu_seconds == 0 {
            return Err(ConfigError::invalid(
                "workers.cpu_seconds",
                "must be positive",
            ));
        }
        if w.program.as_ref().is_some_and(|p| !p.is_file()) {
            return Err(ConfigError::invalid(
                "workers.program",
                "names no file (leave it out to run this executable)",
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
        let mut config = Config::default();
        config.workers.count = 0;
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("workers.count")
        );
        let mut config = Config::default();
        config.workers.memory_limit_bytes = 1 << 20;
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("workers.memory_limit_bytes")
        );
        let mut config = Config::default();
        config.workers.program = Some("/nonexistent/pushmail-transcode".into());
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("workers.program")
        );
    }
}
