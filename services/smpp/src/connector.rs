//! From `pushmail.sms.outbound.v1` to submit_sm, and from the SMS
//! centres' receipts back to `pushmail.delivery.v1`.
//!
//! A record is committed once every segment was accepted by an SMS centre
//! (or the message was given up on with a FAILED receipt). Segments are
//! recorded as they are accepted, so a redelivered record resumes where a
//! crash or a lost link stopped instead of sending the first parts again;
//! the one window left is a crash between the SMS centre's answer and that
//! record, which re-sends one segment (at least once, never lost).

use std::hash::{Hash as _, Hasher as _};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pushmail_common::bus::{self, EventBus, EventContext, Handler, HandlerError, InboundRecord};
use pushmail_common::clock::now_ms;
use pushmail_proto::events::v1::{
    self as events, DeliveryChannel, DeliveryStatus, SmsDataCoding, SmsOutbound, SmsPurpose,
    sms_outbound,
};
use pushmail_proto::topics;
use pushmail_sms_encoding::{self as sms, Coding, Segment};
use smpp34::SmppError;
use tokio::sync::{Semaphore, mpsc};

use crate::link::{Link, SubmitError, Unavailable};
use crate::pdu::{self, Address, Submit, data_coding};
use crate::receipt::{self, Receipt};
use crate::session::Inbound;
use crate::state::{Expected, Store};

/// Records handled, by outcome.
pub(crate) const METRIC_MESSAGES: &str = "pushmail_smpp_messages_total";
/// Receipts from SMS centres, by outcome.
pub(crate) const METRIC_RECEIPTS: &str = "pushmail_smpp_receipts_total";

/// Receipts handled at once.
const RECEIPT_CONCURRENCY: usize = 64;

/// The SMS centres by the numbers they serve.
#[derive(Debug, Default)]
pub(crate) struct Routes {
    links: Vec<(Vec<String>, Arc<Link>)>,
}

impl Routes {
    /// Adds an SMS centre serving `prefixes` (none: the default route).
    pub(crate) fn add(&mut self, prefixes: Vec<String>, link: Arc<Link>) {
        self.links.push((prefixes, link));
    }

    /// Every link.
    pub(crate) fn links(&self) -> impl Iterator<Item = &Arc<Link>> {
        self.links.iter().map(|(_, link)| link)
    }

    /// The link with the longest prefix of `msisdn`, else the first default one.
    pub(crate) fn route(&self, msisdn: &str) -> Option<&Arc<Link>> {
        self.links
            .iter()
            .filter_map(|(prefixes, link)| {
                prefixes
                    .iter()
                    .filter(|p| msisdn.starts_with(p.as_str()))
                    .map(String::len)
                    .max()
                    .map(|len| (len, link))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, link)| link)
            .or_else(|| {
                self.links
                    .iter()
                    .find(|(prefixes, _)| prefixes.is_empty())
                    .map(|(_, link)| link)
            })
    }
}

/// The consumer of `pushmail.sms.outbound.v1` and the receipts' publisher.
pub(crate) struct Connector {
    /// Receipts and dead letters go here.
    pub(crate) bus: Arc<dyn EventBus>,
    /// The SMS centres.
    pub(crate) routes: Routes,
    /// Progress and awaited receipts.
    pub(crate) store: Arc<dyn Store>,
    /// How long progress and receipt mappings are kept.
    pub(crate) ttl: Duration,
}

/// What became of one record.
enum Outcome {
    Submitted { smsc: String, message_id: String },
    Failed(Undeliverable),
}

