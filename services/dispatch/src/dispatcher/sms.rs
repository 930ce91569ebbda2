//! The SMS rungs: a binary WAP Push wake-up (one per phone per window) so
//! the push client connects and gets the replay, or a text notice per mail
//! for a number without one. Each is claimed first, so a redelivered mail
//! sends nothing twice, and charged to the tenant's daily quota.

use pushmail_common::bus::{EventContext, encode};
use pushmail_common::clock::now_ms;
use pushmail_proto::binding::v1 as binding;
use pushmail_proto::events::v1 as events;
use pushmail_proto::session::v1 as session;
use pushmail_proto::topics;
use pushmail_sms_encoding as sms;
use rand::Rng as _;

use super::Dispatcher;
use crate::domain::{Msisdn, Target};
use crate::failure::Failure;
use crate::receipts::{Receipt, Receipts};

/// Longest text in an SMS wake-up (the href and ids already take most of
/// the first binary SMS).
const WAKE_UP_TEXT_BYTES: usize = 60;

/// How long a text notice's claim lasts: longer than any redelivery
/// (Kafka retention is days, not weeks).
const NOTICE_CLAIM_MS: u64 = 14 * 24 * 3600 * 1000;

/// An SMS to publish.
struct Sms {
    purpose: events::SmsPurpose,
    channel: events::DeliveryChannel,
    body: events::sms_outbound::Body,
    segments: Vec<sms::Segment>,
}

/// One SMS for one phone: where to, why, and the claim that keeps it once.
struct Send<'a> {
    target: &'a Target,
    msisdn: &'a Msisdn,
    notification: &'a session::Notification,
    claim: String,
}

impl<'a> Send<'a> {
    /// An SMS to `target`'s number (none when it has no number), claimed
    /// under the key `claim` makes of the number.
    fn to(
        target: &'a Target,
        notification: &'a session::Notification,
        claim: impl FnOnce(&Msisdn) -> String,
    ) -> Option<Self> {
        let msisdn = target.reach.msisdn()?;
        Some(Self {
            target,
            msisdn,
            notification,
            claim: claim(msisdn),
        })
    }
}

impl Dispatcher {
    /// One binary SMS per phone per window, so the push client connects
    /// and gets the replay.
    pub(super) async fn wake_up(
        &self,
        target: &Target,
        n: &session::Notification,
        receipts: &Receipts,
    ) -> Result<(), Failure> {
        let claim = |_: &Msisdn| format!("wake:{}/{}", target.tenant, target.reach.device());
        let Some(send) = Send::to(target, n, claim) else {
            return Ok(());
        };
        let window_ms = self.delivery.wake_up_window_seconds.saturating_mul(1_000);
        if !self.claim(&send, window_ms).await? {
            return Ok(());
        }
        let now_s = now_ms() / 1_000;
        let validity = i64::try_from(self.delivery.sms_validity_seconds).unwrap_or(i64::MAX);
        let mut text = match (&n.from, n.subject.is_empty()) {
            (Some(from), false) => format!("{}: {}", display(from), n.subject),
            _ => "New mail".to_owned(),
        };
        // Every byte is paid for in binary SMS parts; the phone fetches the rest.
        crate::policy::truncate(&mut text, WAKE_UP_TEXT_BYTES);
        let si = sms::wap::ServiceIndication {
            href: n.message_url.clone(),
            si_id: n.collapse_key.clone(),
            created: now_s,
            expires: now_s.saturating_add(validity),
            text,
        };
        let reference: u8 = rand::rng().random();
        let pdu = sms::wap::push_pdu(&si, reference);
        let segments = sms::wap::segments(&pdu, reference);
        let sms = Sms {
            purpose: events::SmsPurpose::WakeUp,
            channel: events::DeliveryChannel::SmsWakeUp,
            body: events::sms_outbound::Body::WapPushPdu(pdu),
            segments,
        };
        self.publish_sms(&send, sms, receipts).await
    }

    /// A text SMS per mail for a number without a push client.
    pub(super) async fn notice(
        &self,
        target: &Target,
        n: &session::Notification,
        receipts: &Receipts,
    ) -> Result<(), Failure> {
        let claim = |msisdn: &Msisdn| format!("notice:{msisdn}/{}", n.idempotency_key);
        let Some(send) = Send::to(target, n, claim) else {
            return Ok(());
        };
        if !self.claim(&send, NOTICE_CLAIM_MS).await? {
            return Ok(());
        }
        let text = match (&n.from, n.subject.is_empty()) {
            (Some(from), false) => format!("New mail from {}: {}", display(from), n.subject),
            (Some(from), true) => format!("New mail from {}", display(from)),
            (None, _) => "You have new mail".to_owned(),
        };
        let reference: u8 = rand::rng().random();
        let segments = sms::text::segments(&text, reference);
        let sms = Sms {
            purpose: events::SmsPurpose::Notice,
            channel: events::DeliveryChannel::SmsNotice,
            body: events::sms_outbound::Body::Text(text),
            segments,
        };
        self.publish_sms(&send, sms, receipts).await
    }

