//! Who is asking: HTTP Basic with the account's address and an app
//! password, checked by binding (`AuthenticateAppPassword`, the activesync
//! service's credential only), which also pins the phone and says where
//! its provisioning stands.

use std::net::IpAddr;

use async_trait::async_trait;
use base64::Engine as _;
use pushmail_common::grpc::TracedChannel;
use pushmail_common::redact::Secret;
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::binding::v1::binding_service_client::BindingServiceClient;
use tonic::Code;

/// Binding's mark on a refusal that is the login's own outcome.
const LOGIN_OUTCOME: &str = "x-pushmail-login";

/// Longest `Authorization` header read.
const MAX_AUTHORIZATION: usize = 1_024;

/// The credentials of a request.
#[derive(Debug, Clone)]
pub struct Basic {
    /// As sent (binding drops a `DOMAIN\` and the case).
    pub username: String,
    /// The app password.
    pub password: Secret,
}

impl Basic {
    /// From an `Authorization` header; `None` when it is absent or not
    /// Basic with `user:password` in UTF-8.
    pub fn parse(header: Option<&str>) -> Option<Self> {
        let header = header?.trim();
        if header.len() > MAX_AUTHORIZATION {
            return None;
        }
        let (scheme, token) = header.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("Basic") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (username, password) = text.split_once(':')?;
        Some(Self {
            username: username.to_owned(),
            password: Secret::new(password.to_owned()),
        })
    }
}

/// A phone that logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The tenant.
    pub tenant: String,
    /// The account.
    pub account: String,
    /// The platform's device (of the bound number).
    pub device: String,
    /// The number.
    pub msisdn: String,
    /// The app password used.
    pub app_password: String,
    /// The account's address.
    pub address: String,
    /// The policy key the phone acknowledged last.
    pub policy_key: Option<u32>,
    /// The digest of the policy it applied with it ("": none).
    pub policy_digest: String,
    /// What the number's preferences ask of this phone.
    pub preferences: Preferences,
    /// A remote wipe ordered for this phone and not yet acknowledged.
    pub wipe: Option<Wipe>,
}

/// What a remote wipe ordered from the portal erases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wipe {
    /// The whole phone (`RemoteWipe`).
    Device,
    /// Only the account's data on it (`AccountOnlyRemoteWipe`, 16.1).
    Account,
}

impl Wipe {
    fn from_proto(kind: i32) -> Option<Self> {
        match pb::WipeKind::try_from(kind) {
            Ok(pb::WipeKind::Device) => Some(Self::Device),
            Ok(pb::WipeKind::Account) => Some(Self::Account),
            // Unspecified, or a kind newer than this replica: a phone is
            // never wiped on a guess.
            _ => None,
        }
    }
}

/// What a phone's binding asks of the mail it is given (its quiet hours
/// and lists are dispatch's: they decide what wakes a Ping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    /// Attachments are listed and fetched.
    pub attachments: bool,
    /// Bodies a Sync brings unasked are cut to this many bytes (0: as
    /// the phone asks); a message the user opens (ItemOperations) is not.
    pub max_body_bytes: u32,
    /// Added to what the phone sends ("": none).
    pub signature: String,
}

impl Default for Preferences {
    /// What a phone gets when binding names none: everything, as asked.
    fn default() -> Self {
        Self {
            attachments: true,
            max_body_bytes: 0,
            signature: String::new(),
        }
    }
}

impl From<Option<pb::Preferences>> for Preferences {
    fn from(preferences: Option<pb::Preferences>) -> Self {
        preferences.map_or_else(Self::default, |p| Self {
            attachments: p.attachments,
            max_body_bytes: p.max_push_bytes,
            signature: p.signature,
        })
    }
}

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Wrong address or password, or a revoked password, device or
    /// binding (HTTP 401).
    #[error("the address or app password is wrong")]
    Refused,
    /// The password belongs to another phone (HTTP 403).
    #[error("{0}")]
    OtherPhone(String),
    /// Too many failures lately (HTTP 503 with `Retry-After`).
    #[error("too many failed logins; retry after {0} s")]
    LockedOut(u64),
    /// Binding could not be asked.
    #[error("binding is unavailable")]
    Unavailable(#[source] tonic::Status),
}

