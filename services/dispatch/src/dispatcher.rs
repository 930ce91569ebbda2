//! One `MailArrived` → what each of the owner's devices gets: policy, then
//! the ladder (outbox → held connection → SMS wake-up, or a text notice for
//! phones without a push client), receipts for each step. A mail is
//! finished (its offset may be committed) only when every device's outcome
//! is recorded: in the outbox, on the SMS topic, or on the dead-letter topic.
//! A mailbox sync (no one mail) takes a shorter path: `dispatcher/sync.rs`.

use pushmail_common::backoff::Backoff;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pushmail_common::bus::{EventBus, EventContext, InboundRecord, decode, encode};
use pushmail_common::bus::{Handler, HandlerError};
use pushmail_common::clock::now_ms;
use pushmail_common::outbox::{AppendState, Outbox};
use pushmail_proto::binding::v1 as binding;
use pushmail_proto::binding::v1::binding_service_client::BindingServiceClient;
use pushmail_proto::events::v1 as events;
use pushmail_proto::session::v1 as session;
use pushmail_proto::topics;
use rand::Rng as _;

use crate::config::DeliveryConfig;
use crate::policy::{Policy, Verdict};
use crate::sessions::{Delivery, Sessions};
use crate::state::State;
use pushmail_common::sms;
use pushmail_common::traffic::Traffic;

mod sync;

/// Receipts of the mail being handled, left publishing (see
/// [`Handler::handle_pipelined`]): the lane goes on to the account's next
/// mail while the broker acks them, and the mail is committed after.
type Tails = Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>;

tokio::task_local! {
    static TAILS: Tails;
}

/// Why a mail could not be dispatched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth retrying (a service or store is down).
    Transient(String),
    /// Retrying cannot help (the event is unusable).
    Permanent(String),
}

/// Everything dispatch needs, shared by the consumer and the digest loop.
pub struct Dispatcher {
    pub(crate) bus: Arc<dyn EventBus>,
    pub(crate) binding: BindingServiceClient<pushmail_common::grpc::TracedChannel>,
    pub(crate) sessions: Sessions,
    pub(crate) targets: Arc<crate::targets::Targets>,
    pub(crate) outbox: Arc<dyn Outbox>,
    pub(crate) state: Arc<dyn State>,
    pub(crate) traffic: Traffic,
    pub(crate) delivery: DeliveryConfig,
}

/// Longest text in an SMS wake-up (the href and ids already take most of
/// the first binary SMS).
const WAKE_UP_TEXT_BYTES: usize = 60;

/// An SMS to publish.
struct Sms {
    purpose: events::SmsPurpose,
    channel: events::DeliveryChannel,
    body: events::sms_outbound::Body,
    segments: Vec<sms::Segment>,
}

/// One device (or a bare number) the mail goes to.
struct Target {
    tenant: String,
    account: String,
    device: String,
    msisdn: String,
    push_client: bool,
    policy: Arc<Policy>,
}

/// A failure worth retrying, with every cause the error carries.
fn transient(err: impl std::error::Error + 'static) -> Failure {
    Failure::Transient(pushmail_common::report::Report(&err).to_string())
}

/// A failure of binding worth retrying.
fn binding_down(status: &tonic::Status) -> Failure {
    Failure::Transient(format!("binding: {}", status.message()))
}

impl Dispatcher {
    async fn targets(&self, tenant: &str, account: &str) -> Result<Vec<Target>, Failure> {
        let targets = match self.targets.get(tenant, account).await {
            Ok(targets) => targets,
            Err(status) => {
                return Err(match status.code() {
                    // The account is gone or never was: nothing will change on retry.
                    tonic::Code::NotFound | tonic::Code::InvalidArgument => {
                        Failure::Permanent(format!("binding: {}", status.message()))
                    }
                    _ => binding_down(&status),
                });
            }
        };
        Ok(targets
            .iter()
            .map(|t| Target {
                tenant: tenant.to_owned(),
                account: account.to_owned(),
                policy: t.policy.clone(),
                device: t.target.device_id.clone(),
                msisdn: t.target.msisdn.clone(),
                push_client: t.target.has_push_client,
            })
            .collect())
    }