/// Why an SMS is given up (a `FAILED` receipt, not a retry).
#[derive(Debug, thiserror::Error)]
enum Undeliverable {
    #[error("expired before the SMS centre took it")]
    Expired,
    #[error(transparent)]
    Unsendable(#[from] Unsendable),
    #[error("no SMS centre serves this number")]
    NoRoute,
    #[error(transparent)]
    Refused(SubmitError),
}

#[async_trait]
impl Handler for Connector {
    async fn handle(&self, record: &InboundRecord) -> Result<(), HandlerError> {
        let sms = match bus::decode(topics::SMS_OUTBOUND, record) {
            Ok(sms) => sms,
            Err(err) => {
                let reason = pushmail_common::report::Report(&err).to_string();
                return self.dead_letter(record, &reason).await;
            }
        };
        let request = if sms.request_id.is_empty() {
            record.coordinates()
        } else {
            sms.request_id.clone()
        };
        let progress = self
            .store
            .progress(&request)
            .await
            .map_err(HandlerError::new)?;
        if progress.finished {
            metrics::counter!(METRIC_MESSAGES, "outcome" => "duplicate").increment(1);
            return Ok(());
        }
        let outcome = match self.submit(&sms, &request, &progress.submitted).await {
            Ok(outcome) => outcome,
            Err(unavailable) => {
                let error = pushmail_common::report::Report(&unavailable);
                tracing::warn!(request = %request, %error, "SMS not submitted yet; will retry");
                return Err(HandlerError::new(unavailable));
            }
        };
        let tenant = tenant_of(&sms, record);
        match &outcome {
            Outcome::Submitted { smsc, message_id } => {
                let expected = Expected {
                    tenant: tenant.clone(),
                    request_id: request.clone(),
                    device_id: sms.device_id.clone(),
                    account_id: sms.account_id.clone(),
                    purpose: sms.purpose,
                };
                self.store
                    .expect(smsc, message_id, &expected, self.ttl)
                    .await
                    .map_err(HandlerError::new)?;
                let detail = format!("submitted to {smsc} as {message_id}");
                self.publish_receipt(&expected, DeliveryStatus::SmsSubmitted, &detail)
                    .await?;
                metrics::counter!(METRIC_MESSAGES, "outcome" => "submitted").increment(1);
            }
            Outcome::Failed(why) => {
                let reason = pushmail_common::report::Report(why).to_string();
                tracing::warn!(request = %request, reason, "SMS given up");
                let expected = Expected {
                    tenant,
                    request_id: request.clone(),
                    device_id: sms.device_id.clone(),
                    account_id: sms.account_id.clone(),
                    purpose: sms.purpose,
                };
                self.publish_receipt(&expected, DeliveryStatus::Failed, &reason)
                    .await?;
                metrics::counter!(METRIC_MESSAGES, "outcome" => "failed").increment(1);
            }
        }
        self.store
            .finished(&request, self.ttl)
            .await
            .map_err(HandlerError::new)
    }
}

impl Connector {
    /// Submits what is left of `sms`; `Err` when it should be retried.
    async fn submit(
        &self,
        sms: &SmsOutbound,
        request: &str,
        done: &std::collections::BTreeMap<u32, String>,
    ) -> Result<Outcome, SubmitError> {
        let expires_at = sms
            .expires_at
            .as_ref()
            .and_then(|t| jiff::Timestamp::new(t.seconds, 0).ok());
        if expires_at.is_some_and(|at| at.as_millisecond() <= now_ms()) {
            return Ok(Outcome::Failed(Undeliverable::Expired));
        }
        let segments = match segments_of(sms, request) {
            Ok(segments) => segments,
            Err(err) => return Ok(Outcome::Failed(err.into())),
        };
        let Some(link) = self.routes.route(&sms.msisdn) else {
            return Ok(Outcome::Failed(Undeliverable::NoRoute));
        };
        let validity = expires_at.map(pdu::absolute_time).unwrap_or_default();
        let mut message_id = String::new();
        let count = segments.len();
        for (index, segment) in (0u32..).zip(&segments) {
            if let Some(id) = done.get(&index) {
                message_id.clone_from(id);
                continue;
            }
            let last = index as usize + 1 == count;
            let message = submit_sm(link.source(), &sms.msisdn, segment, last, &validity);
            match link.submit(&message).await {
                Ok(id) => {
                    self.store
                        .submitted(request, index, &id, self.ttl)
                        .await
                        .map_err(|e| link.unavailable(Unavailable::State(e)))?;
                    message_id = id;
                }
                Err(err @ SubmitError::Unavailable { .. }) => return Err(err),
                Err(refused) => return Ok(Outcome::Failed(Undeliverable::Refused(refused))),
            }
        }
        Ok(Outcome::Submitted {
            smsc: link.name().to_owned(),
            message_id,
        })
    }

    async fn publish_receipt(
        &self,
        expected: &Expected,
        status: DeliveryStatus,
        detail: &str,
    ) -> Result<(), HandlerError> {
        let context = EventContext::new(expected.tenant.clone());
        let channel = match SmsPurpose::try_from(expected.purpose) {
            Ok(SmsPurpose::WakeUp) => DeliveryChannel::SmsWakeUp,
            Ok(SmsPurpose::Notice) => DeliveryChannel::SmsNotice,
            _ => DeliveryChannel::Unspecified,
        };
        let receipt = events::DeliveryReceipt {
            meta: Some(context.meta(now_ms())),
            device_id: expected.device_id.clone(),
            account_id: expected.account_id.clone(),
            idempotency_key: String::new(),
            channel: channel.into(),
            status: status.into(),
            sequence: 0,
            request_id: expected.request_id.clone(),
            detail: detail.to_owned(),
            uncounted_push_bytes: 0,
        };
        let key = if expected.device_id.is_empty() {
            &expected.account_id
        } else {
            &expected.device_id
        };
        self.bus
            .publish(
                topics::DELIVERY.name(),
                bus::encode(topics::DELIVERY, key, &context, &receipt),
            )
            .await
            .map(drop)
            .map_err(HandlerError::new)
    }