/// What a phone says it is (`DeviceInformation`); its IMEI and number
/// are not passed on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceInformation {
    /// `Model`.
    pub model: String,
    /// `OS`.
    pub os: String,
    /// `FriendlyName`.
    pub friendly_name: String,
    /// `UserAgent`.
    pub user_agent: String,
    /// `MobileOperator`.
    pub mobile_operator: String,
}

/// Provisioning could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The phone acknowledged a key it was not offered.
    #[error("the policy key acknowledged is not the one offered")]
    WrongKey,
    /// Binding could not be asked.
    #[error("binding is unavailable")]
    Unavailable(#[source] tonic::Status),
}

/// Logins and provisioning, as binding keeps them.
#[async_trait]
pub trait Logins: Send + Sync {
    /// Checks `basic` from `peer` for the phone `device_id`/`device_type`.
    async fn login(
        &self,
        basic: &Basic,
        peer: IpAddr,
        device_id: &str,
        device_type: &str,
    ) -> Result<Login, LoginError>;

    /// With `acknowledged` `None`, a new policy key offered to the phone;
    /// with the offered key acknowledged, the phone's new key, applied
    /// with the policy of `digest`.
    async fn provision(
        &self,
        login: &Login,
        acknowledged: Option<u32>,
        digest: &str,
    ) -> Result<u32, ProvisionError>;

    /// The phone acknowledged the wipe ordered for it, having done `kind`:
    /// its password (and so this login) is revoked.
    async fn acknowledge_wipe(&self, login: &Login, kind: Wipe) -> Result<(), tonic::Status>;

    /// Records what the phone says it is.
    async fn record_device(
        &self,
        login: &Login,
        information: &DeviceInformation,
    ) -> Result<(), tonic::Status>;

    /// Addresses of the tenant's directory containing `query`, sorted, at
    /// most `limit`.
    async fn directory(
        &self,
        login: &Login,
        query: &str,
        limit: u32,
    ) -> Result<Vec<String>, tonic::Status>;
}

/// Binding over gRPC.
#[derive(Debug, Clone)]
pub struct BindingLogins(pub TracedChannel);

#[async_trait]
impl Logins for BindingLogins {
    async fn login(
        &self,
        basic: &Basic,
        peer: IpAddr,
        device_id: &str,
        device_type: &str,
    ) -> Result<Login, LoginError> {
        let answer = BindingServiceClient::new(self.0.clone())
            .authenticate_app_password(pb::AuthenticateAppPasswordRequest {
                username: basic.username.clone(),
                password: basic.password.expose().to_owned(),
                peer_ip: peer.to_string(),
                client_device_id: device_id.to_owned(),
                client_device_type: device_type.to_owned(),
            })
            .await
            .map_err(|status| {
                // Only binding's verdict on the login reaches the phone as
                // 401 or 403; a refused service credential is an outage,
                // not a wrong password to make the user retype.
                let outcome = status
                    .metadata()
                    .get(LOGIN_OUTCOME)
                    .and_then(|v| v.to_str().ok());
                match (status.code(), outcome) {
                    (Code::Unauthenticated, Some("refused")) => LoginError::Refused,
                    (Code::PermissionDenied, Some("other-phone")) => {
                        LoginError::OtherPhone(status.message().to_owned())
                    }
                    (Code::ResourceExhausted, _) => LoginError::LockedOut(
                        pushmail_common::grpc::retry_after(&status).unwrap_or(60),
                    ),
                    _ => LoginError::Unavailable(status),
                }
            })?
            .into_inner();
        Ok(Login {
            tenant: answer.tenant_id,
            account: answer.account_id,
            device: answer.device_id,
            msisdn: answer.msisdn,
            app_password: answer.app_password_id,
            address: answer.address,
            policy_key: (answer.policy_key != 0).then_some(answer.policy_key),
            preferences: answer.preferences.into(),
            policy_digest: answer.policy_digest,
            wipe: Wipe::from_proto(answer.wipe),
        })
    }

