//! Tenants' outbound relays: where mail from the phones of forwarded and
//! webhook accounts is sent, since those accounts have no login of their
//! own anywhere. The relay's password is sealed with the credentials key
//! to the tenant, as account passwords are to their accounts.

use pushmail_common::redact::Secret;

use super::{ApiError, Registry};
use crate::domain::{ServerSettings, TenantId};
use crate::store::StoreError;

/// What a relay's sealed password is bound to: it opens for no other
/// tenant, and never as an account's (those rows are `tenant/account`).
fn relay_row(tenant: TenantId) -> String {
    format!("submission-relay/{tenant}")
}

/// A relay as its tenant's forwarded and webhook accounts log in to it.
#[derive(Debug, Clone)]
pub(crate) struct OutboundRelay {
    /// Where, and as whom.
    pub server: ServerSettings,
    /// The opened password.
    pub password: Secret,
}

impl Registry {
    /// The tenant's outbound relay settings (never its password).
    pub(crate) async fn submission_relay(
        &self,
        tenant: TenantId,
    ) -> Result<Option<ServerSettings>, ApiError> {
        self.require_tenant(tenant).await?;
        Ok(self
            .store()
            .submission_relay(tenant)
            .await?
            .map(|(server, _)| server))
    }

    /// Sets the tenant's outbound relay, its host checked against the
    /// egress policy as a mailbox server's is (`wire` has checked the
    /// rest). Without `password` the stored one is kept; the first relay
    /// needs one.
    pub(crate) async fn set_submission_relay(
        &self,
        tenant: TenantId,
        server: &ServerSettings,
        password: Option<&Secret>,
    ) -> Result<ServerSettings, ApiError> {
        self.require_tenant(tenant).await?;
        self.check_mailbox_host("server.host", server).await?;
        let sealed = password
            .filter(|p| !p.is_empty())
            .map(|p| {
                self.keys()
                    .credentials
                    .seal(p.expose().as_bytes(), relay_row(tenant).as_bytes())
            })
            .transpose()
            .map_err(|e| ApiError::internal("sealing the relay credentials", e))?;
        self.store()
            .set_submission_relay(tenant, server, sealed.as_deref())
            .await
            .map_err(|e| match e {
                StoreError::NotFound("submission relay password") => ApiError::invalid(
                    "credentials.password",
                    "is required when the tenant has no relay yet",
                ),
                other => other.into(),
            })?;
        tracing::info!(%tenant, host = %server.host, port = server.port, "submission relay set");
        Ok(server.clone())
    }

    /// Removes the tenant's outbound relay: its forwarded and webhook
    /// accounts can no longer send.
    pub(crate) async fn clear_submission_relay(&self, tenant: TenantId) -> Result<(), ApiError> {
        self.require_tenant(tenant).await?;
        self.store().clear_submission_relay(tenant).await?;
        tracing::info!(%tenant, "submission relay cleared");
        Ok(())
    }

    /// The relay with its opened password, for the mailbox service.
    pub(super) async fn outbound_relay(
        &self,
        tenant: TenantId,
    ) -> Result<Option<OutboundRelay>, ApiError> {
        let Some((server, sealed)) = self.store().submission_relay(tenant).await? else {
            return Ok(None);
        };
        let plain = self
            .keys()
            .credentials
            .open(&sealed, relay_row(tenant).as_bytes())
            .map_err(|e| {
                ApiError::internal(
                    format!("the relay credentials of tenant {tenant} do not open with the configured key"),
                    e,
                )
            })?;
        let password = String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|e| ApiError::internal("relay credentials are not UTF-8", e))?;
        Ok(Some(OutboundRelay { server, password }))
    }
}