    /// An unreadable record goes to the dead-letter topic whole.
    async fn dead_letter(&self, record: &InboundRecord, reason: &str) -> Result<(), HandlerError> {
        metrics::counter!(METRIC_MESSAGES, "outcome" => "dead_letter").increment(1);
        bus::dead_letter(self.bus.as_ref(), record, reason, 1)
            .await
            .map_err(HandlerError::new)
    }

    /// Answers the SMS centres' deliver_sm until every link is gone.
    pub(crate) async fn receipts(self: Arc<Self>, mut inbound: mpsc::Receiver<Inbound>) {
        let slots = Arc::new(Semaphore::new(RECEIPT_CONCURRENCY));
        while let Some(item) = inbound.recv().await {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let connector = self.clone();
            tokio::spawn(async move {
                let answer = connector.on_deliver(&item).await;
                item.session.answer(item.sequence, answer).await;
                drop(slot);
            });
        }
    }

    /// Handles one deliver_sm: the status to answer it with.
    async fn on_deliver(&self, item: &Inbound) -> SmppError {
        let smsc = item.session.name();
        let message = match &item.message {
            Ok(message) => message,
            Err(err) => {
                tracing::warn!(smsc, error = %pushmail_common::report::Report(err), "unreadable deliver_sm refused");
                metrics::counter!(METRIC_RECEIPTS, "outcome" => "malformed").increment(1);
                return SmppError::ESME_RX_P_APPN;
            }
        };
        let receipt = match receipt::parse(message) {
            Ok(Some(receipt)) => receipt,
            Ok(None) => {
                // Replies to pushmail's sender are not a feature; say so once per message.
                tracing::info!(smsc, "mobile-originated SMS ignored");
                metrics::counter!(METRIC_RECEIPTS, "outcome" => "mobile_originated").increment(1);
                return SmppError::ESME_ROK;
            }
            Err(err) => {
                tracing::warn!(smsc, error = %pushmail_common::report::Report(&err), "unreadable delivery receipt refused");
                metrics::counter!(METRIC_RECEIPTS, "outcome" => "malformed").increment(1);
                return SmppError::ESME_RX_P_APPN;
            }
        };
        match self.on_receipt(smsc, &receipt).await {
            Ok(outcome) => {
                metrics::counter!(METRIC_RECEIPTS, "outcome" => outcome).increment(1);
                SmppError::ESME_ROK
            }
            Err(err) => {
                // The SMS centre offers it again later; nothing is lost.
                tracing::warn!(smsc, error = %pushmail_common::report::Report(&err), "receipt not recorded yet");
                SmppError::ESME_RX_T_APPN
            }
        }
    }

    async fn on_receipt(
        &self,
        smsc: &str,
        receipt: &Receipt,
    ) -> Result<&'static str, HandlerError> {
        let mut found = None;
        for id in std::iter::once(receipt.message_id.clone())
            .chain(receipt::alternative_ids(&receipt.message_id))
        {
            if let Some(expected) = self
                .store
                .receipt(smsc, &id)
                .await
                .map_err(HandlerError::new)?
            {
                found = Some((id, expected));
                break;
            }
        }
        let Some((id, expected)) = found else {
            return Ok("unmatched");
        };
        if !receipt.state.is_final() {
            return Ok("intermediate");
        }
        let (status, outcome) = if receipt.state.is_delivered() {
            (DeliveryStatus::SmsDelivered, "delivered")
        } else {
            (DeliveryStatus::Failed, "failed")
        };
        let detail = match &receipt.error {
            Some(error) => format!("{} from {smsc} (error {error})", receipt.state.word()),
            None => format!("{} from {smsc}", receipt.state.word()),
        };
        self.publish_receipt(&expected, status, &detail).await?;
        self.store
            .forget(smsc, &id)
            .await
            .map_err(HandlerError::new)?;
        Ok(outcome)
    }
}

fn tenant_of(sms: &SmsOutbound, record: &InboundRecord) -> String {
    sms.meta
        .as_ref()
        .map(|m| m.tenant_id.clone())
        .filter(|t| !t.is_empty())
        .or_else(|| record.headers.get(bus::header::TENANT_ID).cloned())
        .unwrap_or_default()
}

/// Why an SMS cannot be put into segments.
#[derive(Debug, thiserror::Error)]
enum Unsendable {
    /// A segment's data coding is none this connector knows (a newer sender).
    #[error("segment data coding {0} is unknown")]
    UnknownCoding(i32),
    /// Neither text nor a WAP Push PDU.
    #[error("the SMS has no body")]
    NoBody,
}

