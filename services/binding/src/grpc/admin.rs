//! The tenant admin surface.

use pushmail_common::redact::Secret;
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::binding::v1::admin_service_server::AdminService;
use tonic::{Request, Response, Status};

use super::auth::caller;
use super::status::respond;
use super::{next_page, next_time_page, page, page_of, time_cursor};
use crate::clock::timestamp;
use crate::domain::{AccountId, BindingId, DeviceId, NewTenant, TenantId};
use crate::registry::{ApiError, IssuedToken, Registry};
use crate::wire;

pub(super) struct Admin {
    registry: Registry,
}

impl Admin {
    pub(super) fn new(registry: Registry) -> Self {
        Self { registry }
    }

    /// The caller and the tenant the request acts on.
    async fn scope<T>(&self, request: &Request<T>, tenant_id: &str) -> Result<TenantId, ApiError> {
        scope(&self.registry, request, tenant_id).await
    }
}

/// The tenant a request acts on, as its caller may.
pub(super) async fn scope<T>(
    registry: &Registry,
    request: &Request<T>,
    tenant_id: &str,
) -> Result<TenantId, ApiError> {
    caller(registry, request.metadata())
        .await?
        .tenant(tenant_id)
}

fn token_response(
    device: &crate::domain::Device,
    token: IssuedToken,
) -> pb::RegisterDeviceResponse {
    pb::RegisterDeviceResponse {
        device: Some(wire::device(device)),
        device_token: token.token,
        token_expires_at: Some(timestamp(token.expires_at_ms)),
    }
}

