//! Calls other pushmail services make, each allowed only to the services
//! that need it (the credential matrix in `docs/security.md`): a leaked
//! credential of an internet-facing service (session, gateway) reads no
//! mailbox password and changes no tenant.

use pushmail_common::service_identity::Service;
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::binding::v1::binding_service_server::BindingService;
use tonic::{Request, Response, Status};

use super::auth::caller;
use super::status::respond;
use super::{next_page, page};
use crate::domain::{AccountId, MailboxCheckpoint, TenantId, Traffic};
use crate::registry::{ApiError, Registry};
use crate::wire;

pub(super) struct Internal {
    registry: Registry,
}

impl Internal {
    pub(super) fn new(registry: Registry) -> Self {
        Self { registry }
    }

    async fn only<T>(&self, request: &Request<T>, allowed: &[Service]) -> Result<(), ApiError> {
        caller(&self.registry, request.metadata())
            .await?
            .require_service(allowed)
            .map(drop)
    }
}

/// Who may call what. Mailbox passwords leave binding only through
/// `ListWatchedAccounts`, to ingest (every watched account, to watch them),
/// and `GetAccountAccess`, to the mailbox service (one named account at a
/// time, to speak IMAP for the phone).
pub(crate) mod allowed {
    use pushmail_common::service_identity::Service;

    /// Watched accounts with their passwords: ingest's watchers.
    pub(crate) const LIST_WATCHED_ACCOUNTS: &[Service] = &[Service::Ingest];
    /// One account's server and password: the mailbox service, which
    /// logs in to the provider on the phone's behalf.
    pub(crate) const GET_ACCOUNT_ACCESS: &[Service] = &[Service::Mailbox];
    /// Ingest's mailbox checkpoints: ingest alone.
    pub(crate) const MAILBOX_CHECKPOINT: &[Service] = &[Service::Ingest];
    /// SMTP/LMTP recipients: ingest.
    pub(crate) const RESOLVE_RECIPIENT: &[Service] = &[Service::Ingest];
    /// Devices and preferences of an account: dispatch delivers, the
    /// gateway checks a fetching device.
    pub(crate) const GET_DELIVERY_TARGETS: &[Service] = &[Service::Dispatch, Service::Gateway];
    /// Pushes (dispatch) and fetched bytes (gateway).
    pub(crate) const RECORD_TRAFFIC: &[Service] = &[Service::Dispatch, Service::Gateway];
    /// SMS quota: dispatch.
    pub(crate) const CHARGE_SMS: &[Service] = &[Service::Dispatch];
    /// Push rates: dispatch.
    pub(crate) const GET_TENANT_LIMITS: &[Service] = &[Service::Dispatch];
    /// Relay logins of enterprise mail servers: ingest's SMTP/LMTP.
    pub(crate) const AUTHENTICATE_RELAY: &[Service] = &[Service::Ingest];
    /// Phones' ActiveSync logins: the activesync front door.
    pub(crate) const AUTHENTICATE_APP_PASSWORD: &[Service] = &[Service::ActiveSync];
    /// Phones' ActiveSync provisioning: the activesync front door.
    pub(crate) const PROVISION_DEVICE: &[Service] = &[Service::ActiveSync];
    /// Phones' wipe acknowledgements: the activesync front door.
    pub(crate) const ACKNOWLEDGE_WIPE: &[Service] = &[Service::ActiveSync];
    /// What phones say they are: the activesync front door.
    pub(crate) const RECORD_DEVICE_INFORMATION: &[Service] = &[Service::ActiveSync];
    /// Address search of phones' mail apps: the activesync front door.
    pub(crate) const SEARCH_DIRECTORY: &[Service] = &[Service::ActiveSync];
}

/// The tenant and account an internal call names; both are required.
fn account_of(tenant: &str, account: &str) -> Result<(TenantId, AccountId), ApiError> {
    Ok((
        wire::id("tenant_id", tenant, TenantId::parse)?,
        wire::id("account_id", account, AccountId::parse)?,
    ))
}

#[tonic::async_trait]
impl BindingService for Internal {
    async fn list_watched_accounts(
        &self,
        request: Request<pb::ListWatchedAccountsRequest>,
    ) -> Result<Response<pb::ListWatchedAccountsResponse>, Status> {
        respond(
            async {
                self.only(&request, allowed::LIST_WATCHED_ACCOUNTS).await?;
                let page = page(request.get_ref().page.as_ref())?;
                let after = page
                    .after
                    .map(|c| wire::id("page.cursor", c, AccountId::parse))
                    .transpose()?;
                let accounts = self.registry.watched_accounts(after, page.size).await?;
                let ids: Vec<String> = accounts.iter().map(|(a, _)| a.id.to_string()).collect();
                Ok(pb::ListWatchedAccountsResponse {
                    accounts: accounts
                        .iter()
                        .map(|(a, password)| {
                            wire::watched(a, password.as_ref().map(|p| p.expose().to_owned()))
                        })
                        .collect(),
                    page: next_page(&ids, page.size),
                })
            }
            .await,
        )
    }

