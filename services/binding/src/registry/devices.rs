//! Devices and their tokens.

use pushmail_device_token::DeviceClaims;

use super::{ApiError, Registry};
use crate::clock::now_ms;
use crate::domain::{Device, DeviceId, Msisdn, NewDevice, TenantId};
use crate::events::{Announcement, Change};

/// A signed device token and its expiry.
#[derive(Clone)]
pub(crate) struct IssuedToken {
    /// The token the device presents to the session service.
    pub token: String,
    /// Expiry, ms since the epoch.
    pub expires_at_ms: i64,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"<redacted>")
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

impl Registry {
    /// Registers a device behind a number with a verified binding in the
    /// tenant and issues its first token.
    pub(crate) async fn register_device(
        &self,
        tenant: TenantId,
        device: &NewDevice,
    ) -> Result<(Device, IssuedToken), ApiError> {
        self.require_tenant(tenant).await?;
        let created = self
            .store()
            .register_device(tenant, device)
            .await
            .map_err(|e| match e {
                crate::store::StoreError::NotFound("verified binding") => {
                    ApiError::FailedPrecondition(format!(
                        "msisdn: {} has no verified binding in this tenant; bind and verify it first",
                        device.msisdn
                    ))
                }
                other => other.into(),
            })?;
        self.device_changed(&created, Change::DeviceRegistered, created.created_at_ms)
            .await?;
        let token = self.sign(&created);
        Ok((created, token))
    }

    /// One of the tenant's devices.
    pub(crate) async fn device(&self, tenant: TenantId, id: DeviceId) -> Result<Device, ApiError> {
        self.store()
            .device(tenant, id)
            .await?
            .ok_or(ApiError::NotFound("device"))
    }

    /// A fresh token for a live device.
    pub(crate) async fn issue_token(
        &self,
        tenant: TenantId,
        id: DeviceId,
    ) -> Result<IssuedToken, ApiError> {
        let device = self.device(tenant, id).await?;
        if device.revoked_at_ms.is_some() {
            return Err(ApiError::FailedPrecondition(
                "the device is revoked; register it again".to_owned(),
            ));
        }
        Ok(self.sign(&device))
    }

    fn sign(&self, device: &Device) -> IssuedToken {
        let issued_at_ms = now_ms();
        let ttl = i64::try_from(self.keys().token_ttl.as_millis()).unwrap_or(i64::MAX);
        let expires_at_ms = issued_at_ms.saturating_add(ttl);
        let token = self.keys().tokens.sign(&DeviceClaims {
            tenant_id: device.tenant_id.to_string(),
            device_id: device.id.to_string(),
            msisdn: device.msisdn.as_str().to_owned(),
            issued_at_ms,
            expires_at_ms,
        });
        IssuedToken {
            token,
            expires_at_ms,
        }
    }

    /// Revokes a device: every token issued before now is void once session
    /// nodes hear of it. Idempotent (the first cut-off stands), so a failed
    /// announcement is retried by calling again.
    pub(crate) async fn revoke_device(
        &self,
        tenant: TenantId,
        id: DeviceId,
    ) -> Result<Device, ApiError> {
        let device = self.store().revoke_device(tenant, id, now_ms()).await?;
        let cutoff = device.revoked_at_ms.unwrap_or_else(now_ms);
        self.device_changed(&device, Change::DeviceRevoked, cutoff)
            .await?;
        Ok(device)
    }

    /// The tenant's devices behind a number.
    pub(crate) async fn list_devices(
        &self,
        tenant: TenantId,
        msisdn: &Msisdn,
    ) -> Result<Vec<Device>, ApiError> {
        self.require_tenant(tenant).await?;
        Ok(self.store().devices_of(tenant, msisdn).await?)
    }

    /// A device's change touches every account verified for its number.
    pub(super) async fn device_changed(
        &self,
        device: &Device,
        change: Change,
        at_ms: i64,
    ) -> Result<(), ApiError> {
        let accounts = self
            .store()
            .accounts_bound_to(device.tenant_id, &device.msisdn)
            .await?;
        self.changed(
            &accounts,
            Announcement {
                tenant: device.tenant_id,
                account: None,
                change,
                msisdn: Some(&device.msisdn),
                device: Some(device.id),
                at_ms,
            },
        )
        .await
    }
}
