//! Standalone mode has no secret store: binding's keys that the config
//! leaves empty are generated once and kept in `<data_dir>/secrets/`, readable
//! by the owner only, so credentials sealed yesterday still open today.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use anyhow::Context as _;
use pushmail_binding::keys::SecurityConfig;
use pushmail_common::redact::Secret;
use pushmail_common::service_identity::CredentialIssuer;
use rand::RngCore as _;

/// Fills every empty key of `security` from (or into) `data_dir`.
pub(crate) fn ensure(security: &mut SecurityConfig, data_dir: &Path) -> anyhow::Result<()> {
    let dir = data_dir.join("secrets");
    for (name, key) in security.keys_mut() {
        if key.is_empty() {
            *key = Secret::new(load_or_create(&dir.join(format!("{name}.hex")))?);
        }
    }
    Ok(())
}

/// The issuer of the in-process services' credentials, from (or into)
/// `data_dir`: standalone is its own operator.
pub(crate) fn issuer(data_dir: &Path) -> anyhow::Result<CredentialIssuer> {
    let seed = load_or_create(&data_dir.join("secrets").join("service_issuer_seed.hex"))?;
    CredentialIssuer::from_seed_hex(&seed).context("secrets/service_issuer_seed.hex")
}

fn load_or_create(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => return Ok(text.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key = hex::encode(bytes);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(key.as_bytes())?;
    file.sync_all()?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = SecurityConfig::default();
        ensure(&mut first, dir.path()).unwrap();
        assert_eq!(first.otp_key.expose().len(), 64);
        assert_ne!(first.otp_key, first.credentials_key);
        let mut again = SecurityConfig::default();
        ensure(&mut again, dir.path()).unwrap();
        assert_eq!(again, first, "the same keys next start");
        let mode = std::fs::metadata(dir.path().join("secrets/otp_key.hex")).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(mode.permissions().mode() & 0o777, 0o600);
        let mut configured = SecurityConfig {
            otp_key: Secret::new("ab".repeat(32)),
            ..Default::default()
        };
        ensure(&mut configured, dir.path()).unwrap();
        assert_eq!(
            configured.otp_key.expose(),
            "ab".repeat(32),
            "configured keys win"
        );
        assert_eq!(
            issuer(dir.path()).unwrap().public_key_hex(),
            issuer(dir.path()).unwrap().public_key_hex(),
            "the same issuer next start"
        );
    }
}
