//! From a received message to a published `MailArrived`: the raw message
//! into the blob store (content-addressed), then the event, keyed by
//! account so one account's mail stays in order. A caller advances its
//! high-water mark (or answers 250) only after [`Announcer::announce`]
//! returned: the event is durable by then.

use std::sync::Arc;

use pushmail_common::blob::{BlobError, BlobRef, BlobStore};
use pushmail_common::bus::{self, BusError, EventBus, EventContext};
use pushmail_common::clock::timestamp;
use pushmail_proto::common::v1 as common;
use pushmail_proto::events::v1 as events;
use pushmail_proto::topics::MAIL_ARRIVED;
use sha2::Digest as _;

use crate::mail::{Limits, MailAddress, ParseError, ParsedMail, parse};

/// How the mail was learned about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// An IMAP IDLE watcher.
    Imap,
    /// A POP3 poller.
    Pop3,
    /// The SMTP receiver.
    Smtp,
    /// The LMTP receiver.
    Lmtp,
    /// The webhook.
    Webhook,
}

/// Where a message was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// Owner.
    pub tenant: String,
    /// Account.
    pub account: String,
    /// Mailbox (`INBOX` for POP3, SMTP and LMTP).
    pub mailbox: String,
    /// IMAP UIDVALIDITY, 0 where there is none.
    pub uid_validity: u32,
    /// IMAP UID, 0 where there is none.
    pub uid: u32,
    /// How.
    pub source: Source,
    /// When, ms since the epoch.
    pub received_at_ms: i64,
    /// The message's real size when only its header section is passed
    /// (too large to fetch whole); `None` when the bytes are the message.
    pub full_size: Option<u64>,
    /// Where a relayed mail came from (the credential, certificate or
    /// network that authorised it, `smtp::Origin::key`); `None` for mail
    /// read from a mailbox, whose coordinates or single source identify it.
    pub origin: Option<String>,
}

/// Why a message was not announced.
#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    /// The bytes are not a message; retrying will not help.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The blob store refused it; retry later.
    #[error("blob store: {0}")]
    Blob(#[from] BlobError),
    /// The event could not be published; retry later (nothing is lost:
    /// the caller has not advanced its mark).
    #[error("event bus: {0}")]
    Bus(#[from] BusError),
}

impl AnnounceError {
    /// Whether trying again later may succeed (4xx in SMTP terms).
    pub fn is_transient(&self) -> bool {
        !matches!(self, Self::Parse(_))
    }
}

/// The key every consumer and the phone dedupe on: the IMAP coordinates
/// when there are some, else the Message-ID, else the content itself. A
/// relayed mail's key includes its origin: the same Message-ID from
/// another source is another mail (whoever sends first must not make the
/// genuine mail look like a duplicate), while a sender's retry, from the
/// same origin, dedupes.
pub fn idempotency_key(arrival: &Arrival, message_id: Option<&str>, blob: &BlobRef) -> String {
    if arrival.uid != 0 {
        return format!(
            "imap:{}:{}:{}:{}",
            arrival.account, arrival.mailbox, arrival.uid_validity, arrival.uid
        );
    }
    let origin = arrival.origin.as_deref();
    match (message_id.filter(|id| !id.trim().is_empty()), origin) {
        (Some(id), None) => format!(
            "mid:{}:{}",
            arrival.account,
            hex::encode(sha2::Sha256::digest(id.trim().as_bytes()))
        ),
        (Some(id), Some(origin)) => {
            let mut digest = sha2::Sha256::new();
            digest.update(origin.as_bytes());
            digest.update([0]);
            digest.update(id.trim().as_bytes());
            format!("mid:{}:{}", arrival.account, hex::encode(digest.finalize()))
        }
        (None, None) => format!("blob:{}:{}", arrival.account, blob.as_str()),
        (None, Some(origin)) => format!(
            "blob:{}:{}:{}",
            arrival.account,
            &hex::encode(sha2::Sha256::digest(origin.as_bytes()))[..16],
            blob.as_str()
        ),
    }
}

/// Stores and announces messages.
#[derive(Clone)]
pub struct Announcer {
    bus: Arc<dyn EventBus>,
    blobs: Arc<dyn BlobStore>,
    limits: Limits,
}

impl std::fmt::Debug for Announcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announcer")
            .field("limits", &self.limits)
            .finish()
    }
}

