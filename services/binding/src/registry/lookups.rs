//! Reads other services make: dispatch's targets, ingest's watch list and
//! recipients, the mailbox service's access to one account, traffic.

use pushmail_common::redact::Secret;

use super::{ApiError, Registry};
use crate::cache::Targets;
use crate::clock::{now_ms, utc_day};
use crate::domain::{Account, AccountId, MailboxCheckpoint, TenantId, Traffic, TrafficDay};
use crate::store::Recipient;

/// How the mailbox service logs in to one account, and sends from it.
#[derive(Debug)]
pub(crate) struct AccountAccess {
    /// The account; a forwarded or webhook account's `submission` is its
    /// tenant's outbound relay.
    pub account: Account,
    /// Its opened mailbox password (watched accounts).
    pub password: Option<Secret>,
    /// The relay's password, when `submission` is the tenant's relay and
    /// not logged in to with `password`.
    pub submission_password: Option<Secret>,
}

/// Longest traffic range one call returns.
const MAX_TRAFFIC_DAYS: i32 = 366;

impl Registry {
    /// Who hears about a mail on the account (cached).
    pub(crate) async fn delivery_targets(
        &self,
        tenant: TenantId,
        account: AccountId,
    ) -> Result<Targets, ApiError> {
        self.inner.cache.get(tenant, account).await
    }

    /// The account an inbound address reaches, with its kind and its
    /// tenant's relay policy: within `tenant` when the caller names one,
    /// else by the platform-wide route (which only a forwarded account
    /// holds). Another tenant's rows never make this fail.
    pub(crate) async fn resolve_recipient(
        &self,
        address: &str,
        tenant: Option<TenantId>,
    ) -> Result<Option<Recipient>, ApiError> {
        Ok(self.store().recipient(address, tenant).await?)
    }

    /// Keeps ingest's checkpoint of one mailbox (an older one than kept is
    /// ignored).
    pub(crate) async fn save_checkpoint(
        &self,
        tenant: TenantId,
        account: AccountId,
        mailbox: &str,
        checkpoint: &MailboxCheckpoint,
    ) -> Result<(), ApiError> {
        Ok(self
            .store()
            .save_checkpoint(tenant, account, mailbox, checkpoint)
            .await?)
    }

    /// Ingest's checkpoint of one mailbox, if it saved one.
    pub(crate) async fn checkpoint(
        &self,
        tenant: TenantId,
        account: AccountId,
        mailbox: &str,
    ) -> Result<Option<MailboxCheckpoint>, ApiError> {
        Ok(self.store().checkpoint(tenant, account, mailbox).await?)
    }

    /// Watched accounts of every tenant with their opened credentials.
    pub(crate) async fn watched_accounts(
        &self,
        after: Option<AccountId>,
        limit: u32,
    ) -> Result<Vec<(Account, Option<Secret>)>, ApiError> {
        let page = self
            .store()
            .watched_accounts(after, limit.clamp(1, super::onboarding::MAX_PAGE))
            .await?;
        page.into_iter()
            .map(|(account, sealed)| {
                let password = sealed
                    .map(|sealed| self.open_password(&account, &sealed))
                    .transpose()?;
                Ok((account, password))
            })
            .collect()
    }

    /// How to reach and log in to one of the tenant's accounts: its server
    /// settings and its opened password. A forwarded or webhook account
    /// has neither (its mail is in the platform's own store): it comes
    /// without a password, with its tenant's outbound relay (if any) as
    /// its submission server. A watched account without a server or whose
    /// password was never set cannot be logged in to: a precondition, not
    /// a missing account.
    pub(crate) async fn account_access(
        &self,
        tenant: TenantId,
        id: AccountId,
    ) -> Result<AccountAccess, ApiError> {
        let (mut account, sealed) = self
            .store()
            .account_with_credentials(tenant, id)
            .await?
            .ok_or(ApiError::NotFound("account"))?;
        if !account.kind.is_watched() {
            let relay = self.outbound_relay(tenant).await?;
            let submission_password = relay.map(|relay| {
                account.submission = Some(relay.server);
                relay.password
            });
            return Ok(AccountAccess {
                account,
                password: None,
                submission_password,
            });
        }
        if account.server.is_none() {
            return Err(ApiError::FailedPrecondition(format!(
                "a {} account has no mail server to log in to",
                account.kind.as_str()
            )));
        }
        let Some(sealed) = sealed else {
            return Err(ApiError::FailedPrecondition(
                "the account has no credentials set".to_owned(),
            ));
        };
        let password = self.open_password(&account, &sealed)?;
        Ok(AccountAccess {
            account,
            password: Some(password),
            submission_password: None,
        })
    }

