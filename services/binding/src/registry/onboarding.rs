//! Tenants, accounts, bindings (with their one-time codes) and preferences.

use pushmail_common::redact::Secret;

use super::{ApiError, Registry};
use crate::clock::{now_ms, utc_day};
use crate::domain::{
    Account, AccountId, AccountKind, ApiKey, Binding, BindingId, BindingState, Msisdn, NewAccount,
    NewApiKey, NewTenant, OtpCheck, Preferences, SendLimits, ServerSettings, SubmissionChange,
    Tenant, TenantId,
};
use crate::events::{Announcement, Change};

/// Most accounts one page lists.
pub(super) const MAX_PAGE: u32 = 1_000;

/// What an account's credentials are sealed to: opened for another row
/// (a sealed value copied between accounts) they do not open.
pub(super) fn credentials_row(tenant: TenantId, account: AccountId) -> String {
    format!("{tenant}/{account}")
}

impl Registry {
    /// Creates a tenant with its domains; its first API key is returned
    /// once and stored hashed.
    pub(crate) async fn create_tenant(
        &self,
        tenant: &NewTenant,
    ) -> Result<(Tenant, ApiKey), ApiError> {
        let key = ApiKey::generate();
        let first = NewApiKey::of(&key, "made with the tenant", None);
        let created = self.store().create_tenant(tenant, &first).await?;
        Ok((created, key))
    }

    /// The tenant an API key that works now belongs to.
    pub(crate) async fn tenant_of_key(&self, key: &str) -> Result<TenantId, ApiError> {
        let hash = ApiKey::presented(key).hash();
        self.store()
            .tenant_by_api_key(&hash, now_ms())
            .await?
            .map(|t| t.id)
            .ok_or(ApiError::Unauthenticated("unknown API key"))
    }

