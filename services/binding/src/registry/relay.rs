//! SMTP relay credentials and policies of tenants, and the login check
//! ingest makes for a relay's AUTH (`AuthenticateRelay`).

use std::net::IpAddr;
use std::time::Instant;

use pushmail_common::redact::Secret;

use super::login::peer_key;
use super::{ApiError, Registry};
use crate::clock::now_ms;
use crate::domain::{RelayCredential, RelayCredentialId, RelayPolicy, TenantId};
use crate::passwords;

/// The same answer whatever was wrong: the username, the password, a
/// revoked credential.
const REFUSED: &str = "relay credentials refused";

/// A credential just made, with its password (shown once).
#[derive(Debug)]
pub(crate) struct NewRelayCredential {
    /// As stored.
    pub credential: RelayCredential,
    /// The generated password.
    pub password: Secret,
}

/// Whose relay logged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RelayLogin {
    /// The tenant.
    pub tenant: TenantId,
    /// The credential used.
    pub credential: RelayCredentialId,
}

impl Registry {
    /// A new credential for the tenant; its password is returned once.
    pub(crate) async fn create_relay_credential(
        &self,
        tenant: TenantId,
        description: &str,
    ) -> Result<NewRelayCredential, ApiError> {
        let password = passwords::password();
        let hashed = self.inner.relay.hash(&password).await?;
        let credential = RelayCredential {
            tenant_id: tenant,
            id: RelayCredentialId::generate(),
            username: passwords::username(),
            description: description.to_owned(),
            created_at_ms: now_ms(),
            revoked_at_ms: None,
        };
        self.store()
            .create_relay_credential(&credential, &hashed)
            .await?;
        tracing::info!(%tenant, credential = %credential.id, username = %credential.username, "relay credential created");
        Ok(NewRelayCredential {
            credential,
            password: Secret::new(password),
        })
    }

    /// The tenant's relay credentials, oldest first.
    pub(crate) async fn relay_credentials(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<RelayCredential>, ApiError> {
        self.require_tenant(tenant).await?;
        Ok(self.store().relay_credentials(tenant).await?)
    }

    /// Revokes a credential; the next login with it fails on every replica
    /// (a remembered login is checked against the store each time).
    pub(crate) async fn revoke_relay_credential(
        &self,
        tenant: TenantId,
        id: RelayCredentialId,
    ) -> Result<RelayCredential, ApiError> {
        let revoked = self
            .store()
            .revoke_relay_credential(tenant, id, now_ms())
            .await?;
        tracing::info!(%tenant, credential = %id, "relay credential revoked");
        Ok(revoked)
    }

    /// The tenant's relay policy.
    pub(crate) async fn relay_policy(&self, tenant: TenantId) -> Result<RelayPolicy, ApiError> {
        self.require_tenant(tenant).await?;
        Ok(self.store().relay_policy(tenant).await?)
    }

    /// Replaces the tenant's relay policy.
    pub(crate) async fn set_relay_policy(
        &self,
        tenant: TenantId,
        policy: &RelayPolicy,
    ) -> Result<RelayPolicy, ApiError> {
        self.store().set_relay_policy(tenant, policy).await?;
        Ok(policy.clone())
    }

    /// Checks a relay's AUTH from `peer`. A login verified lately skips
    /// argon2 (the credential is still read, so a revocation holds at
    /// once); otherwise the peer's and the username's failure budgets are
    /// checked first, and a failure counts against both.
    pub(crate) async fn authenticate_relay(
        &self,
        username: &str,
        password: &str,
        peer: IpAddr,
    ) -> Result<RelayLogin, ApiError> {
        let guard = &self.inner.relay;
        let digest = passwords::login_digest(username, password);
        let now = Instant::now();
        let found = self.store().relay_login(username).await?;
        let login = |credential: &RelayCredential| RelayLogin {
            tenant: credential.tenant_id,
            credential: credential.id,
        };
        if let Some((credential, current)) = found.as_ref()
            && guard.remembers(&digest, current, now)
        {
            return Ok(login(credential));
        }
        let (peer_key, user_key) = (peer_key(peer), format!("user:{username}"));
        guard.check(&[&peer_key, &user_key], now, "too many failed relay logins")?;
        let stored = found.as_ref().map(|(_, hash)| hash.clone());
        if guard.verify(password, stored).await?
            && let Some((credential, hash)) = found
        {
            guard.remember(digest, hash, now);
            return Ok(login(&credential));
        }
        guard.fail(&[&peer_key, &user_key], now);
        tracing::info!(%peer, "relay login refused");
        Err(ApiError::Unauthenticated(REFUSED))
    }
}
