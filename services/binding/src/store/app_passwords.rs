//! App passwords: phones' mail apps logging in over Exchange ActiveSync.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::{
    AccountId, AppPassword, AppPasswordId, ClientDevice, DeviceInformation, TenantId, WipeKind,
};

/// App passwords (stored with their lookup key and argon2id hash) and the
/// devices they register.
#[async_trait]
pub trait AppPasswordStore: Send + Sync {
    /// Stores `password` and registers its device (`password.device_id`,
    /// labelled and numbered as the password, with a push client) in one
    /// transaction, while the account's binding to the number is
    /// verified: `NotFound("verified binding")` otherwise. A lookup key
    /// the account already has is a `Conflict`.
    async fn create_app_password(
        &self,
        password: &AppPassword,
        lookup: &str,
        password_hash: &str,
    ) -> Result<(), StoreError>;

    /// The account's app passwords, oldest first.
    async fn app_passwords(
        &self,
        tenant: TenantId,
        account: AccountId,
    ) -> Result<Vec<AppPassword>, StoreError>;

    /// One of the tenant's app passwords.
    async fn app_password(
        &self,
        tenant: TenantId,
        id: AppPasswordId,
    ) -> Result<Option<AppPassword>, StoreError>;

    /// Revokes one of the tenant's app passwords at `now_ms` (the first
    /// revocation stands); its device is revoked by the caller.
    async fn revoke_app_password(
        &self,
        tenant: TenantId,
        id: AppPasswordId,
        now_ms: i64,
    ) -> Result<AppPassword, StoreError>;

    /// The app passwords that may log in as `address` with this lookup
    /// key, in any tenant, with their hashes: unrevoked, their device
    /// unrevoked and their binding still verified.
    async fn app_password_logins(
        &self,
        address: &str,
        lookup: &str,
    ) -> Result<Vec<(AppPassword, String)>, StoreError>;

    /// Offers the policy key `key` to the phone of one of the tenant's
    /// app passwords: it becomes the pending key, replacing any.
    async fn offer_policy_key(
        &self,
        tenant: TenantId,
        id: AppPasswordId,
        key: u32,
    ) -> Result<(), StoreError>;

    /// Makes `key` the phone's policy key, applied with the policy of
    /// `digest`, when `pending` is the key it was offered (which is then
    /// spent); `false` when it is not.
    async fn acknowledge_policy_key(
        &self,
        tenant: TenantId,
        id: AppPasswordId,
        pending: u32,
        key: u32,
        digest: &str,
    ) -> Result<bool, StoreError>;

    /// Replaces what the phone of one of the tenant's app passwords says
    /// it is.
    async fn set_device_information(
        &self,
        tenant: TenantId,
        id: AppPasswordId,
        information: &DeviceInformation,
    ) -> Result<(), StoreError>;

    /// Records a checked login at `now_ms` from `client`, pinning it when
    /// none is yet; returns the pinned client (the first one stands).
    async fn app_password_used(
        &self,
        id: AppPasswordId,
        client: &ClientDevice,
        now_ms: i64,
    ) -> Result<ClientDevice, StoreError>;

    /// Orders a remote wipe of `kind` for the phone of one of the
    /// tenant's app passwords at `now_ms`. An order still pending takes
    /// the new kind and keeps its time. `NotFound("app password")` for
    /// none; `Conflict` when it is revoked or its wipe was done: a phone
    /// that cannot log in cannot be told.
    async fn order_wipe(
        &self,
        tenant: TenantId,
        id: AppPasswordId,
        kind: WipeKind,
        now_ms: i64,
    ) -> Result<AppPassword, StoreError>;

    /// The phone acknowledged its wipe, having done `kind`, at `now_ms`:
    /// the wipe is done (with that kind) and the password revoked, in one
    /// statement (the first acknowledgement stands); its device is revoked
    /// by the caller first. `NotFound("wipe")` when none was ordered.
    async fn wipe_done(
        &self,
        tenant: TenantId,
        id: AppPasswordId,
        kind: WipeKind,
        now_ms: i64,
    ) -> Result<AppPassword, StoreError>;
}