    /// Creates an account, its credentials sealed to the new row.
    pub(crate) async fn create_account(
        &self,
        tenant: TenantId,
        account: &NewAccount,
        password: Option<&Secret>,
    ) -> Result<Account, ApiError> {
        if let Some(server) = &account.server {
            self.check_mailbox_host("server.host", server).await?;
        }
        if let Some(submission) = &account.submission {
            self.check_mailbox_host("submission.host", submission)
                .await?;
        }
        let id = AccountId::generate();
        let sealed = self.seal_password(tenant, id, password.filter(|p| !p.is_empty()))?;
        let created = self
            .store()
            .create_account(tenant, id, account, sealed.as_deref())
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict(_) => ApiError::AlreadyExists(format!(
                    "an account for {} already exists (a forwarded address belongs to one \
                     account on the whole platform)",
                    account.address
                )),
                other => other.into(),
            })?;
        self.changed(
            &[id],
            Announcement {
                tenant,
                account: Some(id),
                change: Change::AccountCreated,
                msisdn: None,
                device: None,
                at_ms: created.created_at_ms,
            },
        )
        .await?;
        Ok(created)
    }

    /// Changes an IMAP/POP3 account's server settings, submission settings
    /// and/or password (at least one): each host is checked as at creation,
    /// the password sealed to the row. Ingest's watchers see the change at
    /// their next refresh of the account list and reconnect with it.
    pub(crate) async fn update_account(
        &self,
        tenant: TenantId,
        id: AccountId,
        server: Option<&ServerSettings>,
        submission: &SubmissionChange,
        password: Option<&Secret>,
        watched_folders: Option<&[String]>,
    ) -> Result<Account, ApiError> {
        let current = self.account(tenant, id).await?;
        if watched_folders.is_some() && current.kind != AccountKind::ExternalImap {
            return Err(ApiError::invalid(
                "watched_folders",
                "only an IMAP account has folders to watch",
            ));
        }
        // Before the kind's precondition: what was asked is refused as the
        // same request to CreateAccount is, naming `submission`.
        if *submission != SubmissionChange::Keep && !current.kind.may_submit() {
            return Err(ApiError::submission_refused(current.kind));
        }
        if !current.kind.is_watched() {
            return Err(ApiError::FailedPrecondition(format!(
                "a {} account has no mailbox server to change",
                current.kind.as_str()
            )));
        }
        if let Some(server) = server {
            self.check_mailbox_host("server.host", server).await?;
        }
        if let SubmissionChange::Set(submission) = submission {
            self.check_mailbox_host("submission.host", submission)
                .await?;
        }
        let sealed = self.seal_password(tenant, id, password)?;
        let updated = self
            .store()
            .update_account(
                tenant,
                id,
                server,
                submission,
                sealed.as_deref(),
                watched_folders,
            )
            .await?;
        self.changed(
            &[id],
            Announcement {
                tenant,
                account: Some(id),
                change: Change::AccountUpdated,
                msisdn: None,
                device: None,
                at_ms: now_ms(),
            },
        )
        .await?;
        Ok(updated)
    }

    /// A mailbox password sealed to its account's row (so a sealed blob
    /// moved to another row does not open).
    fn seal_password(
        &self,
        tenant: TenantId,
        id: AccountId,
        password: Option<&Secret>,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        password
            .map(|p| {
                self.keys().credentials.seal(
                    p.expose().as_bytes(),
                    credentials_row(tenant, id).as_bytes(),
                )
            })
            .transpose()
            .map_err(|e| ApiError::internal("sealing the mailbox credentials", e))
    }

    /// Refuses a mail server host (mailbox or submission) that resolves to
    /// an address the egress policy forbids, naming `field`. A name that
    /// does not resolve now is accepted: whoever connects (ingest, the
    /// mailbox service) checks the address it connects to every time.
    pub(super) async fn check_mailbox_host(
        &self,
        field: &'static str,
        server: &ServerSettings,
    ) -> Result<(), ApiError> {
        use pushmail_common::egress::EgressError;
        match self
            .settings()
            .egress
            .resolve(&server.host, server.port)
            .await
        {
            Ok(_) | Err(EgressError::Unresolved { .. }) => Ok(()),
            Err(forbidden) => Err(ApiError::invalid(field, forbidden)),
        }
    }

    /// One of the tenant's accounts.
    pub(crate) async fn account(
        &self,
        tenant: TenantId,
        id: AccountId,
    ) -> Result<Account, ApiError> {
        self.store()
            .account(tenant, id)
            .await?
            .ok_or(ApiError::NotFound("account"))
    }

    /// The tenant's accounts after `after`, at most `limit`, whose address
    /// contains `query` (any case; empty: all).
    pub(crate) async fn list_accounts(
        &self,
        tenant: TenantId,
        query: &str,
        after: Option<AccountId>,
        limit: u32,
    ) -> Result<Vec<Account>, ApiError> {
        self.require_tenant(tenant).await?;
        Ok(self
            .store()
            .list_accounts(
                tenant,
                &query.trim().to_lowercase(),
                after,
                limit.clamp(1, MAX_PAGE),
            )
            .await?)
    }

    /// Deletes an account with its bindings; dispatch stops pushing for it.
    pub(crate) async fn delete_account(
        &self,
        tenant: TenantId,
        id: AccountId,
    ) -> Result<(), ApiError> {
        self.store().delete_account(tenant, id).await?;
        self.changed(
            &[id],
            Announcement {
                tenant,
                account: Some(id),
                change: Change::AccountDeleted,
                msisdn: None,
                device: None,
                at_ms: now_ms(),
            },
        )
        .await
    }

    /// Starts (or restarts, with a fresh code) binding a number to an
    /// account: the code goes out as an SMS request and is stored only as
    /// an HMAC. Codes are limited per number (cooldown, daily cap, the day's
    /// wrong answers) and per tenant (its daily code budget, apart from
    /// notification SMS): `Throttled` with the wait. If the SMS request
    /// cannot be published the call fails; a retry is a resend.
    pub(crate) async fn start_binding(
        &self,
        tenant: TenantId,
        account: AccountId,
        msisdn: &Msisdn,
    ) -> Result<Binding, ApiError> {
        let now = now_ms();
        let (code, pending) = self
            .keys()
            .otp
            .issue(now)
            .map_err(|e| ApiError::unavailable("random source unavailable", e))?;
        let verification = &self.settings().verification;
        let limits = SendLimits {
            now_ms: now,
            day: utc_day(now),
            cooldown_ms: i64::try_from(verification.resend_cooldown_seconds * 1_000)
                .unwrap_or(i64::MAX),
            per_number: verification.codes_per_number_per_day,
            per_tenant_default: verification.tenant_codes_per_day,
            wrong_answers: self.keys().otp.max_attempts(),
        };
        let binding = self
            .store()
            .start_binding(tenant, account, msisdn, &pending, &limits)
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict(_) => ApiError::AlreadyExists(format!(
                    "{msisdn} is already verified for this account"
                )),
                other => other.into(),
            })?;
        self.inner
            .events
            .one_time_code(tenant, account, msisdn, &code, pending.expires_at_ms, now)
            .await?;
        Ok(binding)
    }

    /// Answers a pending binding's code.
    pub(crate) async fn verify_binding(
        &self,
        tenant: TenantId,
        id: BindingId,
        answer: &str,
    ) -> Result<Binding, ApiError> {
        if answer.len() != 6 || !answer.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::invalid(
                "code",
                "must be the six digits sent by SMS",
            ));
        }
        let otp = &self.keys().otp;
        let now = now_ms();
        let (outcome, binding) = self
            .store()
            .answer_binding(tenant, id, utc_day(now), &|code| {
                otp.check(code, answer, now)
            })
            .await
            .map_err(|e| match e {
                crate::store::StoreError::NotFound("pending binding") => {
                    ApiError::FailedPrecondition(
                        "the binding is revoked; start a new one".to_owned(),
                    )
                }
                other => other.into(),
            })?;
        match outcome {
            OtpCheck::Accepted => {
                self.changed(
                    &[binding.account_id],
                    Announcement {
                        tenant,
                        account: Some(binding.account_id),
                        change: Change::BindingVerified,
                        msisdn: Some(&binding.msisdn),
                        device: None,
                        at_ms: binding.updated_at_ms,
                    },
                )
                .await?;
                Ok(binding)
            }
            OtpCheck::Wrong { remaining } => Err(ApiError::invalid(
                "code",
                format!("wrong code; {remaining} attempts left"),
            )),
            OtpCheck::Expired => Err(ApiError::FailedPrecondition(
                "the code expired; start the binding again for a new one".to_owned(),
            )),
            OtpCheck::Exhausted => Err(ApiError::throttled(
                "code: too many wrong codes for this number today",
                crate::domain::until_next_day(now),
            )),
            OtpCheck::AlreadyUsed if binding.state == BindingState::Verified => Err(
                ApiError::AlreadyExists("the binding is already verified".to_owned()),
            ),
            OtpCheck::AlreadyUsed => Err(ApiError::FailedPrecondition(
                "the code was used; start the binding again for a new one".to_owned(),
            )),
        }
    }

    /// Ends a binding; idempotent, so a failed announcement can be retried.
    pub(crate) async fn revoke_binding(
        &self,
        tenant: TenantId,
        id: BindingId,
    ) -> Result<Binding, ApiError> {
        let binding = self.store().revoke_binding(tenant, id).await?;
        self.changed(
            &[binding.account_id],
            Announcement {
                tenant,
                account: Some(binding.account_id),
                change: Change::BindingRevoked,
                msisdn: Some(&binding.msisdn),
                device: None,
                at_ms: binding.updated_at_ms,
            },
        )
        .await?;
        Ok(binding)
    }

    /// The bindings of one of the tenant's accounts.
    pub(crate) async fn list_bindings(
        &self,
        tenant: TenantId,
        account: AccountId,
    ) -> Result<Vec<Binding>, ApiError> {
        self.account(tenant, account).await?;
        Ok(self.store().list_bindings(tenant, account).await?)
    }

    /// A binding's preferences.
    pub(crate) async fn preferences(
        &self,
        tenant: TenantId,
        binding: BindingId,
    ) -> Result<Preferences, ApiError> {
        Ok(self.store().preferences(tenant, binding).await?)
    }

    /// Replaces a binding's preferences; idempotent.
    pub(crate) async fn set_preferences(
        &self,
        tenant: TenantId,
        id: BindingId,
        preferences: &Preferences,
    ) -> Result<Preferences, ApiError> {
        let binding = self
            .store()
            .binding(tenant, id)
            .await?
            .ok_or(ApiError::NotFound("binding"))?;
        self.store()
            .set_preferences(tenant, id, preferences)
            .await?;
        self.changed(
            &[binding.account_id],
            Announcement {
                tenant,
                account: Some(binding.account_id),
                change: Change::PreferencesChanged,
                msisdn: Some(&binding.msisdn),
                device: None,
                at_ms: now_ms(),
            },
        )
        .await?;
        Ok(preferences.clone())
    }
}
