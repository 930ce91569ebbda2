//! SMTP relay credentials and relay policies.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::{RelayCredential, RelayCredentialId, RelayPolicy, TenantId};

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
}