    async fn acknowledge_wipe(&self, login: &Login, kind: Wipe) -> Result<(), tonic::Status> {
        let kind = match kind {
            Wipe::Device => pb::WipeKind::Device,
            Wipe::Account => pb::WipeKind::Account,
        };
        BindingServiceClient::new(self.0.clone())
            .acknowledge_wipe(pb::AcknowledgeWipeRequest {
                tenant_id: login.tenant.clone(),
                app_password_id: login.app_password.clone(),
                kind: kind.into(),
            })
            .await?;
        Ok(())
    }

    async fn provision(
        &self,
        login: &Login,
        acknowledged: Option<u32>,
        digest: &str,
    ) -> Result<u32, ProvisionError> {
        let answer = BindingServiceClient::new(self.0.clone())
            .provision_device(pb::ProvisionDeviceRequest {
                tenant_id: login.tenant.clone(),
                app_password_id: login.app_password.clone(),
                acknowledged_policy_key: acknowledged.unwrap_or(0),
                policy_digest: digest.to_owned(),
            })
            .await
            .map_err(|status| match status.code() {
                Code::FailedPrecondition => ProvisionError::WrongKey,
                _ => ProvisionError::Unavailable(status),
            })?
            .into_inner();
        Ok(answer.policy_key)
    }

    async fn record_device(
        &self,
        login: &Login,
        information: &DeviceInformation,
    ) -> Result<(), tonic::Status> {
        BindingServiceClient::new(self.0.clone())
            .record_device_information(pb::RecordDeviceInformationRequest {
                tenant_id: login.tenant.clone(),
                app_password_id: login.app_password.clone(),
                device_information: Some(pb::DeviceInformation {
                    model: information.model.clone(),
                    os: information.os.clone(),
                    friendly_name: information.friendly_name.clone(),
                    user_agent: information.user_agent.clone(),
                    mobile_operator: information.mobile_operator.clone(),
                }),
            })
            .await?;
        Ok(())
    }

    async fn directory(
        &self,
        login: &Login,
        query: &str,
        limit: u32,
    ) -> Result<Vec<String>, tonic::Status> {
        let found = BindingServiceClient::new(self.0.clone())
            .search_directory(pb::SearchDirectoryRequest {
                tenant_id: login.tenant.clone(),
                query: query.to_owned(),
                limit,
            })
            .await?
            .into_inner();
        Ok(found.entries.into_iter().map(|e| e.address).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preferences_come_from_binding_and_default_to_everything_as_asked() {
        assert_eq!(
            Preferences::from(None),
            Preferences {
                attachments: true,
                max_body_bytes: 0,
                signature: String::new(),
            }
        );
        let set = Preferences::from(Some(pb::Preferences {
            attachments: false,
            max_push_bytes: 2_048,
            signature: "-- carrier".to_owned(),
            ..pb::Preferences::default()
        }));
        assert_eq!(
            (set.attachments, set.max_body_bytes, set.signature.as_str()),
            (false, 2_048, "-- carrier")
        );
    }

    fn header(text: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(text)
        )
    }

    #[test]
    fn basic_credentials_parse_and_keep_colons_in_the_password() {
        let basic = Basic::parse(Some(&header("CORP\\alice@corp.example:ab:cd"))).unwrap();
        assert_eq!(basic.username, "CORP\\alice@corp.example");
        assert_eq!(basic.password.expose(), "ab:cd");
        assert!(Basic::parse(Some(&header("no-colon"))).is_none());
        assert!(Basic::parse(Some("Bearer abc")).is_none());
        assert!(Basic::parse(Some("Basic !!!")).is_none());
        assert!(Basic::parse(None).is_none());
        let lower = header("a:b").replace("Basic", "basic");
        assert!(Basic::parse(Some(&lower)).is_some());
        assert!(Basic::parse(Some(&header(&"x".repeat(2_000)))).is_none());
    }
}