    async fn get_account_access(
        &self,
        request: Request<pb::GetAccountAccessRequest>,
    ) -> Result<Response<pb::WatchedAccount>, Status> {
        respond(
            async {
                self.only(&request, allowed::GET_ACCOUNT_ACCESS).await?;
                let req = request.get_ref();
                let (tenant, account) = account_of(&req.tenant_id, &req.account_id)?;
                let access = self.registry.account_access(tenant, account).await?;
                let mut watched = wire::watched(
                    &access.account,
                    access.password.map(|p| p.expose().to_owned()),
                );
                watched.submission_credentials =
                    access.submission_password.map(|p| pb::Credentials {
                        password: p.expose().to_owned(),
                    });
                Ok(watched)
            }
            .await,
        )
    }

    async fn resolve_recipient(
        &self,
        request: Request<pb::ResolveRecipientRequest>,
    ) -> Result<Response<pb::ResolveRecipientResponse>, Status> {
        respond(
            async {
                self.only(&request, allowed::RESOLVE_RECIPIENT).await?;
                let req = request.get_ref();
                let address = wire::address("address", &req.address)?;
                let tenant = (!req.tenant_id.is_empty())
                    .then(|| wire::id("tenant_id", &req.tenant_id, TenantId::parse))
                    .transpose()?;
                Ok(
                    match self.registry.resolve_recipient(&address, tenant).await? {
                        Some(found) => pb::ResolveRecipientResponse {
                            found: true,
                            tenant_id: found.tenant.to_string(),
                            account_id: found.account.to_string(),
                            kind: wire::kind_to_proto(found.kind).into(),
                            allowed_sources: found.policy.sources_text(),
                            client_cert_sha256: found.policy.client_cert_sha256,
                        },
                        None => pb::ResolveRecipientResponse::default(),
                    },
                )
            }
            .await,
        )
    }

    async fn get_delivery_targets(
        &self,
        request: Request<pb::GetDeliveryTargetsRequest>,
    ) -> Result<Response<pb::GetDeliveryTargetsResponse>, Status> {
        respond(
            async {
                self.only(&request, allowed::GET_DELIVERY_TARGETS).await?;
                let req = request.get_ref();
                let (tenant, account) = account_of(&req.tenant_id, &req.account_id)?;
                let targets = self.registry.delivery_targets(tenant, account).await?;
                Ok(pb::GetDeliveryTargetsResponse {
                    targets: targets.iter().map(wire::target).collect(),
                })
            }
            .await,
        )
    }

    async fn charge_sms(
        &self,
        request: Request<pb::ChargeSmsRequest>,
    ) -> Result<Response<pb::ChargeSmsResponse>, Status> {
        respond(
            async {
                self.only(&request, allowed::CHARGE_SMS).await?;
                let req = request.get_ref();
                let (tenant, account) = account_of(&req.tenant_id, &req.account_id)?;
                self.registry.charge_sms(tenant, account).await?;
                Ok(pb::ChargeSmsResponse {})
            }
            .await,
        )
    }

    async fn record_traffic(
        &self,
        request: Request<pb::RecordTrafficRequest>,
    ) -> Result<Response<pb::RecordTrafficResponse>, Status> {
        respond(
            async {
                self.only(&request, allowed::RECORD_TRAFFIC).await?;
                let req = request.get_ref();
                let (tenant, account) = account_of(&req.tenant_id, &req.account_id)?;
                let traffic = Traffic {
                    pushed_count: req.pushed_count,
                    pushed_bytes: req.pushed_bytes,
                    fetched_count: req.fetched_count,
                    fetched_bytes: req.fetched_bytes,
                    sms_count: req.sms_count,
                };
                self.registry
                    .record_traffic(tenant, account, &traffic)
                    .await?;
                Ok(pb::RecordTrafficResponse {})
            }
            .await,
        )
    }

    async fn save_mailbox_checkpoint(
        &self,
        request: Request<pb::SaveMailboxCheckpointRequest>,
    ) -> Result<Response<pb::SaveMailboxCheckpointResponse>, Status> {
        respond(
            async {
                self.only(&request, allowed::MAILBOX_CHECKPOINT).await?;
                let req = request.get_ref();
                let (tenant, account) = account_of(&req.tenant_id, &req.account_id)?;
                let mailbox = wire::mailbox(&req.mailbox)?;
                let checkpoint = req
                    .checkpoint
                    .as_ref()
                    .ok_or_else(|| ApiError::invalid("checkpoint", "is required"))?;
                let checkpoint = MailboxCheckpoint {
                    uid_validity: checkpoint.uid_validity,
                    last_uid: checkpoint.last_uid,
                    at_ms: checkpoint.at_ms,
                };
                self.registry
                    .save_checkpoint(tenant, account, mailbox, &checkpoint)
                    .await?;
                Ok(pb::SaveMailboxCheckpointResponse {})
            }
            .await,
        )
    }

