//! `pushmail keys`: a fresh set of the platform's secrets as `KEY=value`
//! lines (a `.env` file for `compose.yaml`, or the data of a Kubernetes
//! Secret), with the device-token public key derived from the seed so
//! session and the gateway verify what binding signs.

use pushmail_common::device_token::TokenSigner;
use rand::RngCore as _;

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The lines `pushmail keys` prints.
pub(crate) fn lines() -> anyhow::Result<String> {
    let seed = random_hex();
    let public_key = TokenSigner::from_seed_hex(&seed)?.public_key_hex();
    Ok([
        ("PUSHMAIL_CREDENTIALS_KEY", random_hex()),
        ("PUSHMAIL_OTP_KEY", random_hex()),
        ("PUSHMAIL_DEVICE_TOKEN_SEED", seed),
        ("PUSHMAIL_DEVICE_TOKEN_PUBLIC_KEY", public_key),
        ("PUSHMAIL_INTERNAL_TOKEN", random_hex()),
        ("PUSHMAIL_OPERATOR_TOKEN", random_hex()),
        ("PUSHMAIL_PORTAL_SESSION_KEY", random_hex()),
    ]
    .iter()
    .map(|(name, value)| format!("{name}={value}\n"))
    .collect())
}

pub(crate) fn run() -> std::process::ExitCode {
    match lines() {
        Ok(text) => {
            print!("{text}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pushmail keys: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_fresh_and_the_public_key_matches_the_seed() {
        let text = lines().unwrap();
        let pairs: std::collections::BTreeMap<&str, &str> =
            text.lines().map(|l| l.split_once('=').unwrap()).collect();
        assert_eq!(pairs.len(), 7);
        let seed = pairs["PUSHMAIL_DEVICE_TOKEN_SEED"];
        assert_eq!(
            pairs["PUSHMAIL_DEVICE_TOKEN_PUBLIC_KEY"],
            TokenSigner::from_seed_hex(seed).unwrap().public_key_hex()
        );
        assert!(pairs.values().all(|v| v.len() == 64));
        assert_ne!(lines().unwrap(), text, "a new set each time");
    }
}