impl Announcer {
    /// Over `bus` and `blobs`.
    pub fn new(bus: Arc<dyn EventBus>, blobs: Arc<dyn BlobStore>, limits: Limits) -> Self {
        Self { bus, blobs, limits }
    }

    /// Parses, stores and publishes; returns the event once it is durable.
    pub async fn announce(
        &self,
        arrival: &Arrival,
        raw: &[u8],
    ) -> Result<events::MailArrived, AnnounceError> {
        let stored = self.store(raw).await?;
        self.publish(arrival, &stored).await
    }

    /// Parses and stores a message once, for several recipients.
    pub async fn store(&self, raw: &[u8]) -> Result<Stored, AnnounceError> {
        let parsed = parse(raw, &self.limits)?;
        let blob = self.blobs.put(raw).await?;
        Ok(Stored { parsed, blob })
    }

    /// Publishes a stored message's event for one arrival; returns it once
    /// it is durable.
    pub async fn publish(
        &self,
        arrival: &Arrival,
        stored: &Stored,
    ) -> Result<events::MailArrived, AnnounceError> {
        self.grant_and_emit(arrival, stored, false).await
    }

    /// Publishes mail that was in the mailbox before the platform watched
    /// it (`MailArrived.backfill`): filed for the phone to read, announced
    /// to none. Its key is the one a fresh announcement of the same mail
    /// would have, so a later repeat files nothing twice.
    pub async fn announce_backfill(
        &self,
        arrival: &Arrival,
        raw: &[u8],
    ) -> Result<events::MailArrived, AnnounceError> {
        let stored = self.store(raw).await?;
        self.grant_and_emit(arrival, &stored, true).await
    }

    async fn grant_and_emit(
        &self,
        arrival: &Arrival,
        stored: &Stored,
        backfill: bool,
    ) -> Result<events::MailArrived, AnnounceError> {
        // Granted before the event exists, so no device is told of a
        // message it cannot fetch.
        self.blobs
            .grant(
                &pushmail_common::blob::owner(&arrival.tenant, &arrival.account),
                &stored.blob,
            )
            .await?;
        let mut event = mail_arrived(arrival, &stored.parsed, &stored.blob);
        event.backfill = backfill;
        self.emit(&arrival.tenant, event).await
    }

    /// Tells the account's devices to sync `mailbox`, which ingest could
    /// not follow (see `MailArrived.mailbox_sync`); returns once durable.
    pub(crate) async fn announce_sync(
        &self,
        tenant: &str,
        account: &str,
        mailbox: &str,
        from: Source,
    ) -> Result<events::MailArrived, AnnounceError> {
        let now = pushmail_common::clock::now_ms();
        let context = EventContext::new(tenant.to_owned());
        let event = events::MailArrived {
            meta: Some(context.meta(now)),
            account_id: account.to_owned(),
            mailbox: mailbox.to_owned(),
            idempotency_key: format!("sync:{account}:{mailbox}:{now}"),
            received_at: Some(timestamp(now)),
            source: source(from).into(),
            mailbox_sync: true,
            ..events::MailArrived::default()
        };
        self.emit(tenant, event).await
    }

    async fn emit(
        &self,
        tenant: &str,
        event: events::MailArrived,
    ) -> Result<events::MailArrived, AnnounceError> {
        let context = EventContext {
            event_id: event
                .meta
                .as_ref()
                .map(|m| m.event_id.clone())
                .unwrap_or_default(),
            tenant_id: tenant.to_owned(),
        };
        let record = bus::encode(MAIL_ARRIVED, &event.account_id, &context, &event);
        self.bus.publish(MAIL_ARRIVED.name(), record).await?;
        Ok(event)
    }
}

fn source(from: Source) -> events::IngestSource {
    match from {
        Source::Imap => events::IngestSource::Imap,
        Source::Pop3 => events::IngestSource::Pop3,
        Source::Smtp => events::IngestSource::Smtp,
        Source::Lmtp => events::IngestSource::Lmtp,
        Source::Webhook => events::IngestSource::Webhook,
    }
}

