//! Who may fetch: a device token (header, or `?token=` for clients that
//! cannot set one) of the account's tenant, for a device that binding
//! lists among the account's delivery targets right now (a revoked device
//! or a revoked binding is not one). The message itself must have been
//! delivered to the account; transcode checks that against the blob
//! store's grants.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use pushmail_common::grpc::TracedChannel;
use pushmail_device_token::{DeviceClaims, Revocations, TokenVerifier};
use pushmail_proto::binding::v1 as binding;
use pushmail_proto::binding::v1::binding_service_client::BindingServiceClient;

use crate::reply::ApiError;

/// The device's standing for one account.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    pub(crate) tenant: String,
    pub(crate) account: String,
    /// The device asking.
    pub(crate) device: String,
    /// The device's binding preferences (attachments on or off, …).
    pub(crate) preferences: binding::Preferences,
}

type Targets = Vec<binding::DeliveryTarget>;

/// Checks devices against binding, with a short cache per account.
pub(crate) struct Gate {
    verifier: TokenVerifier,
    revocations: Revocations,
    binding: BindingServiceClient<TracedChannel>,
    ttl: Duration,
    cache: Mutex<HashMap<(String, String), (Instant, Targets)>>,
}

/// Accounts whose devices are remembered at most; past it the cache is
/// emptied (it only saves binding calls during one download).
const CACHE_ACCOUNTS: usize = 10_000;

impl Gate {
    pub(crate) fn new(
        verifier: TokenVerifier,
        binding: BindingServiceClient<TracedChannel>,
        ttl: Duration,
    ) -> Self {
        Self {
            verifier,
            revocations: Revocations::default(),
            binding,
            ttl,
            cache: Mutex::default(),
        }
    }

    /// The claims of the request's device token.
    pub(crate) fn authenticate(
        &self,
        headers: &HeaderMap,
        query_token: Option<&str>,
    ) -> Result<DeviceClaims, ApiError> {
        let header = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let token = header.or(query_token).ok_or(ApiError::Unauthenticated(
            "a device token is required (Authorization: Bearer pmd1.…)",
        ))?;
        self.verifier
            .verify(token, pushmail_common::clock::now_ms(), &self.revocations)
            .map_err(|e| {
                tracing::debug!(reason = %e, "device token refused");
                ApiError::Unauthenticated("the device token is not valid")
            })
    }

    /// The device's access to `account`, or NOT_FOUND: another tenant's
    /// or another person's account looks the same as no account.
    pub(crate) async fn access(
        &self,
        claims: &DeviceClaims,
        account: &str,
    ) -> Result<Access, ApiError> {
        let targets = self.targets(&claims.tenant_id, account).await?;
        let target = targets
            .into_iter()
            .find(|t| t.device_id == claims.device_id)
            .ok_or(ApiError::NotFound("no such message for this device"))?;
        Ok(Access {
            tenant: claims.tenant_id.clone(),
            account: account.to_owned(),
            device: claims.device_id.clone(),
            preferences: target.preferences.unwrap_or_default(),
        })
    }

    async fn targets(&self, tenant: &str, account: &str) -> Result<Targets, ApiError> {
        let key = (tenant.to_owned(), account.to_owned());
        if let Some((at, targets)) = self.lock().get(&key)
            && at.elapsed() < self.ttl
        {
            return Ok(targets.clone());
        }
        let request = binding::GetDeliveryTargetsRequest {
            tenant_id: tenant.to_owned(),
            account_id: account.to_owned(),
        };
        let targets = match self.binding.clone().get_delivery_targets(request).await {
            Ok(response) => response.into_inner().targets,
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::NotFound
                        | tonic::Code::InvalidArgument
                        | tonic::Code::PermissionDenied
                ) =>
            {
                Vec::new()
            }
            Err(status) => return Err(ApiError::from_upstream("binding", &status)),
        };
        if !self.ttl.is_zero() {
            let mut cache = self.lock();
            if cache.len() >= CACHE_ACCOUNTS {
                cache.clear();
            }
            cache.insert(key, (Instant::now(), targets.clone()));
        }
        Ok(targets)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), (Instant, Targets)>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