    /// The notification of `event` for `target`, before policy.
    fn notification(&self, event: &events::MailArrived, target: &Target) -> session::Notification {
        let summary = event.summary.clone().unwrap_or_default();
        let base = self.delivery.public_url.trim_end_matches('/');
        let message = format!(
            "{base}/v1/accounts/{}/messages/{}",
            event.account_id, event.blob_ref
        );
        session::Notification {
            tenant_id: target.tenant.clone(),
            device_id: target.device.clone(),
            sequence: 0,
            collapse_key: format!("{}/{}", event.account_id, event.mailbox),
            idempotency_key: event.idempotency_key.clone(),
            account_id: event.account_id.clone(),
            mailbox: event.mailbox.clone(),
            from: summary.from,
            subject: summary.subject,
            snippet: summary.snippet,
            attachments: event
                .attachments
                .iter()
                .map(|a| session::NotificationAttachment {
                    fetch_url: format!("{message}/attachments/{}", a.part_id),
                    preview_url: format!("{message}/attachments/{}/preview", a.part_id),
                    attachment: Some(a.clone()),
                })
                .collect(),
            received_at: event.received_at,
            traceparent: traceparent(event),
            message_url: message,
            digest_count: 0,
            outbox_generation: 0,
            sync: false,
        }
    }

    /// Every device's outcome for one mail (or mailbox sync).
    pub async fn dispatch(&self, event: &events::MailArrived) -> Result<(), Failure> {
        let tenant = tenant_of(event)?;
        if event.mailbox_sync {
            return self.sync(&tenant, event).await;
        }
        let targets = self.targets(&tenant, &event.account_id).await?;
        let sender = event
            .summary
            .as_ref()
            .and_then(|s| s.from.as_ref())
            .map(|a| a.address.clone())
            .unwrap_or_default();
        let now = jiff::Timestamp::now();
        let held_until = self.over_rate(&tenant, targets.len()).await?;
        let outcomes = futures::future::join_all(targets.iter().map(|target| async {
            let mut notification = self.notification(event, target);
            match (target.policy.verdict(&sender, now), held_until) {
                (Verdict::Blocked, _) => {
                    self.receipt(
                        &notification,
                        target,
                        events::DeliveryChannel::Unspecified,
                        events::DeliveryStatus::Suppressed,
                        "sender is black-listed",
                    )
                    .await
                }
                (Verdict::Defer { until }, _) => {
                    target.policy.shape(&mut notification);
                    self.hold(&notification, target, until.as_millisecond(), "quiet hours")
                        .await
                }
                (Verdict::Push, Some(until)) => {
                    target.policy.shape(&mut notification);
                    self.hold(&notification, target, until, "tenant push rate limit")
                        .await
                }
                (Verdict::Push, None) => {
                    target.policy.shape(&mut notification);
                    self.send(target, notification).await
                }
            }
        }))
        .await;
        // A transient failure anywhere retries the mail; what was done is
        // idempotent (outbox keys, SMS claims), so devices see it once.
        outcomes.into_iter().collect()
    }

    /// Holds a notification for the device's digest at `until_ms`.
    async fn hold(
        &self,
        notification: &session::Notification,
        target: &Target,
        until_ms: i64,
        why: &str,
    ) -> Result<(), Failure> {
        self.state
            .defer(notification, until_ms)
            .await
            .map_err(transient)?;
        self.receipt(
            notification,
            target,
            events::DeliveryChannel::Unspecified,
            events::DeliveryStatus::Deferred,
            why,
        )
        .await
    }

    /// When the tenant is over its push rate: the end of the window, when
    /// what is held goes out as one digest per account and device. A
    /// retried mail counts again (the limit errs towards holding).
    async fn over_rate(&self, tenant: &str, pushes: usize) -> Result<Option<i64>, Failure> {
        if pushes == 0 {
            return Ok(None);
        }
        let per_minute = self
            .targets
            .push_per_minute(tenant)
            .await
            .map_err(|status| binding_down(&status))?;
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
            .await
            .map_err(transient)?;
        if used <= allowed {
            return Ok(None);
        }
        metrics::counter!("pushmail_dispatch_rate_limited_total").increment(pushes as u64);
        Ok(Some(start + window))
    }

    /// The ladder for one device.
    async fn send(&self, target: &Target, n: session::Notification) -> Result<(), Failure> {
        if !target.push_client || target.device.is_empty() {
            return self.notice(target, &n).await;
        }
        match self.push(target, n).await? {
            Some(queued) => self.wake_up(target, &queued).await,
            None => Ok(()),
        }
    }