/// A message parsed and in the blob store.
#[derive(Debug, Clone)]
pub struct Stored {
    /// What the push needs.
    pub parsed: ParsedMail,
    /// Where the raw bytes are.
    pub blob: BlobRef,
}

fn address(address: &MailAddress) -> common::Address {
    common::Address {
        name: address.name.clone(),
        address: address.address.clone(),
    }
}

/// The event for a parsed message (protobuf built here, at the edge).
pub(crate) fn mail_arrived(
    arrival: &Arrival,
    parsed: &ParsedMail,
    blob: &BlobRef,
) -> events::MailArrived {
    let context = EventContext::new(arrival.tenant.clone());
    events::MailArrived {
        meta: Some(context.meta(arrival.received_at_ms)),
        account_id: arrival.account.clone(),
        mailbox: arrival.mailbox.clone(),
        uid_validity: arrival.uid_validity,
        uid: arrival.uid,
        message_id: parsed.message_id.clone().unwrap_or_default(),
        idempotency_key: idempotency_key(arrival, parsed.message_id.as_deref(), blob),
        summary: Some(events::MailSummary {
            from: parsed.from.as_ref().map(address),
            to: parsed.to.iter().map(address).collect(),
            subject: parsed.subject.clone(),
            snippet: parsed.snippet.clone(),
        }),
        size_bytes: arrival.full_size.unwrap_or(parsed.size_bytes),
        attachments: parsed
            .attachments
            .iter()
            .map(|a| common::Attachment {
                part_id: a.part_id.clone(),
                file_name: a.file_name.clone(),
                content_type: a.content_type.clone(),
                size_bytes: a.size_bytes,
            })
            .collect(),
        blob_ref: blob.as_str().to_owned(),
        received_at: Some(timestamp(arrival.received_at_ms)),
        source: source(arrival.source).into(),
        mailbox_sync: false,
        backfill: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival(uid: u32) -> Arrival {
        Arrival {
            tenant: "t".into(),
            account: "a".into(),
            mailbox: "INBOX".into(),
            uid_validity: if uid == 0 { 0 } else { 7 },
            uid,
            source: if uid == 0 { Source::Smtp } else { Source::Imap },
            received_at_ms: 1_000,
            full_size: None,
            origin: None,
        }
    }

    #[test]
    fn keys_prefer_imap_coordinates_then_message_id_then_content() {
        let blob = BlobRef::of(b"raw");
        assert_eq!(
            idempotency_key(&arrival(42), Some("<x@y>"), &blob),
            "imap:a:INBOX:7:42"
        );
        let by_id = idempotency_key(&arrival(0), Some("x@y"), &blob);
        assert!(by_id.starts_with("mid:a:"), "{by_id}");
        assert_eq!(
            by_id,
            idempotency_key(&arrival(0), Some(" x@y "), &BlobRef::of(b"other")),
            "a resend dedupes"
        );
        assert_eq!(
            idempotency_key(&arrival(0), None, &blob),
            format!("blob:a:{}", blob.as_str())
        );
    }

    #[test]
    fn a_message_id_from_another_origin_is_another_mail() {
        let blob = BlobRef::of(b"raw");
        let from = |origin: &str| Arrival {
            origin: Some(origin.to_owned()),
            ..arrival(0)
        };
        let genuine = idempotency_key(&from("credential:c1"), Some("<x@y>"), &blob);
        assert_eq!(
            genuine,
            idempotency_key(&from("credential:c1"), Some("<x@y>"), &blob),
            "the sender's retry dedupes"
        );
        assert_ne!(
            genuine,
            idempotency_key(&from("network:203.0.113.0/24"), Some("<x@y>"), &blob),
            "sent first from elsewhere, it does not swallow the genuine one"
        );
        assert_ne!(genuine, idempotency_key(&arrival(0), Some("<x@y>"), &blob));
        assert_ne!(
            idempotency_key(&from("credential:c1"), None, &blob),
            idempotency_key(&from("credential:c2"), None, &blob)
        );
    }
}