/// The segments to submit: as the sender split them, or split here.
fn segments_of(sms: &SmsOutbound, request: &str) -> Result<Vec<Segment>, Unsendable> {
    if !sms.segments.is_empty() {
        return sms
            .segments
            .iter()
            .map(|s| {
                let coding = match SmsDataCoding::try_from(s.data_coding) {
                    Ok(SmsDataCoding::Gsm7) => Coding::Gsm7,
                    Ok(SmsDataCoding::Ucs2) => Coding::Ucs2,
                    Ok(SmsDataCoding::Binary) => Coding::Binary,
                    _ => return Err(Unsendable::UnknownCoding(s.data_coding)),
                };
                Ok(Segment {
                    coding,
                    udh: s.user_data_header.clone(),
                    user_data: s.user_data.clone(),
                })
            })
            .collect();
    }
    // The concatenation reference must not change when a retry re-splits.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    request.hash(&mut hasher);
    let reference = hasher.finish().to_le_bytes()[0];
    match &sms.body {
        Some(sms_outbound::Body::Text(text)) if !text.is_empty() => {
            Ok(sms::text::segments(text, reference))
        }
        Some(sms_outbound::Body::WapPushPdu(pdu)) if !pdu.is_empty() => {
            Ok(sms::wap::segments(pdu, reference))
        }
        _ => Err(Unsendable::NoBody),
    }
}

/// One segment as a submit_sm to `msisdn` (E.164 with '+').
fn submit_sm(
    source: &Address,
    msisdn: &str,
    segment: &Segment,
    last: bool,
    validity: &str,
) -> Submit {
    let mut short_message = Vec::with_capacity(segment.udh.len() + segment.user_data.len());
    short_message.extend_from_slice(&segment.udh);
    short_message.extend_from_slice(&segment.user_data);
    Submit {
        source: source.clone(),
        destination: Address {
            ton: 1, // international
            npi: 1, // E.164
            addr: msisdn.trim_start_matches('+').to_owned(),
        },
        esm_class: if segment.udh.is_empty() {
            0
        } else {
            pdu::ESM_UDHI
        },
        validity_period: validity.to_owned(),
        // One receipt per message: the last part's, which arrives last.
        registered_delivery: if last {
            pdu::REGISTERED_DELIVERY_FINAL
        } else {
            0
        },
        data_coding: match segment.coding {
            Coding::Gsm7 => data_coding::DEFAULT,
            Coding::Ucs2 => data_coding::UCS2,
            Coding::Binary => data_coding::BINARY,
        },
        short_message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SmscConfig;

    fn link(name: &str) -> Arc<Link> {
        let config = SmscConfig {
            name: name.to_owned(),
            ..SmscConfig::default()
        };
        Arc::new(Link::new(&config, Duration::from_millis(10)))
    }

    #[test]
    fn the_longest_prefix_wins_and_the_default_takes_the_rest() {
        let mut routes = Routes::default();
        routes.add(vec!["+86".into()], link("china"));
        routes.add(vec!["+86138".into(), "+86139".into()], link("cmcc"));
        routes.add(Vec::new(), link("world"));
        let name = |msisdn: &str| routes.route(msisdn).map(|l| l.name().to_owned());
        assert_eq!(name("+8613800138000").as_deref(), Some("cmcc"));
        assert_eq!(name("+8618600000000").as_deref(), Some("china"));
        assert_eq!(name("+447700900000").as_deref(), Some("world"));
        let mut only_china = Routes::default();
        only_china.add(vec!["+86".into()], link("china"));
        assert!(only_china.route("+447700900000").is_none());
    }

    #[test]
    fn text_is_split_with_a_stable_reference_and_wap_push_goes_binary() {
        let sms = SmsOutbound {
            body: Some(sms_outbound::Body::Text("验证码".repeat(30))),
            ..SmsOutbound::default()
        };
        let first = segments_of(&sms, "req-1").unwrap();
        assert_eq!(first, segments_of(&sms, "req-1").unwrap());
        assert_eq!(first.len(), 2);
        let message = submit_sm(&Address::default(), "+8613800138000", &first[1], true, "");
        assert_eq!(message.destination.addr, "8613800138000");
        assert_eq!(
            (message.esm_class, message.data_coding),
            (pdu::ESM_UDHI, data_coding::UCS2)
        );
        assert_eq!(message.registered_delivery, pdu::REGISTERED_DELIVERY_FINAL);
        let wap = SmsOutbound {
            body: Some(sms_outbound::Body::WapPushPdu(vec![1, 6, 4, 0xAE])),
            ..SmsOutbound::default()
        };
        let segments = segments_of(&wap, "req-2").unwrap();
        assert_eq!(segments[0].coding, Coding::Binary);
        assert!(segments_of(&SmsOutbound::default(), "req-3").is_err());
    }
}
