//! Service identities: which pushmail service is calling, so that each
//! gRPC method can be allowed to exactly the services that need it.
//!
//! A credential is `pms1.<payload>.<signature>` (base64url, no padding):
//! the payload names the service, the signature is Ed25519 by the
//! platform's service issuer key. Servers hold only the issuer's public
//! key(s), so a compromised server can verify but never mint; each caller
//! holds only its own credential, so a leaked credential acts as that one
//! service and nothing more. Several public keys may be configured at once
//! to rotate the issuer key with an overlap. `pushmail keys` makes the
//! issuer key and every credential; standalone makes its own at start.

use std::collections::HashMap;
use std::fmt;
use std::sync::RwLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;

use crate::redact::Secret;

const PREFIX: &str = "pms1.";
/// Valid credentials remembered so a busy caller costs one hash per call,
/// not a signature check; only a handful of services ever call.
const CACHE_ENTRIES: usize = 64;

/// A pushmail service that calls other services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// Learns that mail arrived; reads watched accounts and their passwords.
    Ingest,
    /// Delivers notifications.
    Dispatch,
    /// Holds device connections; takes devices over from its peers.
    Session,
    /// The HTTP edge: device fetch and presence for the portal.
    Gateway,
    /// Reads and writes mailboxes on the phone's behalf; reads one
    /// account's server settings and password at a time.
    Mailbox,
    /// The Exchange ActiveSync front door: checks phones' app passwords.
    ActiveSync,
}

impl Service {
    /// Every service that may hold a credential.
    pub const ALL: [Service; 6] = [
        Service::Ingest,
        Service::Dispatch,
        Service::Session,
        Service::Gateway,
        Service::Mailbox,
        Service::ActiveSync,
    ];

    /// The service's name, as in its binary and its credential.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Dispatch => "dispatch",
            Self::Session => "session",
            Self::Gateway => "gateway",
            Self::Mailbox => "mailbox",
            Self::ActiveSync => "activesync",
        }
    }

    /// The service called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a credential was refused. Callers see only "unauthenticated"; the
/// variant is for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// Not a service credential at all.
    #[error("malformed service credential")]
    Malformed,
    /// Signed by a key this server does not trust, or altered.
    #[error("service credential signature invalid")]
    Signature,
    /// Signed, but for a service this build does not know.
    #[error("service credential names an unknown service")]
    UnknownService,
    /// A configured key is unusable.
    #[error("service key invalid: {0}")]
    Key(&'static str),
}

#[derive(Serialize, Deserialize)]
struct Claims {
    /// The service.
    s: String,
    /// Issued at, ms since the epoch.
    iat: i64,
}

/// Mints credentials (`pushmail keys`, standalone).
pub struct CredentialIssuer {
    key: Ed25519KeyPair,
}

impl fmt::Debug for CredentialIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CredentialIssuer(<private key>)")
    }
}

