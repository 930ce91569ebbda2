//! What binding announces: `BindingChanged` after every change (caches and
//! session nodes act on it) and one-time codes as SMS requests for the
//! partner SMS centres.

use std::sync::Arc;

use pushmail_common::bus::{self, BusError, EventBus, EventContext};
use pushmail_proto::common::v1::EventMeta;
use pushmail_proto::events::v1::{
    BindingChangeKind, BindingChanged, SmsOutbound, SmsPurpose, sms_outbound,
};
use pushmail_proto::topics::{BINDING_CHANGED, SMS_OUTBOUND};

use crate::clock::timestamp;
use crate::domain::{AccountId, DeviceId, Msisdn, OtpCode, TenantId};

/// Partitions created for binding's topics when they are missing.
pub(crate) const PARTITIONS: i32 = 12;

/// Events that could not be published, by topic.
pub(crate) const METRIC_PUBLISH_FAILED: &str = "pushmail_binding_publish_failed_total";

/// A change worth announcing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// An account was created.
    AccountCreated,
    /// An account's mailbox settings or password changed.
    AccountUpdated,
    /// An account was deleted with everything under it.
    AccountDeleted,
    /// A number was verified for the account.
    BindingVerified,
    /// A number's binding to the account ended.
    BindingRevoked,
    /// A binding's preferences changed.
    PreferencesChanged,
    /// A device appeared behind a number.
    DeviceRegistered,
    /// A device was revoked; its tokens issued before `occurred_at` are void.
    DeviceRevoked,
    /// A remote wipe was ordered for a device.
    DeviceWipeOrdered,
}

impl Change {
    fn kind(self) -> BindingChangeKind {
        match self {
            Self::AccountCreated => BindingChangeKind::AccountCreated,
            Self::AccountUpdated => BindingChangeKind::AccountUpdated,
            Self::AccountDeleted => BindingChangeKind::AccountDeleted,
            Self::BindingVerified => BindingChangeKind::BindingVerified,
            Self::BindingRevoked => BindingChangeKind::BindingRevoked,
            Self::PreferencesChanged => BindingChangeKind::PreferencesChanged,
            Self::DeviceRegistered => BindingChangeKind::DeviceRegistered,
            Self::DeviceRevoked => BindingChangeKind::DeviceRevoked,
            Self::DeviceWipeOrdered => BindingChangeKind::DeviceWipeOrdered,
        }
    }
}

/// One announcement: what changed, where, when.
#[derive(Debug, Clone)]
pub(crate) struct Announcement<'a> {
    /// Owner.
    pub tenant: TenantId,
    /// The account whose delivery targets changed; `None` for a device
    /// behind a number no account is bound to yet.
    pub account: Option<AccountId>,
    /// What happened.
    pub change: Change,
    /// The number concerned, if one.
    pub msisdn: Option<&'a Msisdn>,
    /// The device concerned, if one.
    pub device: Option<DeviceId>,
    /// When, ms since the epoch (a device revocation's cut-off).
    pub at_ms: i64,
}

/// Publishes binding's events.
#[derive(Clone)]
pub(crate) struct Events {
    bus: Arc<dyn EventBus>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Events")
    }
}

fn meta(context: &EventContext, at_ms: i64) -> EventMeta {
    context.meta(at_ms)
}

impl Events {
    /// Publishes on `bus`.
    pub(crate) fn new(bus: Arc<dyn EventBus>) -> Self {
        Self { bus }
    }

    /// Creates binding's topics where the broker does not auto-create them.
    pub(crate) async fn ensure_topics(&self) -> Result<(), BusError> {
        self.bus
            .ensure_topic(BINDING_CHANGED.name(), PARTITIONS)
            .await?;
        self.bus.ensure_topic(SMS_OUTBOUND.name(), PARTITIONS).await
    }

    /// Announces a change, keyed by account (by number when there is none)
    /// so one account's changes stay in order.
    pub(crate) async fn changed(&self, announcement: &Announcement<'_>) -> Result<(), BusError> {
        let context = EventContext::new(announcement.tenant.to_string());
        let account = announcement.account.map(|a| a.to_string());
        let msisdn = announcement.msisdn.map(|m| m.as_str().to_owned());
        let event = BindingChanged {
            meta: Some(meta(&context, announcement.at_ms)),
            account_id: account.clone().unwrap_or_default(),
            kind: announcement.change.kind().into(),
            msisdn: msisdn.clone().unwrap_or_default(),
            device_id: announcement
                .device
                .map(|d| d.to_string())
                .unwrap_or_default(),
        };
        let key = account.or(msisdn).unwrap_or_default();
        let record = bus::encode(BINDING_CHANGED, &key, &context, &event);
        self.publish(BINDING_CHANGED.name(), record).await
    }

    /// Asks the SMS centre to send `code` to `msisdn`. `request_id` lets its
    /// receipt be matched.
    pub(crate) async fn one_time_code(
        &self,
        tenant: TenantId,
        account: AccountId,
        msisdn: &Msisdn,
        code: &OtpCode,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<String, BusError> {
        let context = EventContext::new(tenant.to_string());
        let minutes = (expires_at_ms - now_ms).div_euclid(60_000).max(1);
        let text = if msisdn.as_str().starts_with("+86") {
            format!(
                "【pushmail】验证码 {}，{minutes} 分钟内有效。如非本人操作请忽略。",
                code.expose()
            )
        } else {
            format!(
                "pushmail: your verification code is {}. It expires in {minutes} minutes. \
                 If you did not ask for it, ignore this message.",
                code.expose()
            )
        };
        let request_id = context.event_id.clone();
        let event = SmsOutbound {
            meta: Some(meta(&context, now_ms)),
            msisdn: msisdn.as_str().to_owned(),
            purpose: SmsPurpose::Otp.into(),
            body: Some(sms_outbound::Body::Text(text)),
            segments: Vec::new(),
            request_id: request_id.clone(),
            expires_at: Some(timestamp(expires_at_ms)),
            account_id: account.to_string(),
            device_id: String::new(),
        };
        let record = bus::encode(SMS_OUTBOUND, msisdn.as_str(), &context, &event);
        self.publish(SMS_OUTBOUND.name(), record).await?;
        Ok(request_id)
    }

    async fn publish(
        &self,
        topic: &'static str,
        record: bus::OutboundRecord,
    ) -> Result<(), BusError> {
        match self.bus.publish(topic, record).await {
            Ok(_) => Ok(()),
            Err(err) => {
                metrics::counter!(METRIC_PUBLISH_FAILED, "topic" => topic).increment(1);
                tracing::warn!(topic, error = %pushmail_common::report::Report(&err), "event not published");
                Err(err)
            }
        }
    }
}