    /// Opens an account's sealed password.
    fn open_password(&self, account: &Account, sealed: &[u8]) -> Result<Secret, ApiError> {
        let row = super::onboarding::credentials_row(account.tenant_id, account.id);
        let plain = self
            .keys()
            .credentials
            .open(sealed, row.as_bytes())
            .map_err(|e| {
                ApiError::internal(
                    format!(
                        "credentials of account {} do not open with the configured key",
                        account.id
                    ),
                    e,
                )
            })?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|e| ApiError::internal("credentials are not UTF-8", e))
    }

    /// Adds to today's traffic of one of the tenant's accounts.
    pub(crate) async fn record_traffic(
        &self,
        tenant: TenantId,
        account: AccountId,
        traffic: &Traffic,
    ) -> Result<(), ApiError> {
        Ok(self
            .store()
            .record_traffic(tenant, account, self.tenant_day(tenant).await?, traffic)
            .await?)
    }

    /// Charges one SMS dispatch sends for one of the tenant's accounts to
    /// today's quota; `QuotaExceeded` when it is used up.
    pub(crate) async fn charge_sms(
        &self,
        tenant: TenantId,
        account: AccountId,
    ) -> Result<(), ApiError> {
        Ok(self
            .store()
            .charge_sms(tenant, account, self.tenant_day(tenant).await?)
            .await?)
    }

    /// One of the tenant's accounts' traffic by day.
    pub(crate) async fn traffic(
        &self,
        tenant: TenantId,
        account: AccountId,
        from: jiff::civil::Date,
        to: jiff::civil::Date,
    ) -> Result<Vec<TrafficDay>, ApiError> {
        if to < from {
            return Err(ApiError::invalid("to_day", "must not be before from_day"));
        }
        if (to - from).get_days() >= MAX_TRAFFIC_DAYS {
            return Err(ApiError::invalid(
                "to_day",
                "a range spans at most 366 days",
            ));
        }
        self.account(tenant, account).await?;
        Ok(self.store().traffic(tenant, account, from, to).await?)
    }

    /// An account's delivery log, newest first.
    pub(crate) async fn deliveries(
        &self,
        tenant: TenantId,
        account: AccountId,
        after: Option<&crate::domain::DeliveryCursor>,
        limit: u32,
    ) -> Result<Vec<crate::domain::Delivery>, ApiError> {
        self.account(tenant, account).await?;
        Ok(self
            .store()
            .deliveries(tenant, account, after, limit)
            .await?)
    }

    /// Adds a receipt to the log.
    pub(crate) async fn record_delivery(
        &self,
        delivery: &crate::domain::Delivery,
        uncounted_push_bytes: u64,
    ) -> Result<(), ApiError> {
        let new = self.store().record_delivery(delivery).await?;
        // Counted once, with the receipt's first writing: a redelivered
        // receipt (same event id) counts nothing again. Not one statement
        // with the log: a crash between them loses one push from the
        // statistics, never counts one twice.
        if new && uncounted_push_bytes > 0 {
            let push = Traffic {
                pushed_count: 1,
                pushed_bytes: uncounted_push_bytes,
                ..Traffic::default()
            };
            self.record_traffic(delivery.tenant, delivery.account, &push)
                .await?;
        }
        Ok(())
    }

    /// Drops verification-code counts older than yesterday (yesterday's
    /// last send still holds a cooldown across midnight).
    pub(crate) async fn prune_code_counts(&self) -> Result<u64, ApiError> {
        let yesterday = utc_day(now_ms()).yesterday().unwrap_or(utc_day(0));
        Ok(self.store().prune_code_counts(yesterday).await?)
    }

    /// Drops log entries older than `before_ms`.
    pub(crate) async fn prune_deliveries(&self, before_ms: i64) -> Result<u64, ApiError> {
        Ok(self.store().prune_deliveries(before_ms).await?)
    }
}