impl CredentialIssuer {
    /// The issuer from a 32-byte seed in hex (64 digits).
    pub fn from_seed_hex(seed: &str) -> Result<Self, CredentialError> {
        let seed = hex::decode(seed.trim()).map_err(|_| CredentialError::Key("seed is not hex"))?;
        let key = Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|_| CredentialError::Key("seed must be 32 bytes"))?;
        Ok(Self { key })
    }

    /// The public key every server trusts, hex.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.public_key().as_ref())
    }

    /// The credential of `service`.
    pub fn mint(&self, service: Service, issued_at_ms: i64) -> Secret {
        let claims = Claims {
            s: service.as_str().to_owned(),
            iat: issued_at_ms,
        };
        // Serialising a string and an integer cannot fail.
        let payload = serde_json::to_vec(&claims).unwrap_or_default();
        let signed = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(payload));
        let signature = self.key.sign(signed.as_bytes());
        Secret::new(format!(
            "{signed}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}

/// Whether `token` has the shape of a service credential (the REST edge
/// refuses those before anything else).
pub fn is_service_credential(token: &str) -> bool {
    token.trim_start().starts_with(PREFIX)
}

/// The issuer public keys a server trusts (config: a list, or one string
/// of keys separated by commas or spaces, which is what an environment
/// variable can carry).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceKeys(Vec<String>);

impl ServiceKeys {
    /// These keys.
    pub fn new(keys: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self(keys.into_iter().map(Into::into).collect())
    }

    /// Whether none is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every key is 64 hex digits, and there is at least one.
    pub fn validate(&self, key: &str) -> Result<(), crate::config::ConfigError> {
        if self.0.is_empty() {
            return Err(crate::config::ConfigError::invalid(
                key,
                "is required: the service issuer's public key (`pushmail keys` prints it as PUSHMAIL_SERVICE_KEYS)",
            ));
        }
        if self
            .0
            .iter()
            .any(|k| k.len() != 64 || !k.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(crate::config::ConfigError::invalid(
                key,
                "each key must be 64 hex digits",
            ));
        }
        Ok(())
    }

    /// A verifier trusting these keys.
    pub fn verifier(&self) -> Result<ServiceVerifier, CredentialError> {
        let keys = self
            .0
            .iter()
            .map(|k| {
                let key = hex::decode(k.trim())
                    .map_err(|_| CredentialError::Key("public key is not hex"))?;
                if key.len() == 32 {
                    Ok(key)
                } else {
                    Err(CredentialError::Key("public key must be 32 bytes"))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(ServiceVerifier {
            keys,
            cache: RwLock::default(),
        })
    }
}

/// Joined by commas: the form an environment variable carries.
impl fmt::Display for ServiceKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

impl Serialize for ServiceKeys {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ServiceKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            List(Vec<String>),
            Joined(String),
        }
        let keys = match Form::deserialize(deserializer)? {
            Form::List(keys) => keys,
            Form::Joined(joined) => joined
                .split([',', ' '])
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect(),
        };
        Ok(Self(keys))
    }
}

/// Checks credentials with the issuer's public keys.
pub struct ServiceVerifier {
    keys: Vec<Vec<u8>>,
    cache: RwLock<HashMap<[u8; 32], Service>>,
}

impl fmt::Debug for ServiceVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceVerifier")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl ServiceVerifier {
    /// The service a valid credential belongs to.
    pub fn verify(&self, token: &str) -> Result<Service, CredentialError> {
        let token = token.trim();
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let cached = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&digest)
            .copied();
        if let Some(service) = cached {
            return Ok(service);
        }
        let service = self.check(token)?;
        let mut cache = self
            .cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(digest, service);
        Ok(service)
    }

    fn check(&self, token: &str) -> Result<Service, CredentialError> {
        let rest = token
            .strip_prefix(PREFIX)
            .ok_or(CredentialError::Malformed)?;
        let (payload_b64, signature_b64) =
            rest.split_once('.').ok_or(CredentialError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| CredentialError::Malformed)?;
        let signed = &token[..PREFIX.len() + payload_b64.len()];
        if !self.keys.iter().any(|key| {
            UnparsedPublicKey::new(&ED25519, key)
                .verify(signed.as_bytes(), &signature)
                .is_ok()
        }) {
            return Err(CredentialError::Signature);
        }
        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| CredentialError::Malformed)?;
        let claims: Claims =
            serde_json::from_slice(&payload).map_err(|_| CredentialError::Malformed)?;
        Service::parse(&claims.s).ok_or(CredentialError::UnknownService)
    }

    /// The calling service, if it may call `method`: UNAUTHENTICATED for a
    /// missing or invalid credential, PERMISSION_DENIED for a service that
    /// is not in `allowed`.
    pub fn authorize(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        method: &'static str,
        allowed: &[Service],
    ) -> Result<Service, tonic::Status> {
        let presented = crate::auth::bearer(metadata).ok_or_else(|| {
            tonic::Status::unauthenticated(
                "authorization metadata is required: Bearer <service credential>",
            )
        })?;
        let service = self.verify(presented).map_err(|err| {
            tracing::warn!(method, error = %crate::report::Report(&err), "service credential refused");
            tonic::Status::unauthenticated("the service credential is not valid")
        })?;
        if allowed.contains(&service) {
            Ok(service)
        } else {
            tracing::warn!(method, caller = %service, "service not allowed to call this method");
            Err(tonic::Status::permission_denied(format!(
                "the {service} service may not call {method}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const OTHER: &str = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";

    fn verifier(seeds: &[&str]) -> ServiceVerifier {
        ServiceKeys::new(
            seeds
                .iter()
                .map(|s| CredentialIssuer::from_seed_hex(s).unwrap().public_key_hex()),
        )
        .verifier()
        .unwrap()
    }

    fn metadata(token: &str) -> tonic::metadata::MetadataMap {
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert("authorization", format!("Bearer {token}").parse().unwrap());
        metadata
    }

    #[test]
    fn a_credential_names_its_service() {
        let issuer = CredentialIssuer::from_seed_hex(SEED).unwrap();
        let verifier = verifier(&[SEED]);
        for service in Service::ALL {
            let credential = issuer.mint(service, 1);
            assert!(is_service_credential(credential.expose()));
            assert_eq!(verifier.verify(credential.expose()), Ok(service));
            // The cached answer is the same.
            assert_eq!(verifier.verify(credential.expose()), Ok(service));
        }
    }

    #[test]
    fn foreign_altered_and_garbage_credentials_are_refused() {
        let verifier = verifier(&[SEED]);
        let foreign = CredentialIssuer::from_seed_hex(OTHER)
            .unwrap()
            .mint(Service::Ingest, 1);
        assert_eq!(
            verifier.verify(foreign.expose()),
            Err(CredentialError::Signature)
        );
        // A payload claiming ingest with dispatch's signature.
        let issuer = CredentialIssuer::from_seed_hex(SEED).unwrap();
        let dispatch = issuer.mint(Service::Dispatch, 1);
        let ingest = issuer.mint(Service::Ingest, 1);
        let (ingest_head, _) = ingest.expose().rsplit_once('.').unwrap();
        let (_, dispatch_signature) = dispatch.expose().rsplit_once('.').unwrap();
        assert_eq!(
            verifier.verify(&format!("{ingest_head}.{dispatch_signature}")),
            Err(CredentialError::Signature)
        );
        for garbage in ["", "pms1.", "pms1.x", "pms1.x.y", "pmk_abc", "pms1.!!.!!"] {
            assert!(verifier.verify(garbage).is_err(), "{garbage:?}");
        }
        assert!(!is_service_credential("pmk_abc"));
    }

    #[test]
    fn rotation_trusts_both_keys_during_the_overlap() {
        let both = verifier(&[SEED, OTHER]);
        for seed in [SEED, OTHER] {
            let credential = CredentialIssuer::from_seed_hex(seed)
                .unwrap()
                .mint(Service::Gateway, 1);
            assert_eq!(both.verify(credential.expose()), Ok(Service::Gateway));
        }
    }

    #[test]
    fn authorize_tells_unauthenticated_from_not_allowed() {
        let issuer = CredentialIssuer::from_seed_hex(SEED).unwrap();
        let verifier = verifier(&[SEED]);
        let dispatch = issuer.mint(Service::Dispatch, 1);
        let allowed = [Service::Dispatch];
        assert_eq!(
            verifier
                .authorize(&metadata(dispatch.expose()), "Deliver", &allowed)
                .unwrap(),
            Service::Dispatch
        );
        let gateway = issuer.mint(Service::Gateway, 1);
        let denied = verifier
            .authorize(&metadata(gateway.expose()), "Deliver", &allowed)
            .unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        let bogus = verifier
            .authorize(&metadata("pms1.a.b"), "Deliver", &allowed)
            .unwrap_err();
        assert_eq!(bogus.code(), tonic::Code::Unauthenticated);
        let none = verifier
            .authorize(&tonic::metadata::MetadataMap::new(), "Deliver", &allowed)
            .unwrap_err();
        assert_eq!(none.code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn keys_come_as_a_list_or_one_joined_string() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let joined: ServiceKeys = serde_json::from_str(&format!("\"{a}, {b}\"")).unwrap();
        let list: ServiceKeys = serde_json::from_str(&format!("[\"{a}\", \"{b}\"]")).unwrap();
        assert_eq!(joined, list);
        assert!(joined.validate("k").is_ok());
        assert!(ServiceKeys::default().validate("k").is_err());
        assert!(ServiceKeys::new(["abc"]).validate("k").is_err());
        assert!(!format!("{:?}", CredentialIssuer::from_seed_hex(SEED).unwrap()).contains(SEED));
    }
}