    /// The outbox, then the held connection, with the receipt: ACKED, or
    /// QUEUED (the outbox replays it on reconnect) and the notification
    /// back, as the device's SMS wake-up needs it.
    async fn push(
        &self,
        target: &Target,
        mut n: session::Notification,
    ) -> Result<Option<session::Notification>, Failure> {
        let appended = self.outbox.append(&n).await.map_err(transient)?;
        if appended.state == AppendState::Acked {
            return Ok(None);
        }
        // The session resyncs a connection of another generation first,
        // and never takes a sequence of one as acked in the other.
        n.sequence = appended.seq;
        n.outbox_generation = appended.generation;
        if appended.count > 1 {
            n.digest_count = n.digest_count.max(1) + appended.count - 1;
        }
        let bytes = prost::Message::encoded_len(&n) as u64;
        match self
            .sessions
            .deliver(n.clone(), self.delivery.ack_timeout_ms)
            .await
        {
            Delivery::Acked => {
                self.traffic.pushed(&target.tenant, &target.account, bytes);
                self.receipt(
                    &n,
                    target,
                    events::DeliveryChannel::HeldConnection,
                    events::DeliveryStatus::Acked,
                    "",
                )
                .await?;
                Ok(None)
            }
            other => {
                let detail = match &other {
                    Delivery::NotConnected => "not connected".to_owned(),
                    Delivery::NoAck => "no ack in time".to_owned(),
                    Delivery::Unavailable(err) => {
                        format!(
                            "session unavailable: {}",
                            pushmail_common::report::Report(err)
                        )
                    }
                    Delivery::Acked => String::new(),
                };
                self.receipt(
                    &n,
                    target,
                    events::DeliveryChannel::Replay,
                    events::DeliveryStatus::Queued,
                    &detail,
                )
                .await?;
                Ok(Some(n))
            }
        }
    }

