//! Dispatch as a consumer of `MailArrived` and `MailboxChanged`: decode at
//! the edge, retry what is worth retrying with the one backoff,
//! dead-letter the rest.

use std::time::Duration;

use async_trait::async_trait;
use pushmail_common::backoff::Backoff;
use pushmail_common::bus::{Handler, HandlerError, InboundRecord, Tail, decode};
use pushmail_common::report::Report;
use pushmail_proto::topics;

use super::Dispatcher;
use crate::domain::Arrival;
use crate::receipts::Receipts;

impl Dispatcher {
    /// Handles one record, its receipts going to `receipts`.
    async fn handle_with(
        &self,
        record: &InboundRecord,
        receipts: &Receipts,
    ) -> Result<(), HandlerError> {
        let arrivals = match arrivals(record) {
            Ok(arrivals) => arrivals,
            Err(reason) => return self.dead_letter(record, &reason, 1).await,
        };
        for arrival in &arrivals {
            self.deliver(record, arrival, receipts).await?;
        }
        Ok(())
    }

    /// Dispatches one arrival, retrying; dead-letters it when that fails.
    async fn deliver(
        &self,
        record: &InboundRecord,
        arrival: &Arrival,
        receipts: &Receipts,
    ) -> Result<(), HandlerError> {
        let backoff = Backoff::new(
            Duration::from_millis(self.delivery.retry_initial_ms),
            Duration::from_millis(self.delivery.retry_max_ms),
        );
        let mut attempt = 1;
        loop {
            match self.dispatch(arrival, receipts).await {
                Ok(()) => {
                    metrics::counter!("pushmail_dispatch_mails_total").increment(1);
                    return Ok(());
                }
                Err(failure) if failure.is_permanent() => {
                    let reason = Report(&failure).to_string();
                    return self.dead_letter(record, &reason, attempt).await;
                }
                Err(failure) if attempt >= self.delivery.attempts => {
                    let reason = format!("gave up after {attempt} attempts: {}", Report(&failure));
                    return self.dead_letter(record, &reason, attempt).await;
                }
                Err(failure) => {
                    tracing::warn!(record = %record.coordinates(), attempt, error = %Report(&failure), "dispatch failed; retrying");
                    tokio::time::sleep(backoff.delay(attempt)).await;
                    attempt += 1;
                }
            }
        }
    }
}

/// What a record asks of dispatch, or why it is unusable.
fn arrivals(record: &InboundRecord) -> Result<Vec<Arrival>, String> {
    if record.topic == topics::MAILBOX_CHANGED.name() {
        let event = decode(topics::MAILBOX_CHANGED, record)
            .map_err(|err| format!("undecodable: {}", Report(&err)))?;
        return crate::domain::changed(&event).map_err(|err| format!("unusable: {}", Report(&err)));
    }
    let event = decode(topics::MAIL_ARRIVED, record)
        .map_err(|err| format!("undecodable: {}", Report(&err)))?;
    if event.backfill {
        // Old mail filed for the phone to read (a POP3 account's first
        // poll): not new, so no phone is told and no SMS is sent.
        return Ok(Vec::new());
    }
    let arrival = Arrival::try_from(&event).map_err(|err| format!("unusable: {}", Report(&err)))?;
    Ok(vec![arrival])
}

impl Dispatcher {
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

#[async_trait]
impl Handler for Dispatcher {
    /// The lane goes on to the account's next mail while this mail's
    /// receipts publish; the mail is committed after them.
    async fn handle_pipelined(&self, record: &InboundRecord) -> Result<Option<Tail>, HandlerError> {
        let receipts = Receipts::pipelined(self.bus.clone());
        self.handle_with(record, &receipts).await?;
        Ok(receipts.into_tail())
    }

    async fn handle(&self, record: &InboundRecord) -> Result<(), HandlerError> {
        self.handle_with(record, &Receipts::inline(self.bus.clone()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use pushmail_common::bus::{EventContext, encode};
    use pushmail_proto::events::v1 as events;

    use super::*;

    fn record(event: &events::MailArrived) -> InboundRecord {
        let out = encode(
            topics::MAIL_ARRIVED,
            &event.account_id,
            &EventContext::new("t1".to_owned()),
            event,
        );
        InboundRecord {
            topic: topics::MAIL_ARRIVED.name().to_owned(),
            partition: 0,
            offset: 1,
            key: out.key,
            payload: out.payload,
            headers: out.headers,
            timestamp_ms: None,
        }
    }

    #[test]
    fn backfilled_mail_is_filed_but_never_dispatched() {
        let mail = events::MailArrived {
            meta: Some(EventContext::new("t1".to_owned()).meta(1_000)),
            account_id: "a1".to_owned(),
            mailbox: "INBOX".to_owned(),
            idempotency_key: "mid:a1:x@y".to_owned(),
            ..Default::default()
        };
        assert_eq!(arrivals(&record(&mail)).unwrap().len(), 1, "new mail");
        let old = events::MailArrived {
            backfill: true,
            ..mail
        };
        assert!(arrivals(&record(&old)).unwrap().is_empty());
    }
}
