//! App passwords: a phone's own mail app logs in to an account over
//! Exchange ActiveSync with the account's address and a password made for
//! that phone. Creating one registers the phone as a device of a number
//! bound to the account, so everything that applies to devices applies to
//! it; the first login pins the phone's own DeviceId, so a copied password
//! does not work from another phone.

use std::net::IpAddr;
use std::time::Instant;

use pushmail_common::redact::Secret;

use super::login::peer_key;
use super::{ApiError, Registry};
use crate::clock::now_ms;
use crate::domain::{
    AccountId, AppPassword, AppPasswordId, ClientDevice, Device, DeviceId, Msisdn, TenantId,
    WipeKind,
};
use crate::events::Change;
use crate::passwords;
use crate::store::StoreError;

/// The same answer whatever was wrong: the address, the password, a
/// revoked password, device or binding.
pub(crate) const REFUSED: &str = "app password refused";

/// The answer to the right password from another phone.
pub(crate) const OTHER_PHONE: &str =
    "this app password belongs to another phone; make one for this phone";

/// Lookup keys that collide with one the account already has are drawn
/// again; four draws all colliding means something else is wrong.
const DRAWS: usize = 4;

/// An app password just made, with the password (shown once).
#[derive(Debug)]
pub(crate) struct NewAppPassword {
    /// As stored.
    pub app_password: AppPassword,
    /// The generated password.
    pub password: Secret,
}

/// Who logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppLogin {
    /// The app password as stored.
    pub app_password: AppPassword,
    /// The account's address.
    pub address: String,
}

/// The address a phone sends as its username: `DOMAIN\user` forms lose
/// the domain, case does not count.
fn address_of(username: &str) -> String {
    let name = username.trim();
    let name = name.rsplit_once('\\').map_or(name, |(_, user)| user);
    name.to_lowercase()
}

impl Registry {
    /// A new app password for `account` and the phone behind `msisdn`
    /// (verified bound to it), registering the phone as a device.
    pub(crate) async fn create_app_password(
        &self,
        tenant: TenantId,
        account: AccountId,
        msisdn: &Msisdn,
        label: &str,
    ) -> Result<NewAppPassword, ApiError> {
        self.account(tenant, account).await?;
        let guard = &self.inner.app_passwords;
        for _ in 0..DRAWS {
            let password = passwords::app_password();
            let Some((lookup, normal)) = passwords::split_app_password(&password) else {
                return Err(ApiError::broken("a generated app password does not parse"));
            };
            let hashed = guard.hash(&normal).await?;
            let made = AppPassword {
                tenant_id: tenant,
                id: AppPasswordId::generate(),
                account_id: account,
                device_id: DeviceId::generate(),
                msisdn: msisdn.clone(),
                label: label.to_owned(),
                created_at_ms: now_ms(),
                client: None,
                last_used_at_ms: None,
                policy_key: None,
                policy_digest: String::new(),
                device_information: crate::domain::DeviceInformation::default(),
                revoked_at_ms: None,
                wipe: None,
            };
            match self
                .store()
                .create_app_password(&made, &lookup, &hashed)
                .await
            {
                Ok(()) => {}
                Err(StoreError::Conflict(_)) => continue,
                Err(StoreError::NotFound("verified binding")) => {
                    return Err(ApiError::FailedPrecondition(format!(
                        "msisdn: {msisdn} is not verified bound to this account; bind and verify it first"
                    )));
                }
                Err(other) => return Err(other.into()),
            }
            let device = Device {
                tenant_id: tenant,
                id: made.device_id,
                msisdn: msisdn.clone(),
                label: made.label.clone(),
                has_push_client: true,
                revoked_at_ms: None,
                created_at_ms: made.created_at_ms,
            };
            self.device_changed(&device, Change::DeviceRegistered, made.created_at_ms)
                .await?;
            tracing::info!(%tenant, %account, app_password = %made.id, device = %made.device_id, "app password created");
            return Ok(NewAppPassword {
                app_password: made,
                password: Secret::new(password),
            });
        }
        Err(ApiError::broken("no free app password lookup key"))
    }