    /// One binary SMS per device per window, so the push client connects
    /// and gets the replay.
    async fn wake_up(&self, target: &Target, n: &session::Notification) -> Result<(), Failure> {
        if target.msisdn.is_empty() {
            return Ok(());
        }
        let key = format!("wake:{}/{}", target.tenant, target.device);
        let window_ms = self.delivery.wake_up_window_seconds.saturating_mul(1_000);
        if !self.claim(&key, n, window_ms).await? {
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
        self.publish_sms(target, n, &key, sms).await
    }

    /// A text SMS per mail for a phone without a push client.
    async fn notice(&self, target: &Target, n: &session::Notification) -> Result<(), Failure> {
        if target.msisdn.is_empty() {
            return Ok(());
        }
        let key = format!("notice:{}/{}", target.msisdn, n.idempotency_key);
        // Longer than any redelivery: Kafka retention is days, not weeks.
        let ttl_ms = 14 * 24 * 3600 * 1000;
        if !self.claim(&key, n, ttl_ms).await? {
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
        self.publish_sms(target, n, &key, sms).await
    }

    /// Claims `key` for this mail (see [`State::claim`]).
    async fn claim(
        &self,
        key: &str,
        n: &session::Notification,
        ttl_ms: u64,
    ) -> Result<bool, Failure> {
        self.state
            .claim(key, &n.idempotency_key, ttl_ms)
            .await
            .map_err(transient)
    }

    fn outbound(
        &self,
        context: &EventContext,
        target: &Target,
        n: &session::Notification,
        sms: Sms,
    ) -> events::SmsOutbound {
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
            msisdn: target.msisdn.clone(),
            purpose: purpose.into(),
            body: Some(body),
            segments: segments
                .into_iter()
                .map(|s| events::SmsSegment {
                    data_coding: match s.coding {
                        sms::Coding::Gsm7 => events::SmsDataCoding::Gsm7,
                        sms::Coding::Ucs2 => events::SmsDataCoding::Ucs2,
                        sms::Coding::Binary => events::SmsDataCoding::Binary,
                    }
                    .into(),
                    user_data_header: s.udh,
                    user_data: s.user_data,
                })
                .collect(),
            request_id: context.event_id.clone(),
            expires_at: Some(pushmail_common::clock::timestamp(
                now_ms().saturating_add(validity_ms),
            )),
            account_id: n.account_id.clone(),
            device_id: target.device.clone(),
        }
    }

    async fn publish_sms(
        &self,
        target: &Target,
        n: &session::Notification,
        claim: &str,
        sms: Sms,
    ) -> Result<(), Failure> {
        let context = EventContext::new(target.tenant.clone());
        let channel = sms.channel;
        let outbound = self.outbound(&context, target, n, sms);
        // The tenant's daily quota, kept by binding (it also counts OTPs);
        // charging records the SMS in the tenant's traffic.
        let charge = binding::ChargeSmsRequest {
            tenant_id: target.tenant.clone(),
            account_id: target.account.clone(),
        };
        match self.binding.clone().charge_sms(charge).await {
            Ok(_) => {}
            Err(status) if status.code() == tonic::Code::ResourceExhausted => {
                // Settled, not retried: the quota is used up for today.
                let _ = self.state.confirm(claim, &n.idempotency_key).await;
                metrics::counter!("pushmail_dispatch_sms_over_quota_total").increment(1);
                return self
                    .receipt(
                        n,
                        target,
                        channel,
                        events::DeliveryStatus::Failed,
                        "sms quota reached",
                    )
                    .await;
            }
            Err(status) => {
                let _ = self.state.release(claim, &n.idempotency_key).await;
                return Err(binding_down(&status));
            }
        }
        let record = encode(topics::SMS_OUTBOUND, &target.msisdn, &context, &outbound);
        if let Err(err) = self.bus.publish(topics::SMS_OUTBOUND.name(), record).await {
            // Give the claim back, so the retry sends it.
            let _ = self.state.release(claim, &n.idempotency_key).await;
            return Err(transient(err));
        }
        if let Err(err) = self.state.confirm(claim, &n.idempotency_key).await {
            // Sent but unconfirmed: a redelivery may send it once more.
            tracing::warn!(error = %pushmail_common::report::Report(&err), "SMS claim not confirmed");
        }
        self.receipt_with(
            n,
            target,
            channel,
            events::DeliveryStatus::SmsSubmitted,
            "",
            &outbound.request_id,
        )
        .await
    }

    async fn receipt(
        &self,
        n: &session::Notification,
        target: &Target,
        channel: events::DeliveryChannel,
        status: events::DeliveryStatus,
        detail: &str,
    ) -> Result<(), Failure> {
        self.receipt_with(n, target, channel, status, detail, "")
            .await
    }

    async fn receipt_with(
        &self,
        n: &session::Notification,
        target: &Target,
        channel: events::DeliveryChannel,
        status: events::DeliveryStatus,
        detail: &str,
        request_id: &str,
    ) -> Result<(), Failure> {
        let context = EventContext::new(target.tenant.clone());
        let receipt = events::DeliveryReceipt {
            meta: Some(context.meta(now_ms())),
            device_id: target.device.clone(),
            account_id: target.account.clone(),
            idempotency_key: n.idempotency_key.clone(),
            channel: channel.into(),
            status: status.into(),
            sequence: n.sequence,
            request_id: request_id.to_owned(),
            detail: detail.to_owned(),
            uncounted_push_bytes: 0,
        };
        let key = if target.device.is_empty() {
            &target.msisdn
        } else {
            &target.device
        };
        let record = encode(topics::DELIVERY, key, &context, &receipt);
        match TAILS.try_with(Arc::clone) {
            Ok(tails) => {
                let publish = tokio::spawn(pushmail_common::bus::publish_receipt(
                    self.bus.clone(),
                    record,
                    "dispatch",
                ));
                tails
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(publish);
                Ok(())
            }
            // Outside a consumer lane (the digest loop): published in line.
            Err(_) => self
                .bus
                .publish(topics::DELIVERY.name(), record)
                .await
                .map(drop)
                .map_err(transient),
        }
    }

    /// Sends what quiet hours held, one digest per collapse key.
    pub async fn digest(&self, due: &crate::state::Due) -> Result<(), Failure> {
        for (held, count) in &due.digests {
            let mut n = held.clone();
            n.idempotency_key = format!("digest:{}:{}", due.until_ms, n.collapse_key);
            n.digest_count = *count;
            let target = Target {
                tenant: due.tenant.clone(),
                account: n.account_id.clone(),
                device: due.device.clone(),
                // The digest goes to the device's connection or outbox; the
                // SMS wake-up needs the number, which binding knows.
                msisdn: self
                    .msisdn_of(&due.tenant, &n.account_id, &due.device)
                    .await?,
                push_client: true,
                policy: Arc::new(Policy::new(None)),
            };
            self.send(&target, n).await?;
        }
        Ok(())
    }

    async fn msisdn_of(
        &self,
        tenant: &str,
        account: &str,
        device: &str,
    ) -> Result<String, Failure> {
        match self.targets(tenant, account).await {
            Ok(targets) => Ok(targets
                .into_iter()
                .find(|t| t.device == device)
                .map(|t| t.msisdn)
                .unwrap_or_default()),
            Err(Failure::Permanent(_)) => Ok(String::new()),
            Err(err) => Err(err),
        }
    }

    /// Gives up on a record: the dead-letter topic, with why.
    async fn dead_letter(
        &self,
        record: &InboundRecord,
        reason: &str,
        attempts: u32,
    ) -> Result<(), HandlerError> {
        metrics::counter!("pushmail_dispatch_dead_letters_total").increment(1);
        pushmail_common::bus::dead_letter(self.bus.as_ref(), record, reason, attempts)
            .await
            .map_err(HandlerError::new)
    }
}

/// The event's tenant, when it names an account and a key too; without
/// them it is unusable (a dead letter), whether a mail or a mailbox sync.
fn tenant_of(event: &events::MailArrived) -> Result<String, Failure> {
    let tenant = event
        .meta
        .as_ref()
        .map(|m| m.tenant_id.clone())
        .unwrap_or_default();
    if tenant.is_empty() || event.account_id.is_empty() || event.idempotency_key.is_empty() {
        return Err(Failure::Permanent(
            "the event has no tenant, account or idempotency key".to_owned(),
        ));
    }
    Ok(tenant)
}

/// The mail's W3C traceparent, for the device's support reports.
fn traceparent(event: &events::MailArrived) -> String {
    event
        .meta
        .as_ref()
        .map(|m| m.traceparent.clone())
        .unwrap_or_default()
}

fn display(address: &pushmail_proto::common::v1::Address) -> String {
    if address.name.is_empty() {
        address.address.clone()
    } else {
        address.name.clone()
    }
}

#[async_trait]
impl Handler for Dispatcher {
    async fn handle_pipelined(
        &self,
        record: &InboundRecord,
    ) -> Result<Option<pushmail_common::bus::Tail>, HandlerError> {
        let tails = Tails::default();
        TAILS.scope(tails.clone(), self.handle(record)).await?;
        let publishes = std::mem::take(
            &mut *tails
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if publishes.is_empty() {
            return Ok(None);
        }
        Ok(Some(Box::pin(async move {
            for publish in publishes {
                let _ = publish.await;
            }
        })))
    }

    async fn handle(&self, record: &InboundRecord) -> Result<(), HandlerError> {
        let event = match decode(topics::MAIL_ARRIVED, record) {
            Ok(event) => event,
            Err(err) => {
                return self
                    .dead_letter(record, &format!("undecodable: {err}"), 1)
                    .await;
            }
        };
        let backoff = Backoff::new(
            Duration::from_millis(self.delivery.retry_initial_ms),
            Duration::from_millis(self.delivery.retry_max_ms),
        );
        let mut attempt = 1;
        loop {
            match self.dispatch(&event).await {
                Ok(()) => {
                    metrics::counter!("pushmail_dispatch_mails_total").increment(1);
                    return Ok(());
                }
                Err(Failure::Permanent(reason)) => {
                    return self.dead_letter(record, &reason, attempt).await;
                }
                Err(Failure::Transient(reason)) if attempt >= self.delivery.attempts => {
                    return self
                        .dead_letter(
                            record,
                            &format!("gave up after {attempt} attempts: {reason}"),
                            attempt,
                        )
                        .await;
                }
                Err(Failure::Transient(reason)) => {
                    tracing::warn!(record = %record.coordinates(), attempt, reason, "dispatch failed; retrying");
                    tokio::time::sleep(backoff.delay(attempt)).await;
                    attempt += 1;
                }
            }
        }
    }
}
