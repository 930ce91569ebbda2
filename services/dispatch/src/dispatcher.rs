//! One `MailArrived` → what each of the owner's phones gets: the event and
//! binding's targets converted at the edge (`domain`), the rung chosen by
//! the pure ladder (`ladder`), the steps carried out here, receipts to the
//! sink the caller chose (`receipts`). A mail is finished (its offset may
//! be committed) only when every phone's outcome is recorded: in the
//! outbox, on the SMS topic, or on the dead-letter topic.

use std::sync::Arc;

use pushmail_common::bus::EventBus;
use pushmail_common::clock::now_ms;
use pushmail_outbox::{AppendState, Outbox};
use pushmail_proto::binding::v1::binding_service_client::BindingServiceClient;
use pushmail_proto::events::v1 as events;
use pushmail_proto::session::v1 as session;
use pushmail_traffic::Traffic;

use crate::config::DeliveryConfig;
use crate::domain::{AccountId, Arrival, Kind, Mail, Reach, Target, TenantId};
use crate::failure::Failure;
use crate::ladder::{self, Errand, Plan, Presence};
use crate::receipts::{Receipt, Receipts};
use crate::sessions::{Delivery, Sessions};
use crate::state::State;

mod digest;
mod handler;
mod sms;
mod sync;

/// Everything dispatch needs, shared by the consumer and the digest loop.
pub(crate) struct Dispatcher {
    pub(crate) bus: Arc<dyn EventBus>,
    pub(crate) binding: BindingServiceClient<pushmail_common::grpc::TracedChannel>,
    pub(crate) sessions: Sessions,
    pub(crate) targets: Arc<crate::targets::Targets>,
    pub(crate) outbox: Arc<dyn Outbox>,
    pub(crate) state: Arc<dyn State>,
    pub(crate) traffic: Traffic,
    pub(crate) delivery: DeliveryConfig,
}

impl Dispatcher {
    /// The account's phones, from binding (cached).
    async fn targets(
        &self,
        tenant: &TenantId,
        account: &AccountId,
    ) -> Result<Vec<Target>, Failure> {
        let prepared = self
            .targets
            .get(tenant.as_str(), account.as_str())
            .await
            .map_err(Failure::binding)?;
        Ok(prepared
            .iter()
            .map(|p| Target {
                tenant: tenant.clone(),
                account: account.clone(),
                reach: p.reach.clone(),
                policy: p.policy.clone(),
            })
            .collect())
    }

    /// Every phone's outcome for one arrival (a mail, or a mailbox sync).
    pub(crate) async fn dispatch(
        &self,
        arrival: &Arrival,
        receipts: &Receipts,
    ) -> Result<(), Failure> {
        let targets = self.targets(&arrival.tenant, &arrival.account).await?;
        let mail = match &arrival.kind {
            Kind::Sync(resync) => return self.sync(arrival, resync, &targets, receipts).await,
            Kind::Mail(mail) => mail,
        };
        let now = jiff::Timestamp::now();
        let rate_held_until = self.over_rate(&arrival.tenant, targets.len()).await?;
        let outcomes = futures::future::join_all(targets.iter().map(|target| async {
            let mut notification = self.notification(arrival, mail, target);
            target.policy.shape(&mut notification);
            let verdict = target.policy.verdict(mail.sender(), now);
            let plan = ladder::plan(&target.reach, Errand::Mail, verdict, rate_held_until);
            self.carry_out(plan, target, notification, receipts).await
        }))
        .await;
        // A transient failure anywhere retries the mail; what was done is
        // idempotent (outbox keys, SMS claims), so phones see it once.
        outcomes.into_iter().collect()
    }

    /// The notification of a mail for `target`, before policy.
    fn notification(
        &self,
        arrival: &Arrival,
        mail: &Mail,
        target: &Target,
    ) -> session::Notification {
        let base = self.delivery.public_url.trim_end_matches('/');
        let message = format!(
            "{base}/v1/accounts/{}/messages/{}",
            arrival.account, mail.blob_ref
        );
        session::Notification {
            tenant_id: arrival.tenant.as_str().to_owned(),
            device_id: target.reach.device().to_owned(),
            sequence: 0,
            collapse_key: format!("{}/{}", arrival.account, arrival.mailbox),
            idempotency_key: arrival.key.as_str().to_owned(),
            account_id: arrival.account.as_str().to_owned(),
            mailbox: arrival.mailbox.clone(),
            from: mail.from.clone(),
            subject: mail.subject.clone(),
            snippet: mail.snippet.clone(),
            attachments: mail
                .attachments
                .iter()
                .map(|a| session::NotificationAttachment {
                    fetch_url: format!("{message}/attachments/{}", a.part_id),
                    preview_url: format!("{message}/attachments/{}/preview", a.part_id),
                    attachment: Some(a.clone()),
                })
                .collect(),
            received_at: arrival.received_at,
            traceparent: arrival.traceparent.clone(),
            message_url: message,
            digest_count: 0,
            outbox_generation: 0,
            sync: false,
            change: 0,
        }
    }