    /// Claims the send for this mail (see [`crate::state::Claims::claim`]).
    async fn claim(&self, send: &Send<'_>, ttl_ms: u64) -> Result<bool, Failure> {
        Ok(self
            .state
            .claim(&send.claim, &send.notification.idempotency_key, ttl_ms)
            .await?)
    }

    /// Gives the claim back or confirms it; a failure here only risks one
    /// more SMS on redelivery, so it is logged, not retried.
    async fn settle(&self, send: &Send<'_>, sent: bool) {
        let owner = &send.notification.idempotency_key;
        let settled = if sent {
            self.state.confirm(&send.claim, owner).await
        } else {
            self.state.release(&send.claim, owner).await
        };
        if let Err(err) = settled {
            tracing::warn!(error = %pushmail_common::report::Report(&err), sent, "SMS claim not settled");
        }
    }

    fn outbound(&self, context: &EventContext, send: &Send<'_>, sms: Sms) -> events::SmsOutbound {
        let Sms {
            purpose,
            body,
            segments,
            ..
        } = sms;
        let validity_ms = i64::try_from(self.delivery.sms_validity_seconds.saturating_mul(1_000))
            .unwrap_or(i64::MAX);
        events::SmsOutbound {
            meta: Some(context.meta(now_ms())),
            msisdn: send.msisdn.as_str().to_owned(),
            purpose: purpose.into(),
            body: Some(body),
            segments: segments.into_iter().map(segment).collect(),
            request_id: context.event_id.clone(),
            expires_at: Some(pushmail_common::clock::timestamp(
                now_ms().saturating_add(validity_ms),
            )),
            account_id: send.notification.account_id.clone(),
            device_id: send.target.reach.device().to_owned(),
        }
    }

    async fn publish_sms(
        &self,
        send: &Send<'_>,
        sms: Sms,
        receipts: &Receipts,
    ) -> Result<(), Failure> {
        let target = send.target;
        let context = EventContext::new(target.tenant.as_str().to_owned());
        let channel = sms.channel;
        let outbound = self.outbound(&context, send, sms);
        // The tenant's daily quota, kept by binding (it also counts OTPs);
        // charging records the SMS in the tenant's traffic.
        let charge = binding::ChargeSmsRequest {
            tenant_id: target.tenant.as_str().to_owned(),
            account_id: target.account.as_str().to_owned(),
        };
        match self.binding.clone().charge_sms(charge).await {
            Ok(_) => {}
            Err(status) if status.code() == tonic::Code::ResourceExhausted => {
                // Settled, not retried: the quota is used up for today.
                self.settle(send, true).await;
                metrics::counter!("pushmail_dispatch_sms_over_quota_total").increment(1);
                return receipts
                    .publish(Receipt::new(
                        target,
                        send.notification,
                        channel,
                        events::DeliveryStatus::Failed,
                        "sms quota reached",
                    ))
                    .await;
            }
            Err(status) => {
                self.settle(send, false).await;
                return Err(Failure::binding(status));
            }
        }
        let record = encode(
            topics::SMS_OUTBOUND,
            send.msisdn.as_str(),
            &context,
            &outbound,
        );
        if let Err(err) = self.bus.publish(topics::SMS_OUTBOUND.name(), record).await {
            // Give the claim back, so the retry sends it.
            self.settle(send, false).await;
            return Err(err.into());
        }
        self.settle(send, true).await;
        receipts
            .publish(Receipt {
                request_id: &outbound.request_id,
                ..Receipt::new(
                    target,
                    send.notification,
                    channel,
                    events::DeliveryStatus::SmsSubmitted,
                    "",
                )
            })
            .await
    }
}

fn segment(s: sms::Segment) -> events::SmsSegment {
    events::SmsSegment {
        data_coding: match s.coding {
            sms::Coding::Gsm7 => events::SmsDataCoding::Gsm7,
            sms::Coding::Ucs2 => events::SmsDataCoding::Ucs2,
            sms::Coding::Binary => events::SmsDataCoding::Binary,
        }
        .into(),
        user_data_header: s.udh,
        user_data: s.user_data,
    }
}

fn display(address: &pushmail_proto::common::v1::Address) -> String {
    if address.name.is_empty() {
        address.address.clone()
    } else {
        address.name.clone()
    }
}
