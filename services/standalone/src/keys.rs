//! `pushmail keys`: a fresh set of the platform's secrets as `KEY=value`
//! lines (a `.env` file for `compose.yaml`, or the data of a Kubernetes
//! Secret), with the public keys derived from their seeds: the
//! device-token key session and the gateway verify with, and the service
//! issuer key every gRPC server verifies callers with. Each calling service
//! gets its own credential, so a leaked one acts as that service only
//! (docs/security.md). `--issuer-seed` re-mints the credentials from an
//! existing issuer seed instead (a new service, or a leaked credential
//! replaced by rotating the issuer: see docs/operations.md).

use pushmail_common::service_identity::{CredentialIssuer, Service};
use pushmail_device_token::TokenSigner;
use rand::RngCore as _;

/// `pushmail keys` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct KeysArgs {
    /// Print only the service credentials and public key, minted from this
    /// issuer seed (64 hex digits; `-` reads it from standard input).
    #[arg(long, value_name = "HEX")]
    issuer_seed: Option<String>,
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The variable that carries `service`'s credential.
pub(crate) fn credential_variable(service: Service) -> String {
    format!("PUSHMAIL_{}_CREDENTIAL", service.as_str().to_uppercase())
}

/// The issuer's public key and every service's credential.
fn credentials(issuer_seed: &str) -> anyhow::Result<Vec<(String, String)>> {
    let issuer = CredentialIssuer::from_seed_hex(issuer_seed)?;
    let now = pushmail_common::clock::now_ms();
    let mut lines = vec![("PUSHMAIL_SERVICE_KEYS".to_owned(), issuer.public_key_hex())];
    for service in Service::ALL {
        lines.push((
            credential_variable(service),
            issuer.mint(service, now).expose().to_owned(),
        ));
    }
    Ok(lines)
}

/// The lines `pushmail keys` prints.
pub(crate) fn lines(issuer_seed: Option<&str>) -> anyhow::Result<String> {
    let pairs = match issuer_seed {
        Some(seed) => credentials(seed)?,
        None => {
            let seed = random_hex();
            let public_key = TokenSigner::from_seed_hex(&seed)?.public_key_hex();
            let issuer_seed = random_hex();
            let mut pairs: Vec<(String, String)> = [
                ("PUSHMAIL_CREDENTIALS_KEY", random_hex()),
                ("PUSHMAIL_OTP_KEY", random_hex()),
                ("PUSHMAIL_DEVICE_TOKEN_SEED", seed),
                ("PUSHMAIL_DEVICE_TOKEN_PUBLIC_KEY", public_key),
                ("PUSHMAIL_OPERATOR_TOKEN", random_hex()),
                ("PUSHMAIL_PORTAL_SESSION_KEY", random_hex()),
                // No service is given this one: keep it offline to mint
                // credentials later (`pushmail keys --issuer-seed`).
                ("PUSHMAIL_SERVICE_ISSUER_SEED", issuer_seed.clone()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            pairs.extend(credentials(&issuer_seed)?);
            pairs
        }
    };
    Ok(pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}\n"))
        .collect())
}

pub(crate) fn run(args: &KeysArgs) -> std::process::ExitCode {
    let seed = match args.issuer_seed.as_deref() {
        Some("-") => {
            let mut line = String::new();
            if let Err(e) = std::io::stdin().read_line(&mut line) {
                eprintln!("pushmail keys: reading the issuer seed: {e}");
                return std::process::ExitCode::from(2);
            }
            Some(line.trim().to_owned())
        }
        other => other.map(str::to_owned),
    };
    match lines(seed.as_deref()) {
        Ok(text) => {
            print!("{text}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pushmail keys: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use pushmail_common::service_identity::ServiceKeys;

    use super::*;

    fn pairs(text: &str) -> BTreeMap<&str, &str> {
        text.lines().map(|l| l.split_once('=').unwrap()).collect()
    }

    #[test]
    fn every_key_is_fresh_and_the_public_keys_match_their_seeds() {
        let text = lines(None).unwrap();
        let pairs = pairs(&text);
        assert_eq!(pairs.len(), 8 + Service::ALL.len());
        let seed = pairs["PUSHMAIL_DEVICE_TOKEN_SEED"];
        assert_eq!(
            pairs["PUSHMAIL_DEVICE_TOKEN_PUBLIC_KEY"],
            TokenSigner::from_seed_hex(seed).unwrap().public_key_hex()
        );
        let verifier = ServiceKeys::new([pairs["PUSHMAIL_SERVICE_KEYS"]])
            .verifier()
            .unwrap();
        for service in Service::ALL {
            let credential = pairs[credential_variable(service).as_str()];
            assert_eq!(verifier.verify(credential), Ok(service));
        }
        // The name the mailbox service's deployment will read.
        assert_eq!(
            verifier.verify(pairs["PUSHMAIL_MAILBOX_CREDENTIAL"]),
            Ok(Service::Mailbox)
        );
        assert!(
            pairs
                .iter()
                .filter(|(k, _)| !k.ends_with("_CREDENTIAL"))
                .all(|(_, v)| v.len() == 64)
        );
        assert_ne!(lines(None).unwrap(), text, "a new set each time");
    }

    #[test]
    fn credentials_are_minted_again_from_a_kept_issuer_seed() {
        let first = lines(None).unwrap();
        let first = pairs(&first);
        let again = lines(Some(first["PUSHMAIL_SERVICE_ISSUER_SEED"])).unwrap();
        let again = pairs(&again);
        assert_eq!(again.len(), 1 + Service::ALL.len());
        assert_eq!(
            again["PUSHMAIL_SERVICE_KEYS"],
            first["PUSHMAIL_SERVICE_KEYS"]
        );
        assert!(lines(Some("not hex")).is_err());
    }
}