#[tonic::async_trait]
impl AdminService for Admin {
    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        respond(
            async {
                match caller(&self.registry, request.metadata()).await? {
                    super::auth::Caller::Operator => Ok(pb::WhoAmIResponse {
                        operator: true,
                        sms_outbox: self.registry.sms_outbox_enabled(),
                        ..Default::default()
                    }),
                    super::auth::Caller::Tenant(tenant) => Ok(pb::WhoAmIResponse {
                        operator: false,
                        tenant_id: tenant.to_string(),
                        time_zone: self
                            .registry
                            .tenant(tenant)
                            .await?
                            .time_zone
                            .name()
                            .to_owned(),
                        sms_outbox: self.registry.sms_outbox_enabled(),
                    }),
                    super::auth::Caller::Service(_) => Err(ApiError::PermissionDenied(
                        "a service credential is not an admin credential",
                    )),
                }
            }
            .await,
        )
    }

    async fn create_tenant(
        &self,
        request: Request<pb::CreateTenantRequest>,
    ) -> Result<Response<pb::CreateTenantResponse>, Status> {
        respond(
            async {
                caller(&self.registry, request.metadata())
                    .await?
                    .require_operator()?;
                let req = request.get_ref();
                let name = req.name.trim();
                if name.is_empty() || name.chars().count() > 200 {
                    return Err(ApiError::invalid("name", "must be 1 to 200 characters"));
                }
                let mut domains = wire::domains("domains", &req.domains)?;
                domains.sort();
                domains.dedup();
                if domains.len() > crate::registry::MAX_DOMAINS {
                    return Err(ApiError::invalid("domains", "at most 100 per tenant"));
                }
                let (tenant, key) = self
                    .registry
                    .create_tenant(&NewTenant {
                        name: name.to_owned(),
                        max_accounts: req.max_accounts,
                        sms_per_day: req.sms_per_day,
                        push_per_minute: req.push_per_minute,
                        codes_per_day: (req.codes_per_day > 0).then_some(req.codes_per_day),
                        domains,
                        time_zone: crate::domain::TenantZone::parse(&req.time_zone)
                            .map_err(|e| ApiError::invalid("time_zone", e.to_string()))?,
                    })
                    .await?;
                Ok(pb::CreateTenantResponse {
                    tenant_id: tenant.id.to_string(),
                    api_key: key.expose().to_owned(),
                })
            }
            .await,
        )
    }

    async fn create_account(
        &self,
        request: Request<pb::CreateAccountRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        respond(
            async {
                let tenant = self.scope(&request, &request.get_ref().tenant_id).await?;
                let req = request.get_ref();
                let account = wire::new_account(req)?;
                let password = req
                    .credentials
                    .as_ref()
                    .map(|c| Secret::new(c.password.clone()));
                let created = self
                    .registry
                    .create_account(tenant, &account, password.as_ref())
                    .await?;
                Ok(wire::account(&created))
            }
            .await,
        )
    }

    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        respond(
            async {
                let req = request.get_ref();
                let tenant = self.scope(&request, &req.tenant_id).await?;
                let id = wire::id("account_id", &req.account_id, AccountId::parse)?;
                Ok(wire::account(&self.registry.account(tenant, id).await?))
            }
            .await,
        )
    }

    async fn list_accounts(
        &self,
        request: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        respond(
            async {
                let req = request.get_ref();
                let tenant = self.scope(&request, &req.tenant_id).await?;
                if req.query.chars().count() > 254 {
                    return Err(ApiError::invalid("query", "at most 254 characters"));
                }
                let page = page(req.page.as_ref())?;
                let after = page
                    .after
                    .map(|c| wire::id("page.cursor", c, AccountId::parse))
                    .transpose()?;
                let accounts = self
                    .registry
                    .list_accounts(tenant, &req.query, after, page.size)
                    .await?;
                let ids: Vec<String> = accounts.iter().map(|a| a.id.to_string()).collect();
                Ok(pb::ListAccountsResponse {
                    accounts: accounts.iter().map(wire::account).collect(),
                    page: next_page(&ids, page.size),
                })
            }
            .await,
        )
    }

    async fn delete_account(
        &self,
        request: Request<pb::DeleteAccountRequest>,
    ) -> Result<Response<pb::DeleteAccountResponse>, Status> {
        respond(
            async {
                let req = request.get_ref();
                let tenant = self.scope(&request, &req.tenant_id).await?;
                let id = wire::id("account_id", &req.account_id, AccountId::parse)?;
                self.registry.delete_account(tenant, id).await?;
                Ok(pb::DeleteAccountResponse {})
            }
            .await,
        )
    }

    async fn start_binding(
        &self,
        request: Request<pb::StartBindingRequest>,
    ) -> Result<Response<pb::Binding>, Status> {
        respond(
            async {
                let req = request.get_ref();
                let tenant = self.scope(&request, &req.tenant_id).await?;
                let account = wire::id("account_id", &req.account_id, AccountId::parse)?;
                let msisdn = wire::msisdn("msisdn", &req.msisdn)?;
                let binding = self
                    .registry
                    .start_binding(tenant, account, &msisdn)
                    .await?;
                Ok(wire::binding(&binding))
            }
            .await,
        )
    }

    async fn verify_binding(
        &self,
        request: Request<pb::VerifyBindingRequest>,
    ) -> Result<Response<pb::Binding>, Status> {
        respond(
            async {
                let req = request.get_ref();
                let tenant = self.scope(&request, &req.tenant_id).await?;
                let id = wire::id("binding_id", &req.binding_id, BindingId::parse)?;
                let binding = self
                    .registry
                    .verify_binding(tenant, id, req.code.trim())
                    .await?;
                Ok(wire::binding(&binding))
            }
            .await,
        )
    }

    async fn revoke_binding(
        &self,
        request: Request<pb::RevokeBindingRequest>,
    ) -> Result<Response<pb::Binding>, Status> {
        respond(
            async {
                let req = request.get_ref();
                let tenant = self.scope(&request, &req.tenant_id).await?;
                let id = wire::id("binding_id", &req.binding_id, BindingId::parse)?;
                Ok(wire::binding(
                    &self.registry.revoke_binding(tenant, id).await?,
                ))
            }
            .await,
        )
    }

    async fn list_bindings(
        &self,
        request: Request<pb::ListBindingsRequest>,
    ) -> Result<Response<pb::ListBindingsResponse>, Status> {
        respond(
            async {
                let req = request.get_ref();
                let tenant = self.scope(&request, &req.tenant_id).await?;
                let account = wire::id("account_id", &req.account_id, AccountId::parse)?;
                let page = page(req.page.as_ref())?;
                let all = self.registry.list_bindings(tenant, account).await?;
                let (bindings, next) = page_of(all, &page, |b| b.id.to_string());
                Ok(pb::ListBindingsResponse {
                    bindings: bindings.iter().map(wire::binding).collect(),
                    page: next,
                })
            }
            .await,
        )
    }

    async fn register_device(
        &self,
        request: Request<pb::RegisterDeviceRequest>,
    ) -> Result<Response<pb::RegisterDeviceResponse>, Status> {
        respond(
            async {
                let req = request.get_ref();
                let tenant = self.scope(&request, &req.tenant_id).await?;
                let device = wire::new_device(req)?;
                let (device, token) = self.registry.register_device(tenant, &device).await?;
                Ok(token_response(&device, token))
            }
            .await,
        )
    }

    async fn issue_device_token(
        &self,
        request: Request<pb::IssueDeviceTokenRequest>,
    ) -> Result<Response<pb::RegisterDeviceResponse>, Status> {
        respond(
            async {
                let req = request.get_ref();
                let tenant = self.scope(&request, &req.tenant_id).await?;
                let id = wire::id("device_id", &req.device_id, DeviceId::parse)?;
                let token = self.registry.issue_token(tenant, id).await?;
                let device = self.registry.device(tenant, id).await?;
                Ok(token_response(&device, token))
            }
            .await,
        )
    }

    async fn revoke_device(
        &self,
        request: Request<pb::RevokeDeviceRequest>,
    ) -> Result<Response<pb::Device>, Status> {
        respond(
            async {
                let req = request.get_ref();
                let tenant = self.scope(&request, &req.tenant_id).await?;
                let id = wire::id("device_id", &req.device_id, DeviceId::parse)?;
                Ok(wire::device(
                    &self.registry.revoke_device(tenant, id).await?,
                ))
            }
            .await,
        )
    }

    async fn list_devices(
        &self,
        request: Request<pb::ListDevicesRequest>,
    ) -> Result<Response<pb::ListDevicesResponse>, Status> {
        respond(
            async {
                let req = request.get_ref();
                let tenant = self.scope(&request, &req.tenant_id).await?;
                let msisdn = wire::msisdn("msisdn", &req.msisdn)?;
                let page = page(req.page.as_ref())?;
                let all = self.registry.list_devices(tenant, &msisdn).await?;
                let (devices, next) = page_of(all, &page, |d| d.id.to_string());
                Ok(pb::ListDevicesResponse {
                    devices: devices.iter().map(wire::device).collect(),
                    page: next,
                })
            }
            .await,
        )
    }

    async fn get_preferences(
        &self,
        request: Request<pb::GetPreferencesRequest>,
    ) -> Result<Response<pb::Preferences>, Status> {
        respond(
            async {
                let req = request.get_ref();
                let tenant = self.scope(&request, &req.tenant_id).await?;
                let id = wire::id("binding_id", &req.binding_id, BindingId::parse)?;
                let preferences = self.registry.preferences(tenant, id).await?;
                Ok(pb::Preferences {
                    tenant_id: tenant.to_string(),
                    binding_id: id.to_string(),
                    ..wire::preferences_to_proto(&preferences)
                })
            }
            .await,
        )
    }

    async fn update_preferences(
        &self,
        request: Request<pb::UpdatePreferencesRequest>,
    ) -> Result<Response<pb::Preferences>, Status> {
        respond(
            async {
                let input = request
                    .get_ref()
                    .preferences
                    .as_ref()
                    .ok_or_else(|| ApiError::invalid("preferences", "is required"))?;
                let tenant = self.scope(&request, &input.tenant_id).await?;
                let id = wire::id(
                    "preferences.binding_id",
                    &input.binding_id,
                    BindingId::parse,
                )?;
                let preferences = wire::preferences(input)?;
                let saved = self
                    .registry
                    .set_preferences(tenant, id, &preferences)
                    .await?;
                Ok(pb::Preferences {
                    tenant_id: tenant.to_string(),
                    binding_id: id.to_string(),
                    ..wire::preferences_to_proto(&saved)
                })
            }
            .await,
        )
    }

    async fn get_traffic_stats(
        &self,
        request: Request<pb::GetTrafficStatsRequest>,
    ) -> Result<Response<pb::GetTrafficStatsResponse>, Status> {
        respond(
            async {
                let req = request.get_ref();
                let tenant = self.scope(&request, &req.tenant_id).await?;
                let account = wire::id("account_id", &req.account_id, AccountId::parse)?;
                let from = wire::day("from_day", &req.from_day)?;
                let to = wire::day("to_day", &req.to_day)?;
                let days = self.registry.traffic(tenant, account, from, to).await?;
                Ok(pb::GetTrafficStatsResponse {
                    days: days
                        .iter()
                        .map(|d| wire::traffic_day(&req.account_id, d))
                        .collect(),
                })
            }
            .await,
        )
    }

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        respond(
            async {
                let req = request.get_ref();
                let tenant = self.scope(&request, &req.tenant_id).await?;
                let account = wire::id("account_id", &req.account_id, AccountId::parse)?;
                let page = page(req.page.as_ref())?;
                let after = time_cursor(&page)?;
                let entries = self
                    .registry
                    .deliveries(tenant, account, after.as_ref(), page.size)
                    .await?;
                let last = entries.last().map(|d| (d.at_ms, d.event_id.as_str()));
                let next = next_time_page(last, entries.len(), page.size);
                Ok(pb::ListDeliveriesResponse {
                    entries: entries.iter().map(wire::delivery).collect(),
                    page: next,
                })
            }
            .await,
        )
    }

    async fn update_account(
        &self,
        request: Request<pb::UpdateAccountRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        super::outbox::update_account(&self.registry, request).await
    }

    async fn list_outbound_sms(
        &self,
        request: Request<pb::ListOutboundSmsRequest>,
    ) -> Result<Response<pb::ListOutboundSmsResponse>, Status> {
        super::outbox::list_outbound_sms(&self.registry, request).await
    }

    async fn set_tenant_domains(
        &self,
        request: Request<pb::SetTenantDomainsRequest>,
    ) -> Result<Response<pb::TenantDomains>, Status> {
        super::keys::set_tenant_domains(&self.registry, request).await
    }

    async fn set_tenant_time_zone(
        &self,
        request: Request<pb::SetTenantTimeZoneRequest>,
    ) -> Result<Response<pb::TenantTimeZone>, Status> {
        super::keys::set_tenant_time_zone(&self.registry, request).await
    }

    async fn get_tenant_domains(
        &self,
        request: Request<pb::GetTenantDomainsRequest>,
    ) -> Result<Response<pb::TenantDomains>, Status> {
        super::keys::get_tenant_domains(&self.registry, request).await
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        super::keys::create_api_key(&self.registry, request).await
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        super::keys::list_api_keys(&self.registry, request).await
    }

    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::ApiKey>, Status> {
        super::keys::revoke_api_key(&self.registry, request).await
    }

    async fn create_app_password(
        &self,
        request: Request<pb::CreateAppPasswordRequest>,
    ) -> Result<Response<pb::CreateAppPasswordResponse>, Status> {
        super::app_passwords::create(&self.registry, request).await
    }

    async fn list_app_passwords(
        &self,
        request: Request<pb::ListAppPasswordsRequest>,
    ) -> Result<Response<pb::ListAppPasswordsResponse>, Status> {
        super::app_passwords::list(&self.registry, request).await
    }

    async fn revoke_app_password(
        &self,
        request: Request<pb::RevokeAppPasswordRequest>,
    ) -> Result<Response<pb::AppPassword>, Status> {
        super::app_passwords::revoke(&self.registry, request).await
    }

    async fn wipe_app_password(
        &self,
        request: Request<pb::WipeAppPasswordRequest>,
    ) -> Result<Response<pb::AppPassword>, Status> {
        super::app_passwords::wipe(&self.registry, request).await
    }

    async fn create_relay_credential(
        &self,
        request: Request<pb::CreateRelayCredentialRequest>,
    ) -> Result<Response<pb::CreateRelayCredentialResponse>, Status> {
        super::relay::create_credential(&self.registry, request).await
    }

    async fn list_relay_credentials(
        &self,
        request: Request<pb::ListRelayCredentialsRequest>,
    ) -> Result<Response<pb::ListRelayCredentialsResponse>, Status> {
        super::relay::list_credentials(&self.registry, request).await
    }

    async fn revoke_relay_credential(
        &self,
        request: Request<pb::RevokeRelayCredentialRequest>,
    ) -> Result<Response<pb::RelayCredential>, Status> {
        super::relay::revoke_credential(&self.registry, request).await
    }

    async fn get_relay_policy(
        &self,
        request: Request<pb::GetRelayPolicyRequest>,
    ) -> Result<Response<pb::RelayPolicy>, Status> {
        super::relay::get_policy(&self.registry, request).await
    }

    async fn set_relay_policy(
        &self,
        request: Request<pb::SetRelayPolicyRequest>,
    ) -> Result<Response<pb::RelayPolicy>, Status> {
        super::relay::set_policy(&self.registry, request).await
    }
    async fn get_submission_relay(
        &self,
        request: Request<pb::GetSubmissionRelayRequest>,
    ) -> Result<Response<pb::SubmissionRelay>, Status> {
        super::relay::get_submission_relay(&self.registry, request).await
    }

    async fn set_submission_relay(
        &self,
        request: Request<pb::SetSubmissionRelayRequest>,
    ) -> Result<Response<pb::SubmissionRelay>, Status> {
        super::relay::set_submission_relay(&self.registry, request).await
    }

    async fn clear_submission_relay(
        &self,
        request: Request<pb::ClearSubmissionRelayRequest>,
    ) -> Result<Response<pb::SubmissionRelay>, Status> {
        super::relay::clear_submission_relay(&self.registry, request).await
    }
}