    /// Carries out the ladder's `plan` for one phone.
    async fn carry_out(
        &self,
        plan: Plan,
        target: &Target,
        notification: session::Notification,
        receipts: &Receipts,
    ) -> Result<(), Failure> {
        match plan {
            Plan::Suppress => {
                receipts
                    .publish(Receipt::new(
                        target,
                        &notification,
                        events::DeliveryChannel::Unspecified,
                        events::DeliveryStatus::Suppressed,
                        "sender is black-listed",
                    ))
                    .await
            }
            Plan::Hold { until_ms, why } => {
                let held = session::Notification {
                    device_id: target.reach.held_key(),
                    ..notification.clone()
                };
                self.state.defer(&held, until_ms).await?;
                receipts
                    .publish(Receipt::new(
                        target,
                        &notification,
                        events::DeliveryChannel::Unspecified,
                        events::DeliveryStatus::Deferred,
                        why.detail(),
                    ))
                    .await
            }
            Plan::Push { unacked } => {
                let (presence, pushed) = self.push(target, notification, receipts).await?;
                if ladder::wakes_up(unacked, presence) {
                    return self.wake_up(target, &pushed, receipts).await;
                }
                Ok(())
            }
            Plan::Notice => self.notice(target, &notification, receipts).await,
            Plan::Skip => Ok(()),
        }
    }

    /// When the tenant is over its push rate: the end of the window, when
    /// what is held goes out as one digest per account and device. A
    /// retried mail counts again (the limit errs towards holding).
    async fn over_rate(&self, tenant: &TenantId, pushes: usize) -> Result<Option<i64>, Failure> {
        if pushes == 0 {
            return Ok(None);
        }
        let per_minute = self
            .targets
            .push_per_minute(tenant.as_str())
            .await
            .map_err(Failure::binding)?;
        if per_minute == 0 {
            return Ok(None);
        }
        let window = i64::try_from(self.delivery.rate_window_ms).unwrap_or(60_000);
        let allowed = (u64::from(per_minute) * self.delivery.rate_window_ms).div_ceil(60_000);
        let start = now_ms() / window * window;
        let used = self
            .state
            .count(
                &format!("rate:{tenant}:{start}"),
                pushes as u64,
                self.delivery.rate_window_ms * 2,
            )
            .await?;
        if used <= allowed {
            return Ok(None);
        }
        metrics::counter!("pushmail_dispatch_rate_limited_total").increment(pushes as u64);
        Ok(Some(start + window))
    }

    /// The outbox, then the held connection, with the receipt: ACKED, or
    /// QUEUED (the outbox replays it on reconnect). Returns the phone's
    /// presence and the notification as sent (its sequence), as the SMS
    /// wake-up needs it.
    async fn push(
        &self,
        target: &Target,
        mut n: session::Notification,
        receipts: &Receipts,
    ) -> Result<(Presence, session::Notification), Failure> {
        let appended = self.outbox.append(&n).await?;
        if appended.state == AppendState::Acked {
            return Ok((Presence::Acked, n));
        }
        // The session resyncs a connection of another generation first,
        // and never takes a sequence of one as acked in the other.
        n.sequence = appended.seq;
        n.outbox_generation = appended.generation;
        if appended.count > 1 {
            n.digest_count = n.digest_count.max(1) + appended.count - 1;
        }
        let bytes = prost::Message::encoded_len(&n) as u64;
        let delivery = self
            .sessions
            .deliver(n.clone(), self.delivery.ack_timeout_ms)
            .await;
        let (presence, channel, status, detail) = match &delivery {
            Delivery::Acked => {
                self.traffic
                    .pushed(target.tenant.as_str(), target.account.as_str(), bytes);
                (
                    Presence::Acked,
                    events::DeliveryChannel::HeldConnection,
                    events::DeliveryStatus::Acked,
                    String::new(),
                )
            }
            away => (
                Presence::Away,
                events::DeliveryChannel::Replay,
                events::DeliveryStatus::Queued,
                match away {
                    Delivery::Unavailable(err) => format!(
                        "session unavailable: {}",
                        pushmail_common::report::Report(err)
                    ),
                    Delivery::NoAck => "no ack in time".to_owned(),
                    Delivery::NotConnected | Delivery::Acked => "not connected".to_owned(),
                },
            ),
        };
        receipts
            .publish(Receipt::new(target, &n, channel, status, &detail))
            .await?;
        Ok((presence, n))
    }

    /// The phone whose mail was held under `held` (see
    /// [`Reach::held_key`]), as binding has it now; a device no longer
    /// bound keeps its push (its number is not known any more), a bare
    /// number no longer bound gets nothing.
    async fn reach_of(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        held: &str,
    ) -> Result<Option<Reach>, Failure> {
        let targets = match self.targets(tenant, account).await {
            Ok(targets) => targets,
            Err(err) if err.is_permanent() => Vec::new(),
            Err(err) => return Err(err),
        };
        if let Some(target) = targets.into_iter().find(|t| t.reach.held_key() == held) {
            return Ok(Some(target.reach));
        }
        if held.starts_with(crate::domain::HELD_NUMBER) {
            return Ok(None);
        }
        Ok(crate::domain::DeviceId::new(held)
            .ok()
            .map(|device| Reach::Device {
                device,
                msisdn: None,
            }))
    }
}