    /// The account's app passwords, oldest first.
    pub(crate) async fn app_passwords(
        &self,
        tenant: TenantId,
        account: AccountId,
    ) -> Result<Vec<AppPassword>, ApiError> {
        self.account(tenant, account).await?;
        Ok(self.store().app_passwords(tenant, account).await?)
    }

    /// Revokes an app password and its device: the phone's next request
    /// fails on every replica, and its held connection is dropped as any
    /// revoked device's is. Idempotent, so a failed announcement is
    /// retried by calling again.
    pub(crate) async fn revoke_app_password(
        &self,
        tenant: TenantId,
        id: AppPasswordId,
    ) -> Result<AppPassword, ApiError> {
        let revoked = self
            .store()
            .revoke_app_password(tenant, id, now_ms())
            .await?;
        self.revoke_device(tenant, revoked.device_id).await?;
        tracing::info!(%tenant, app_password = %id, "app password revoked");
        Ok(revoked)
    }

    /// Orders a remote wipe of the phone of `id`: its next request is
    /// told to provision, and Provision carries the wipe. The password
    /// works until the phone acknowledges it (so the phone can hear it);
    /// an order still pending takes the new kind.
    pub(crate) async fn wipe_app_password(
        &self,
        tenant: TenantId,
        id: AppPasswordId,
        kind: WipeKind,
    ) -> Result<AppPassword, ApiError> {
        let ordered = self
            .store()
            .order_wipe(tenant, id, kind, now_ms())
            .await
            .map_err(|err| match err {
                StoreError::Conflict(why) => ApiError::FailedPrecondition(why),
                other => other.into(),
            })?;
        // A phone holding a Ping is let go, so it hears the wipe now
        // rather than at its heartbeat's end.
        if let Some(device) = self.store().device(tenant, ordered.device_id).await? {
            self.device_changed(&device, Change::DeviceWipeOrdered, now_ms())
                .await?;
        }
        tracing::warn!(%tenant, app_password = %id, kind = kind.as_str(), "remote wipe ordered");
        Ok(ordered)
    }

    /// The phone of `id` acknowledged its wipe, having done `kind`: its
    /// device is revoked, then the wipe recorded as done and the password
    /// revoked, as [`Registry::revoke_app_password`] does. In that order,
    /// so a failed device revocation leaves the password working for the
    /// phone's retry; idempotent, so a repeated acknowledgement is served
    /// again.
    pub(crate) async fn acknowledge_wipe(
        &self,
        tenant: TenantId,
        id: AppPasswordId,
        kind: WipeKind,
    ) -> Result<AppPassword, ApiError> {
        let ordered = self
            .store()
            .app_password(tenant, id)
            .await?
            .ok_or(ApiError::NotFound("app password"))?;
        if ordered.wipe.is_none() {
            return Err(ApiError::FailedPrecondition(
                "no wipe was ordered for this phone".to_owned(),
            ));
        }
        self.revoke_device(tenant, ordered.device_id).await?;
        let done = self.store().wipe_done(tenant, id, kind, now_ms()).await?;
        tracing::warn!(%tenant, app_password = %id, kind = kind.as_str(), "remote wipe acknowledged; password revoked");
        Ok(done)
    }

    /// ActiveSync Provision for the phone of `id`: with nothing
    /// acknowledged, a new key offered; with the offered key acknowledged,
    /// a new key that is now the phone's. Keys are never 0 (the phone's
    /// "none").
    pub(crate) async fn provision_app_password(
        &self,
        tenant: TenantId,
        id: AppPasswordId,
        acknowledged: Option<u32>,
        digest: &str,
    ) -> Result<u32, ApiError> {
        let key = rand::random_range(1..=u32::MAX);
        let store = self.store();
        match acknowledged {
            None => store.offer_policy_key(tenant, id, key).await?,
            Some(pending) => {
                if !store
                    .acknowledge_policy_key(tenant, id, pending, key, digest)
                    .await?
                {
                    return Err(ApiError::FailedPrecondition(
                        "the policy key acknowledged is not the one offered".to_owned(),
                    ));
                }
                tracing::info!(%tenant, app_password = %id, "phone provisioned");
            }
        }
        Ok(key)
    }