    async fn get_mailbox_checkpoint(
        &self,
        request: Request<pb::GetMailboxCheckpointRequest>,
    ) -> Result<Response<pb::GetMailboxCheckpointResponse>, Status> {
        respond(
            async {
                self.only(&request, allowed::MAILBOX_CHECKPOINT).await?;
                let req = request.get_ref();
                let (tenant, account) = account_of(&req.tenant_id, &req.account_id)?;
                let mailbox = wire::mailbox(&req.mailbox)?;
                let checkpoint = self.registry.checkpoint(tenant, account, mailbox).await?;
                Ok(pb::GetMailboxCheckpointResponse {
                    checkpoint: checkpoint.map(|c| pb::MailboxCheckpoint {
                        uid_validity: c.uid_validity,
                        last_uid: c.last_uid,
                        at_ms: c.at_ms,
                    }),
                })
            }
            .await,
        )
    }

    async fn get_tenant_limits(
        &self,
        request: Request<pb::GetTenantLimitsRequest>,
    ) -> Result<Response<pb::TenantLimits>, Status> {
        respond(
            async {
                self.only(&request, allowed::GET_TENANT_LIMITS).await?;
                let tenant = wire::id("tenant_id", &request.get_ref().tenant_id, TenantId::parse)?;
                let tenant = self.registry.tenant(tenant).await?;
                Ok(pb::TenantLimits {
                    max_accounts: tenant.max_accounts,
                    sms_per_day: tenant.sms_per_day,
                    push_per_minute: tenant.push_per_minute,
                })
            }
            .await,
        )
    }

    async fn authenticate_relay(
        &self,
        request: Request<pb::AuthenticateRelayRequest>,
    ) -> Result<Response<pb::AuthenticateRelayResponse>, Status> {
        respond(
            async {
                self.only(&request, allowed::AUTHENTICATE_RELAY).await?;
                let req = request.get_ref();
                let peer: std::net::IpAddr = req
                    .peer_ip
                    .trim()
                    .parse()
                    .map_err(|_| ApiError::invalid("peer_ip", "must be an IP address"))?;
                if req.username.is_empty()
                    || req.username.len() > 64
                    || req.password.is_empty()
                    || req.password.len() > 256
                {
                    return Err(ApiError::Unauthenticated("relay credentials refused"));
                }
                let login = self
                    .registry
                    .authenticate_relay(&req.username, &req.password, peer)
                    .await?;
                Ok(pb::AuthenticateRelayResponse {
                    tenant_id: login.tenant.to_string(),
                    credential_id: login.credential.to_string(),
                })
            }
            .await,
        )
    }

    async fn authenticate_app_password(
        &self,
        request: Request<pb::AuthenticateAppPasswordRequest>,
    ) -> Result<Response<pb::AuthenticateAppPasswordResponse>, Status> {
        super::app_passwords::respond_login(
            async {
                self.only(&request, allowed::AUTHENTICATE_APP_PASSWORD)
                    .await?;
                super::app_passwords::authenticate(&self.registry, request.get_ref()).await
            }
            .await,
        )
    }

    async fn provision_device(
        &self,
        request: Request<pb::ProvisionDeviceRequest>,
    ) -> Result<Response<pb::ProvisionDeviceResponse>, Status> {
        respond(
            async {
                self.only(&request, allowed::PROVISION_DEVICE).await?;
                super::app_passwords::provision(&self.registry, request.get_ref()).await
            }
            .await,
        )
    }

    async fn acknowledge_wipe(
        &self,
        request: Request<pb::AcknowledgeWipeRequest>,
    ) -> Result<Response<pb::AcknowledgeWipeResponse>, Status> {
        respond(
            async {
                self.only(&request, allowed::ACKNOWLEDGE_WIPE).await?;
                super::app_passwords::acknowledge_wipe(&self.registry, request.get_ref()).await
            }
            .await,
        )
    }

    async fn record_device_information(
        &self,
        request: Request<pb::RecordDeviceInformationRequest>,
    ) -> Result<Response<pb::RecordDeviceInformationResponse>, Status> {
        respond(
            async {
                self.only(&request, allowed::RECORD_DEVICE_INFORMATION)
                    .await?;
                super::app_passwords::record_device_information(&self.registry, request.get_ref())
                    .await
            }
            .await,
        )
    }

    async fn search_directory(
        &self,
        request: Request<pb::SearchDirectoryRequest>,
    ) -> Result<Response<pb::SearchDirectoryResponse>, Status> {
        respond(
            async {
                self.only(&request, allowed::SEARCH_DIRECTORY).await?;
                let req = request.get_ref();
                let tenant = wire::id("tenant_id", &req.tenant_id, TenantId::parse)?;
                let addresses = self
                    .registry
                    .directory(tenant, &req.query, req.limit)
                    .await?;
                Ok(pb::SearchDirectoryResponse {
                    entries: addresses
                        .into_iter()
                        .map(|address| pb::DirectoryEntry { address })
                        .collect(),
                })
            }
            .await,
        )
    }
}
