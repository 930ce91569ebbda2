//! The tree itself: no key material or local state is ever tracked. A
//! committed secret teaches users to reuse it and trips every secret
//! scanner, and standalone's `.pushmail/` holds real keys.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]

use std::path::Path;
use std::process::Command;

/// Tracked paths, relative to the workspace root.
fn tracked() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("git")
        .arg("-C")
        .arg(&root)
        .args(["ls-files", "-z"])
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git ls-files failed");
    String::from_utf8(out.stdout)
        .expect("paths are UTF-8")
        .split('\0')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Why `path` looks like a secret or local state, if it does.
fn secret_pattern(path: &str) -> Option<&'static str> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    if segments.contains(&".pushmail") {
        Some("standalone's data directory")
    } else if segments[..segments.len() - 1].contains(&"secrets") {
        Some("a secrets directory")
    } else if name == ".env" || name.starts_with(".env.") {
        Some("an environment file")
    } else if [".pem", ".key", ".p12", ".pfx", ".jks"]
        .iter()
        .any(|ext| name.ends_with(ext))
    {
        Some("key material")
    } else if name.ends_with(".hex") && name.contains("key")
        || name.ends_with("token.hex")
        || name.ends_with("seed.hex")
    {
        Some("a generated secret")
    } else {
        None
    }
}

#[test]
fn the_patterns_catch_what_standalone_writes() {
    for path in [
        "services/standalone/.pushmail/secrets/otp_key.hex",
        ".pushmail/demo.json",
        "deploy/secrets/credentials",
        "tls/server.key",
        "tls/ca.pem",
        ".env",
        "x/operator_token.hex",
    ] {
        assert!(secret_pattern(path).is_some(), "{path} slipped through");
    }
    for path in [
        "services/common/src/keys.rs",
        "docs/security.md",
        "Cargo.toml",
    ] {
        assert_eq!(secret_pattern(path), None, "{path} flagged");
    }
}

#[test]
fn no_tracked_file_looks_like_a_secret() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    for path in tracked() {
        if let Some(why) = secret_pattern(&path) {
            found.push(format!("{path}: {why}"));
            continue;
        }
        // Content too: a PEM private key under any name.
        if let Ok(text) = std::fs::read_to_string(root.join(&path))
            && text.lines().any(|line| {
                let line = line.trim();
                line.starts_with("-----BEGIN ") && line.ends_with("PRIVATE KEY-----")
            })
        {
            found.push(format!("{path}: a PEM private key"));
        }
    }
    assert!(
        found.is_empty(),
        "tracked files that look like secrets (git rm --cached them and cover them in .gitignore):\n{}",
        found.join("\n")
    );
}

#[test]
fn standalone_data_is_ignored_wherever_it_is_started() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for path in [
        ".pushmail/secrets/otp_key.hex",
        "services/standalone/.pushmail/binding.db",
        "integration-tests/.pushmail/blobs/x",
    ] {
        let status = Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(["check-ignore", "-q", "--no-index", path])
            .status()
            .expect("git runs");
        assert!(status.success(), "{path} is not covered by .gitignore");
    }
}
