//! SMTP relay credentials and relay policies.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::{RelayCredential, RelayCredentialId, RelayPolicy, ServerSettings, TenantId};

/// Relay credentials (stored with their argon2id hash) and policies.
#[async_trait]
pub trait RelayStore: Send + Sync {
    /// Stores a new credential of `credential.tenant_id` with the PHC
    /// string of its password.
    async fn create_relay_credential(
        &self,
        credential: &RelayCredential,
        password_hash: &str,
    ) -> Result<(), StoreError>;

    /// The tenant's credentials, oldest first.
    async fn relay_credentials(&self, tenant: TenantId)
    -> Result<Vec<RelayCredential>, StoreError>;

    /// Revokes one of the tenant's credentials at `now_ms` (the first
    /// revocation stands).
    async fn revoke_relay_credential(
        &self,
        tenant: TenantId,
        id: RelayCredentialId,
        now_ms: i64,
    ) -> Result<RelayCredential, StoreError>;

    /// The unrevoked credential with this username and its password hash.
    async fn relay_login(
        &self,
        username: &str,
    ) -> Result<Option<(RelayCredential, String)>, StoreError>;

    /// The tenant's policy (empty until set).
    async fn relay_policy(&self, tenant: TenantId) -> Result<RelayPolicy, StoreError>;

    /// Replaces the tenant's policy.
    async fn set_relay_policy(
        &self,
        tenant: TenantId,
        policy: &RelayPolicy,
    ) -> Result<(), StoreError>;

    /// The tenant's outbound relay with its sealed password; `None`: none
    /// is set.
    async fn submission_relay(
        &self,
        tenant: TenantId,
    ) -> Result<Option<(ServerSettings, Vec<u8>)>, StoreError>;

    /// Sets the tenant's outbound relay; `sealed_password` `None` keeps
    /// the stored one (`NotFound("submission relay password")` when there
    /// is none to keep).
    async fn set_submission_relay(
        &self,
        tenant: TenantId,
        relay: &ServerSettings,
        sealed_password: Option<&[u8]>,
    ) -> Result<(), StoreError>;

    /// Removes the tenant's outbound relay (nothing to remove is no error).
    async fn clear_submission_relay(&self, tenant: TenantId) -> Result<(), StoreError>;
}