    /// Records what the phone of `id` says it is (cleaned: shown, never
    /// trusted).
    pub(crate) async fn record_device_information(
        &self,
        tenant: TenantId,
        id: AppPasswordId,
        information: crate::domain::DeviceInformation,
    ) -> Result<(), ApiError> {
        Ok(self
            .store()
            .set_device_information(tenant, id, &information.cleaned())
            .await?)
    }

    /// Checks an ActiveSync login from `peer` by the phone `client`. A
    /// login verified lately skips argon2 (the row is still read, so a
    /// revocation holds at once); otherwise the budgets of the address with
    /// the password's first group, and of the peer, are checked first and a
    /// failure counts against both. The first good login pins the phone;
    /// another phone is refused, and counts as a failure (DeviceIds are not
    /// secret, so trying them is guessing too).
    pub(crate) async fn authenticate_app_password(
        &self,
        username: &str,
        password: &str,
        peer: IpAddr,
        client: &ClientDevice,
    ) -> Result<AppLogin, ApiError> {
        let guard = &self.inner.app_passwords;
        let address = address_of(username);
        let now = Instant::now();
        let parsed = passwords::split_app_password(password);
        let found = match &parsed {
            Some((lookup, _)) => self.store().app_password_logins(&address, lookup).await?,
            None => Vec::new(),
        };
        // The budget is the address's and the password's first group: an
        // address is public, so a budget of its own would let anyone lock
        // its phone out; the group is not, and the 59 bits behind it and
        // argon2 keep guessing hopeless all the same.
        let lookup = parsed.as_ref().map_or("-", |(lookup, _)| lookup.as_str());
        let user_key = format!("address:{address}:{lookup}");
        let normal = parsed
            .as_ref()
            .map(|(_, normal)| normal.clone())
            .unwrap_or_default();
        let digest = passwords::login_digest(&address, &normal);
        if let Some((row, _)) = found
            .iter()
            .find(|(_, hash)| guard.remembers(&digest, hash, now))
            && row
                .client
                .as_ref()
                .is_some_and(|pinned| pinned.id == client.id)
        {
            return Ok(AppLogin {
                app_password: row.clone(),
                address,
            });
        }
        let peer_key = peer_key(peer);
        guard.check(&[&peer_key, &user_key], now, "too many failed logins")?;
        let mut matched = None;
        if found.is_empty() {
            // An unknown address costs as much as a wrong password.
            guard.verify(&normal, None).await?;
        }
        for (row, hash) in found {
            if guard.verify(&normal, Some(hash.clone())).await? {
                matched = Some((row, hash));
                break;
            }
        }
        let Some((mut row, hash)) = matched else {
            guard.fail(&[&peer_key, &user_key], now);
            tracing::info!(%peer, "app password login refused");
            return Err(ApiError::Unauthenticated(REFUSED));
        };
        let pinned = self
            .store()
            .app_password_used(row.id, client, now_ms())
            .await?;
        if pinned.id != client.id {
            guard.fail(&[&peer_key, &user_key], now);
            tracing::warn!(%peer, app_password = %row.id, "app password used by another phone");
            return Err(ApiError::PermissionDenied(OTHER_PHONE));
        }
        guard.remember(digest, hash, now);
        row.client = Some(pinned);
        Ok(AppLogin {
            app_password: row,
            address,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_lose_their_domain_and_case() {
        assert_eq!(address_of(" Alice@Corp.Example "), "alice@corp.example");
        assert_eq!(address_of("CORP\\alice@corp.example"), "alice@corp.example");
        assert_eq!(address_of(""), "");
    }
}
